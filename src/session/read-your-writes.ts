/**
 * `routing.read_your_writes`: after a unit that changed data commits, pgproxy asks the same primary connection for
 * its WAL insert position (pipelined behind the unit; the client never sees that query). The session's later reads
 * go only to standbys that have replayed up to it, else to the primary.
 */
import type { ProxyContext } from '../context.js';
import { parseLsn } from '../nodes/topology.js';
import { queryMessage } from '../wire/frontend.js';
import type { Link } from './link.js';
import { OWED } from './reply-queue.js';

const LSN_QUERY = queryMessage('SELECT pg_current_wal_insert_lsn()::text');

export class ReadYourWrites {
  /** The WAL position of the session's last committed write; reads need a node past it. */
  private minReadLsn: bigint | null = null;

  constructor(private readonly ctx: ProxyContext) {}

  /** A unit that may have changed data was sent on `link`, outside an explicit transaction (or committing one). */
  afterWrite(link: Link): void {
    if (!this.ctx.config.routing.read_your_writes || link.node.role !== 'primary') return;
    link.inject(LSN_QUERY, OWED.lsnQuery);
  }

  /** The answer to pgproxy's WAL-position query. */
  walPosition(_link: Link, text: string): void {
    const lsn = parseLsn(text);
    if (lsn !== null && (this.minReadLsn === null || lsn > this.minReadLsn)) this.minReadLsn = lsn;
  }

  /** The position a read must see, or null when any node will do. */
  minLsn(): bigint | null {
    return this.ctx.config.routing.read_your_writes ? this.minReadLsn : null;
  }
}
