/**
 * A client logged in to the virtual database `pgproxy`: simple queries only, each answered by pgproxy's admin
 * commands (SHOW ..., RELOAD, PAUSE ...). There is no backend behind it.
 */
import type { ProxyContext } from '../context.js';
import { ProxyError } from '../errors.js';
import { readyForQuery } from '../wire/backend.js';
import { FrontendCode, SqlState, TxStatus } from '../wire/codes.js';
import type { Framer } from '../wire/framer.js';
import { MessageError, queryText } from '../wire/frontend.js';

export interface AdminConsoleHost {
  writeClient(bytes: Buffer): void;
  /** Re-run held client input (a command finished). */
  resume(): void;
}

const READY = readyForQuery(TxStatus.Idle);

export class AdminConsole {
  /** A command is running: the next message waits for its answer. */
  private busy = false;
  /** An extended-protocol message was refused: everything up to Sync is discarded. */
  private skipToSync = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly host: AdminConsoleHost,
  ) {}

  get active(): boolean {
    return this.busy;
  }

  /** Returns false while a command is running (the message is handled again after resume()). */
  handle(f: Framer): boolean {
    // Answers go out in order: everything waits for the running command.
    if (this.busy) return false;
    switch (f.type) {
      case FrontendCode.Query: {
        let sql: string;
        try {
          sql = queryText(f.buf, f.bodyStart, f.end);
        } catch (err) {
          if (!(err instanceof MessageError)) throw err;
          this.host.writeClient(Buffer.concat([new ProxyError(SqlState.ProtocolViolation, err.message).toFrame(), READY]));
          return true;
        }
        this.busy = true;
        this.ctx.admin(sql, this.ctx).then(
          (frames) => this.answer(Buffer.concat([frames, READY])),
          (err: Error) => {
            const pe = err instanceof ProxyError ? err : new ProxyError(SqlState.InternalError, err.message);
            this.answer(Buffer.concat([pe.toFrame(), READY]));
          },
        );
        return true;
      }
      case FrontendCode.Sync:
        this.skipToSync = false;
        this.host.writeClient(READY);
        return true;
      case FrontendCode.Flush:
        return true;
      default:
        if (!this.skipToSync) this.host.writeClient(new ProxyError(SqlState.FeatureNotSupported, 'the pgproxy admin console accepts simple queries only').toFrame());
        this.skipToSync = true;
        return true;
    }
  }

  private answer(bytes: Buffer): void {
    this.busy = false;
    this.host.writeClient(bytes);
    this.host.resume();
  }
}
