/**
 * What a session's links report, and what it means for the client: the end of each unit (the transaction status,
 * the settings and catalog facts it changed, timing), errors (forwarded, or not when nobody asked), notifications,
 * pgproxy's own WAL-position answers, answers pgproxy gives itself when they are due, and a lost backend.
 */
import type { Logger } from 'pino';
import type { ProxyContext } from '../context.js';
import { ProxyError, isNodeUnavailableState } from '../errors.js';
import { messageFrame, parseErrorFields, readyForQuery } from '../wire/backend.js';
import { BackendCode, SqlState, TxStatus } from '../wire/codes.js';
import type { SessionCatalog } from './catalog-facts.js';
import type { Link, LinkOwner } from './link.js';
import type { Links } from './links.js';
import type { PreparedStatements } from './prepared.js';
import type { ProxySettings } from './proxy-settings.js';
import type { ReadYourWrites } from './read-your-writes.js';
import type { LocalAnswer, LocalReady, Owed } from './reply-queue.js';
import type { RoutingHost } from './routing-host.js';
import { SessionSettings } from './settings.js';
import type { SplitTransaction } from './split-tx.js';
import type { TxState } from './tx-state.js';

export interface RepliesParts {
  readonly ctx: ProxyContext;
  readonly host: RoutingHost;
  readonly tx: TxState;
  links: Links;
  readonly settings: SessionSettings;
  readonly prepared: PreparedStatements;
  readonly proxy: ProxySettings;
  readonly ryw: ReadYourWrites;
  readonly split: SplitTransaction | null;
  readonly catalog: SessionCatalog;
}

export class Replies implements LinkOwner {
  private readonly slowMs: number;

  constructor(private readonly p: RepliesParts) {
    this.slowMs = p.ctx.config.log.slow_ms;
  }

  private get log(): Logger {
    return this.p.host.log;
  }

  toClient(bytes: Buffer): boolean {
    return this.p.host.writeClient(bytes);
  }

  linkDrained(): void {
    this.p.host.resumeInput();
  }

  linkSettled(link: Link): void {
    this.p.links.release(link);
  }

  linkMalformed(link: Link, err: Error): void {
    this.log.warn({ node: link.node.name, err: err.message }, 'malformed data from backend');
  }

  linkWalPosition(_link: Link, lsn: string): void {
    this.p.ryw.walPosition(lsn);
  }

  linkLocal(_link: Link, answer: LocalAnswer): void {
    writeLocal(this.p.host, this.p.tx, answer.bytes, answer.ready);
  }

  linkError(link: Link, body: Buffer, severity: string, code: string, injected: boolean): void {
    const { ctx, host } = this.p;
    if (isNodeUnavailableState(code)) ctx.reportNodeFailure(link.node.id, `${code} ${parseErrorFields(body).message}`);
    if (injected) {
      this.log.warn({ node: link.node.name, code, message: parseErrorFields(body).message }, 'a statement pgproxy sent itself failed');
      return;
    }
    // A FATAL ends the backend connection: the client hears of it as one 08006 when its connection closes.
    // An error nobody asked for (this link owes the client nothing) would desynchronise the client.
    const fatal = severity === 'FATAL' || severity === 'PANIC';
    const owed = link.queue.clientPendingReady > 0 || link.copyIn || this.p.links.inOpenBatch(link);
    if (fatal && code === SqlState.ProtocolViolation && owed) {
      // The client broke the protocol (as PostgreSQL saw it): it gets PostgreSQL's answer, and is closed like there.
      host.writeClient(messageFrame(BackendCode.ErrorResponse, body));
      host.closeAfterProtocolError();
      return;
    }
    if (fatal || !owed) return;
    link.segmentError = true;
    const byClass = ctx.stats.errorsByClass;
    const cls = code.slice(0, 2);
    byClass.set(cls, (byClass.get(cls) ?? 0) + 1);
    host.writeClient(messageFrame(BackendCode.ErrorResponse, body));
  }

  /**
   * A NotificationResponse carries the notifying backend's pid; clients compare it with their BackendKeyData to
   * recognise their own NOTIFYs, so the session's own backend pid becomes the pid pgproxy gave the client.
   */
  linkNotification(link: Link, body: Buffer): void {
    const frame = messageFrame(BackendCode.NotificationResponse, body);
    if (frame.readInt32BE(5) === link.conn.pid) frame.writeInt32BE(this.p.host.clientPid, 5);
    this.p.host.writeClient(frame);
  }

  linkReady(link: Link, unit: Owed | null): void {
    const { tx, links, host, ctx } = this.p;
    const injected = unit === null || unit.injected;
    if (injected && links.endedSplitPart(link)) {
      // The batch failed in its first part: like PostgreSQL, the rest of it (sent elsewhere next) is skipped.
      if (link.segmentError) {
        link.segmentError = false;
        tx.skipToSync = true;
      }
    }
    if (!injected) {
      this.clientUnitEnded(link);
      if (link.captureAfterUnit) {
        link.captureAfterUnit = false;
        this.p.ryw.capture(link);
      }
    }
    if (ctx.config.pool.mode === 'transaction' && links.mayRelease(link, tx.link)) link.releaseAfterFeed = true;
    if (link.queue.pendingReady === 0) host.resume();
  }

  /** The client's ReadyForQuery for a unit on `link` arrived: account for it and keep what took effect. */
  private clientUnitEnded(link: Link): void {
    const { tx, settings, prepared, proxy, split, catalog } = this.p;
    if (link.unitStartedAt !== 0) {
      const ms = performance.now() - link.unitStartedAt;
      link.unitStartedAt = 0;
      const n = link.node;
      n.queries++;
      n.queryTimeMs += ms;
      n.latency.observe(ms);
      if (this.slowMs > 0 && ms > this.slowMs) this.logSlow(n.name, ms, link.unitSql);
    }
    const before = link.statusBefore;
    const after = link.status;
    const effects = settings.segmentEnded(link, before, after);
    if ((effects & SessionSettings.RESET_ALL) !== 0) proxy.resetAll(after !== TxStatus.Idle);
    if ((effects & SessionSettings.DISCARD_ALL) !== 0) prepared.clear();
    if (link.segmentDdl) {
      link.segmentDdl = false;
      catalog.invalidate();
    }
    const committed = before === TxStatus.InTransaction && !link.segmentRollback && !link.segmentError;
    link.segmentSettings = null;
    link.segmentError = false;
    link.segmentRollback = false;
    link.statusBefore = after;
    tx.status = after;
    if (after !== TxStatus.Idle) tx.link = link;
    else {
      if (tx.link === link) tx.link = null;
      tx.wrote = false;
      split?.ended();
      if (before !== TxStatus.Idle) proxy.transactionEnded(committed);
    }
  }

  private logSlow(node: string, ms: number, sql: string): void {
    this.log.warn({ node, durationMs: Math.round(ms * 10) / 10, sql: sql.length > 200 ? sql.slice(0, 200) + '…' : sql }, 'slow statement');
  }

  linkLost(link: Link, error: Error | null): void {
    const { tx, links, host } = this.p;
    const owedLocal = link.queue.localPendingReady;
    const lost = links.lost(link, error);
    const pending = link.queue.drain();
    // Input paused because this backend's socket was full will never hear its 'drain'.
    if (!links.anyBackendFull()) host.resumeInput();
    if (lost === null) return;
    const { wasInTx, midBatch } = lost;
    if (!link.scanner.atBoundary) {
      // The client has part of a message: nothing can follow it cleanly.
      this.log.warn({ node: link.node.name }, 'backend lost in the middle of a message; closing the client');
      host.destroy('backend lost mid-message');
      return;
    }
    if (link === tx.link) tx.link = null;
    tx.skipToSync = false;
    const node = link.node;
    const err = new ProxyError(SqlState.ConnectionFailure, `connection to node ${node.name} (${node.host}:${node.port}) was lost`);
    if (wasInTx) {
      // The transaction is gone with its backend: keep it aborted until the client ends it.
      tx.aborted = true;
      tx.status = TxStatus.Failed;
      // A client idle in the transaction hears why at its next statement.
      if (lost.owed === 0) tx.lostError = err;
    }
    if (lost.owed > 0 || owedLocal > 0) {
      // Every unit still owed ends now, in order: the backend's with the error, pgproxy's own answers as they are.
      let errorSent = false;
      for (const e of pending) {
        if (e.kind === 'local') writeLocal(host, tx, (e as LocalAnswer).bytes, (e as LocalAnswer).ready);
        else if (e.endsUnit && !e.injected) {
          const parts: Buffer[] = [];
          if (!errorSent) parts.push(err.toFrame());
          errorSent = true;
          parts.push(readyForQuery(wasInTx ? TxStatus.Failed : TxStatus.Idle));
          host.writeClient(Buffer.concat(parts));
        }
      }
      this.log.warn({ node: node.name }, 'backend connection lost during a statement');
    } else if (midBatch) {
      host.writeClient(err.toFrame());
      if (wasInTx) tx.lostError = null;
    }
    // The rest of a batch the client had begun is void; its Sync gets the ReadyForQuery.
    if (midBatch) tx.skipToSync = true;
    host.resume();
  }
}

/** Writes a local answer and the ReadyForQuery that ends it, if any. */
export function writeLocal(host: RoutingHost, tx: TxState, bytes: Buffer | null, ready: LocalReady): void {
  const status = ready === 'none' ? -1 : ready === 'current' ? tx.clientStatus : ready === 'failed' ? tx.failed() : ready;
  if (status < 0) {
    if (bytes !== null) host.writeClient(bytes);
    return;
  }
  const rfq = readyForQuery(status);
  host.writeClient(bytes === null ? rfq : Buffer.concat([bytes, rfq]));
}
