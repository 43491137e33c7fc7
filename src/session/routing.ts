/**
 * The per-message loop of a logged-in client: each Query, Parse, Bind, Describe, Execute, Sync, Close, COPY
 * message and FunctionCall goes to the link of the node it must run on, unchanged; the replies come back through
 * the links in the client's order. Also the answers pgproxy gives itself (errors, ReadyForQuery for an empty batch,
 * SHOW POOL_NODES) and the client's transaction status.
 *
 * Invariant that keeps replies in order without buffering them: at most one link owes the client replies at any
 * time. Before work goes to another link, the loop waits (holding the client's further input) until the current
 * one has sent its last ReadyForQuery. A batch that must leave a standby midway ends its part there with
 * pgproxy's own Sync, whose ReadyForQuery the client never sees.
 *
 * `handle()` returns false when a message cannot be handled yet; the session then holds the client's input and
 * calls `handle()` again with the same message after `resume()`.
 *
 * Over 500 lines on purpose: the per-message loop and what links report back (ReadyForQuery, errors, a lost
 * backend) read and write the same unit state (the transaction's link, an aborted transaction, skip-to-Sync), and
 * that state has one owner. Prepared statements, settings, links and catalog facts live in modules of their own.
 */
import type { Logger } from 'pino';
import { poolNodesResult } from '../admin/pool-nodes.js';
import type { ProxyContext } from '../context.js';
import { ProxyError, isNodeUnavailableState } from '../errors.js';
import { classifyBytes, Pin, PIN_LABELS, type Classification } from '../router/classify/index.js';
import { leadingHints } from '../router/hints.js';
import { decideCached } from '../router/policy.js';
import { Reason, targetOf, type Target } from '../router/reasons.js';
import type { ScramClientKeys } from '../wire/auth/scram.js';
import { commandComplete, messageFrame, parseErrorFields, readyForQuery } from '../wire/backend.js';
import { BackendCode, FrontendCode, SqlState, TxStatus } from '../wire/codes.js';
import type { Framer } from '../wire/framer.js';
import { MessageError, bindStatementName, closeStatement, cstringEnd, SYNC, targetName } from '../wire/frontend.js';
import type { Link, LinkOwner } from './link.js';
import { Links, type LinksHost } from './links.js';
import { ReadYourWrites } from './read-your-writes.js';
import { OWED, type Owed } from './reply-queue.js';
import { SessionCatalog } from './catalog-facts.js';
import { PreparedStatements } from './prepared.js';
import { SessionSettings, settingOf } from './settings.js';
import { SplitTransaction } from './split-tx.js';

/** What the loop needs from the session that owns the client socket. */
export interface RoutingHost {
  readonly log: Logger;
  /** The pid pgproxy gave the client in BackendKeyData. */
  readonly clientPid: number;
  /** When the client's input being handled arrived (performance.now()): the start of units sent now. */
  readonly lastActivity: number;
  /** Returns true when the bytes could not all go to the kernel at once (some are queued, by reference). */
  writeClient(bytes: Buffer): boolean;
  /** Re-run held client input (a wait ended). */
  resume(): void;
  /** A backend's socket is full: stop reading the client until it drains. */
  pauseInput(): void;
  resumeInput(): void;
  /** The backend ended the session for a protocol violation by the client: close it as PostgreSQL would. */
  closeAfterProtocolError(): void;
  /** Closes the client at once (a backend was lost in the middle of a message). */
  destroy(reason: string): void;
}


export class Routing implements LinkOwner, LinksHost {
  readonly links: Links;
  readonly settings: SessionSettings;
  private readonly split: SplitTransaction | null;
  private readonly ryw: ReadYourWrites;
  private readonly prepared = new PreparedStatements();

  /** Link of the open transaction (its last client-visible ReadyForQuery said T or E). */
  private txLink: Link | null = null;
  private txStatus: number = TxStatus.Idle;
  /** An extended batch failed in pgproxy itself: everything up to Sync is discarded. */
  private skipToSync = false;
  /** The transaction lost its backend: statements get 25P02 until the client ends it. */
  private abortedTx = false;
  /** The backend of a transaction the client was idle in was lost: its next statement is told so. */
  private lostTxError: ProxyError | null = null;
  /** The open extended batch changed data (read-your-writes asks for the WAL position after its Sync). */
  private unitWrites = false;
  /** SQL of the last statement bound in the open batch (for the slow-statement log). */
  private unitSql = '';
  /** Held by PAUSE until RESUME. */
  waitingForResume = false;
  private readonly catalog: SessionCatalog;
  private readonly slowMs: number;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly host: RoutingHost,
    readonly database: string,
    readonly user: string,
    secret: string,
    scramKeys: ScramClientKeys | null,
    startupParams: ReadonlyMap<string, string>,
    readPreference: 'primary' | 'standby' | number | null,
  ) {
    this.settings = new SessionSettings(startupParams);
    this.links = new Links(ctx, this, this, { database, user, secret, scramKeys }, this.settings, readPreference);
    this.split = ctx.router.splitTransactions ? new SplitTransaction() : null;
    this.ryw = new ReadYourWrites(ctx);
    this.catalog = new SessionCatalog(ctx.catalog, database, () => host.log, () => host.resume());
    this.slowMs = ctx.config.log.slow_ms;
  }

  get log(): Logger {
    return this.host.log;
  }

  /** Not inside a transaction and owing no replies. */
  get idle(): boolean {
    return !this.links.busy && this.txStatus === TxStatus.Idle && !this.abortedTx;
  }

  get inTransaction(): boolean {
    return this.txStatus !== TxStatus.Idle || this.abortedTx;
  }

  // ------------------------------------------------------------------ the loop

  handle(f: Framer): boolean {
    const type = f.type;
    const cur = this.links.cur;
    if (cur !== null && cur.copyIn && cur.clientCopyOpen && type !== FrontendCode.CopyData && type !== FrontendCode.CopyDone && type !== FrontendCode.CopyFail && type !== FrontendCode.Terminate) {
      // Sync and Flush are ignored in copy-in; anything else ends the COPY with an error, and is consumed by it.
      this.links.forward(cur, f);
      return true;
    }
    if ((type === FrontendCode.Query || type === FrontendCode.Parse || type === FrontendCode.Bind) && this.ctx.controls.paused && !this.batchOpen && this.txLink === null) {
      // PAUSE: new work waits (work in flight and open transactions carry on).
      this.waitingForResume = true;
      return false;
    }
    if (this.skipToSync && type !== FrontendCode.Sync) return true;
    switch (type) {
      case FrontendCode.Query:
        return this.onQuery(f);
      case FrontendCode.Parse:
        return this.onParse(f);
      case FrontendCode.Bind:
        return this.onStatementUse(f, bindStatementName(f.buf, f.bodyStart, f.end), true);
      case FrontendCode.Describe:
        if (f.buf[f.bodyStart] === 0x53) return this.onStatementUse(f, targetName(f.buf, f.bodyStart, f.end), false);
        return this.onBatchMessage(f);
      case FrontendCode.Execute:
      case FrontendCode.Flush:
        return this.onBatchMessage(f);
      case FrontendCode.Close:
        return this.onClose(f);
      case FrontendCode.Sync:
        return this.onSync(f);
      case FrontendCode.CopyData:
        // Outside COPY a backend ignores these (a COPY that failed while the client was still sending).
        if (cur !== null) this.links.forward(cur, f);
        return true;
      case FrontendCode.CopyDone:
      case FrontendCode.CopyFail:
        if (cur !== null) {
          this.links.forward(cur, f);
          if (cur.copyIn) cur.clientCopyOpen = false;
          else cur.expect(OWED.copyEnd);
        }
        return true;
      case FrontendCode.FunctionCall:
        return this.onFunctionCall(f);
      default:
        throw new MessageError(`invalid frontend message type ${type}`);
    }
  }

  /** An extended batch is open on the current link (messages sent since its last Sync). */
  private get batchOpen(): boolean {
    const cur = this.links.cur;
    return cur !== null && cur.batchOpen;
  }

  private onQuery(f: Framer): boolean {
    const buf = f.buf;
    const start = f.bodyStart;
    const end = cstringEnd(buf, start, f.end);
    const hints = leadingHints(buf, start, end);
    const c = classifyBytes(buf, start, end, hints);
    const summary = c.summary;
    if (c.statements.length === 1 && c.statements[0]!.show === 'pool_nodes') return this.answerLocally(poolNodesResult(this.ctx.topology.nodes, this.links.loadBalanceNodeId), true);
    if (this.abortedTx) return this.answerInAbortedTx(c.statements[0]?.tx?.op ?? null, true);
    const catalog = this.catalog.facts();
    if (catalog === undefined) return false;
    const reason = decideCached(c, hints, this.ctx.router, this.settings.routing, catalog);
    const link = this.pick(reason, false, true);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, reason, c);
    // The text is decoded only when something keeps it: a setting, a split transaction's BEGIN, the slow log.
    const keepsText = summary.settings !== 0 || this.slowMs > 0 || (this.split !== null && this.split.wantsText(c, link, this.txLink));
    const sql = keepsText ? buf.toString('utf8', start, end) : '';
    if (summary.settings !== 0) {
      const setting = settingOf(sql, c);
      if (setting !== null) (link.segmentSettings ??= []).push(setting);
    }
    if (summary.ddl) link.segmentDdl = true;
    if (summary.rollsBack) link.segmentRollback = true;
    if (this.split !== null) this.split.track(sql, c, link, this.txLink);
    this.links.forward(link, f);
    link.expect(OWED.query);
    this.startUnit(link, sql);
    if (summary.writes && !summary.begins) this.afterWrite(link);
    return true;
  }

  private onParse(f: Framer): boolean {
    const buf = f.buf;
    const nameEnd = cstringEnd(buf, f.bodyStart, f.end);
    const start = nameEnd + 1;
    const end = cstringEnd(buf, start, f.end);
    if (this.abortedTx) return this.answerInAbortedTx(null, false);
    const repeat = nameEnd === f.bodyStart ? this.prepared.unnamedRepeat(f) : null;
    const hints = repeat !== null ? repeat.hints : leadingHints(buf, start, end);
    const c = repeat !== null ? repeat.classification : classifyBytes(buf, start, end, hints);
    const catalog = this.catalog.facts();
    if (catalog === undefined) return false;
    const reason = decideCached(c, hints, this.ctx.router, this.settings.routing, catalog);
    const link = this.pick(reason, this.batchOpen, false);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, reason, c);
    if (repeat !== null) this.prepared.parsedAgain(link, reason);
    else if (this.prepared.parsed(f, nameEnd, start, end, link, c, hints, reason, this.slowMs > 0)) link.conn.stateTag = this.settings.tag;
    this.links.forward(link, f);
    link.expect(OWED.parse);
    link.batchOpen = true;
    return true;
  }

  /** Bind, or Describe of a statement: runs where the statement is, re-preparing it there when needed. */
  private onStatementUse(f: Framer, name: string, isBind: boolean): boolean {
    if (this.abortedTx) return this.answerInAbortedTx(null, false);
    const stmt = this.prepared.get(name);
    const link = stmt !== null ? this.pick(stmt.reason, this.batchOpen, false) : this.pickCurrent(false);
    if (typeof link === 'boolean') return link;
    if (stmt === null) {
      // Never prepared in this session: the backend gives PostgreSQL's own answer (26000, a failed transaction).
      this.prepared.unknownOn(link, name);
    } else {
      this.beforeSend(link, stmt.reason, stmt.classification);
      if (this.prepared.ensureOn(link, name)) link.conn.stateTag = this.settings.tag;
      if (isBind) {
        const summary = stmt.classification.summary;
        this.unitSql = stmt.sql;
        if (stmt.setting !== null) (link.segmentSettings ??= []).push(stmt.setting);
        if (summary.writes && !summary.begins) this.unitWrites = true;
        if (summary.ddl) link.segmentDdl = true;
      }
    }
    this.links.forward(link, f);
    link.batchOpen = true;
    return true;
  }

  private onClose(f: Framer): boolean {
    const isStatement = f.buf[f.bodyStart] === 0x53;
    const name = targetName(f.buf, f.bodyStart, f.end);
    const link = this.pickCurrent(false);
    if (typeof link === 'boolean') return link;
    if (isStatement) this.prepared.closed(name, link, this.links.all());
    this.links.forward(link, f);
    link.expect(OWED.close);
    link.batchOpen = true;
    return true;
  }

  private onBatchMessage(f: Framer): boolean {
    const link = this.pickCurrent(false);
    if (typeof link === 'boolean') return link;
    this.links.forward(link, f);
    link.batchOpen = true;
    return true;
  }

  private onSync(f: Framer): boolean {
    if (this.skipToSync) {
      this.skipToSync = false;
      return this.answerLocally(null, true);
    }
    const link = this.links.cur;
    if (link === null || (!link.batchOpen && link.queue.pendingReady === 0 && this.txLink === null && !link.copyIn)) {
      // Nothing to synchronise on a backend: answer as PostgreSQL would.
      return this.answerLocally(null, true);
    }
    this.links.forward(link, f);
    link.expect(OWED.sync);
    link.batchOpen = false;
    this.startUnit(link, this.unitSql);
    if (this.unitWrites) {
      this.unitWrites = false;
      this.afterWrite(link);
    }
    return true;
  }

  private onFunctionCall(f: Framer): boolean {
    const link = this.pick(Reason.FunctionCall, false, true);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, Reason.FunctionCall, null);
    this.links.forward(link, f);
    link.expect(OWED.query);
    return true;
  }

  private startUnit(link: Link, sql: string): void {
    if (link.unitStartedAt === 0) {
      link.unitStartedAt = this.host.lastActivity;
      if (this.slowMs > 0) link.unitSql = sql;
    }
  }

  /** Read-your-writes: after a unit that changed data outside an explicit transaction (or committed one). */
  private afterWrite(link: Link): void {
    if (this.txLink === null) this.ryw.afterWrite(link);
  }

  /** Brings `link` up to date for the next unit, and counts where the unit went and why. */
  private beforeSend(link: Link, reason: Reason, c: Classification | null): void {
    if (!this.settings.upToDate(link)) this.settings.replay(link);
    if (this.split !== null) {
      const begin = this.split.takePendingBegin(link);
      if (begin !== null) {
        link.inject(begin, OWED.injectedQuery);
        this.txLink = link;
      }
    }
    if (link.pendingCloses !== null) {
      for (const name of link.pendingCloses) link.inject(closeStatement(name), OWED.injectedClose);
      link.pendingCloses = null;
    }
    const target = targetOf(reason);
    const node = link.node;
    const stats = this.ctx.stats;
    const reads = c === null ? 0 : c.summary.reads;
    if (c !== null) {
      const summary = c.summary;
      if (summary.pin !== Pin.None) this.links.pin(PIN_LABELS[summary.pin]!);
      stats.notUnderstood += summary.notUnderstood;
    }
    // Where it went and why: a read or statement that may run anywhere can still land on the primary.
    stats.routed[target === 'primary' ? reason : this.txLink !== null ? Reason.InTransaction : target === 'read' ? this.links.readReason : Reason.Any]++;
    if (target === 'primary') node.writes++;
    if (reads > 0) node.selectCount += reads;
    // Anything but a plain read may leave state on the backend that the next client must not see.
    if (target === 'primary' || reads === 0 || c === null || callsFunctions(c)) link.conn.stateTag = this.settings.tag;
  }

  // ------------------------------------------------------------------ choosing a link

  /**
   * The link for work with this route; or, for handle() to return, false (wait and re-read the message) or true
   * (pgproxy answered it with an error already).
   */
  private pick(reason: Reason, withinUnit: boolean, isQuery: boolean): Link | boolean {
    try {
      const target: Target = targetOf(reason);
      if (this.split !== null && this.txLink !== null && target === 'primary' && this.txLink.node.role !== 'primary' && this.txStatus === TxStatus.InTransaction && this.split.active) {
        this.moveSplitTransaction(this.txLink);
      }
      if (this.txLink !== null) return this.links.switchTo(this.txLink) ?? false;
      return this.links.forRoute(target, withinUnit, this.ryw.minLsn()) ?? false;
    } catch (err) {
      return this.answerError(err as Error, isQuery);
    }
  }

  /** Like pick, for messages that follow the current unit (Execute, Describe of a portal, Close...). */
  private pickCurrent(isQuery: boolean): Link | boolean {
    try {
      if (this.txLink !== null) return this.links.switchTo(this.txLink) ?? false;
      return this.links.currentOrPrimary() ?? false;
    } catch (err) {
      return this.answerError(err as Error, isQuery);
    }
  }

  /**
   * The first write of a split transaction: the standby's read part ends (pgproxy's own COMMIT, unseen by the
   * client) and the transaction opens again on the primary, with its savepoints, before the write runs there.
   */
  private moveSplitTransaction(standby: Link): void {
    if (standby.batchOpen && this.links.cur === standby) {
      standby.inject(SYNC, OWED.injectedSync);
      standby.batchOpen = false;
    }
    this.split!.moveToPrimary(standby);
    this.txLink = null;
  }

  // ------------------------------------------------------------------ answers pgproxy gives itself

  /**
   * Sends a reply pgproxy produces (optionally followed by ReadyForQuery). Waits first until no backend owes the
   * client replies, so that order is kept.
   */
  private answerLocally(reply: Buffer | null, withReady: boolean): boolean {
    const cur = this.links.cur;
    if (cur !== null && cur.queue.pendingReady > 0) {
      if (cur.batchOpen) {
        cur.inject(SYNC, OWED.injectedSync);
        cur.batchOpen = false;
      }
      return false;
    }
    const ready = withReady ? readyForQuery(this.abortedTx ? TxStatus.Failed : this.txStatus) : null;
    if (reply !== null && ready !== null) this.host.writeClient(Buffer.concat([reply, ready]));
    else if (reply !== null) this.host.writeClient(reply);
    else if (ready !== null) this.host.writeClient(ready);
    return true;
  }

  /** An error pgproxy raises for the current message: a Query gets ReadyForQuery, a batch skips to Sync. */
  private answerError(err: Error, isQuery: boolean): boolean {
    const pe = err instanceof ProxyError ? err : new ProxyError(SqlState.InternalError, err.message);
    if (!(err instanceof ProxyError)) this.log.error({ err }, 'unexpected routing error');
    const ok = this.answerLocally(pe.toFrame(), isQuery);
    if (ok && !isQuery) this.skipToSync = true;
    return ok;
  }

  private answerInAbortedTx(op: string | null, isQuery: boolean): boolean {
    if (isQuery && (op === 'rollback' || op === 'commit')) {
      this.lostTxError = null;
      this.abortedTx = false;
      this.txStatus = TxStatus.Idle;
      return this.answerLocally(ROLLBACK_COMPLETE, true);
    }
    const lost = this.lostTxError;
    if (lost !== null) {
      const ok = this.answerError(lost, isQuery);
      if (ok) this.lostTxError = null;
      return ok;
    }
    return this.answerError(new ProxyError(SqlState.InFailedTransaction, 'current transaction is aborted, commands ignored until end of transaction block'), isQuery);
  }

  // ------------------------------------------------------------------ LinkOwner: what links report

  toClient(bytes: Buffer): boolean {
    return this.host.writeClient(bytes);
  }

  linkDrained(): void {
    this.host.resumeInput();
  }

  linkSettled(link: Link): void {
    this.links.release(link);
  }

  linkMalformed(link: Link, err: Error): void {
    this.log.warn({ node: link.node.name, err: err.message }, 'malformed data from backend');
  }

  linkWalPosition(link: Link, lsn: string): void {
    this.ryw.walPosition(link, lsn);
  }

  linkError(link: Link, body: Buffer, severity: string, code: string, injected: boolean): void {
    if (isNodeUnavailableState(code)) this.ctx.reportNodeFailure(link.node.id, `${code} ${parseErrorFields(body).message}`);
    if (injected) {
      this.log.warn({ node: link.node.name, code, message: parseErrorFields(body).message }, 'a statement pgproxy sent itself failed');
      return;
    }
    // A FATAL ends the backend connection: the client hears of it as one 08006 when its connection closes.
    // An error nobody asked for (this link owes the client nothing) would desynchronise the client.
    const fatal = severity === 'FATAL' || severity === 'PANIC';
    const owed = link.queue.clientPendingReady > 0 || link.copyIn || this.links.inOpenBatch(link);
    if (fatal && code === SqlState.ProtocolViolation && owed) {
      // The client broke the protocol (as PostgreSQL saw it): it gets PostgreSQL's answer, and is closed like there.
      this.host.writeClient(messageFrame(BackendCode.ErrorResponse, body));
      this.host.closeAfterProtocolError();
      return;
    }
    if (fatal || !owed) return;
    link.segmentError = true;
    const byClass = this.ctx.stats.errorsByClass;
    const cls = code.slice(0, 2);
    byClass.set(cls, (byClass.get(cls) ?? 0) + 1);
    this.host.writeClient(messageFrame(BackendCode.ErrorResponse, body));
  }

  /**
   * A NotificationResponse carries the notifying backend's pid; clients compare it with their BackendKeyData to
   * recognise their own NOTIFYs, so the session's own backend pid becomes the pid pgproxy gave the client.
   */
  linkNotification(link: Link, body: Buffer): void {
    const frame = messageFrame(BackendCode.NotificationResponse, body);
    if (frame.readInt32BE(5) === link.conn.pid) frame.writeInt32BE(this.host.clientPid, 5);
    this.host.writeClient(frame);
  }

  linkReady(link: Link, unit: Owed | null): void {
    const injected = unit === null || unit.injected;
    if (injected && this.links.endedSplitPart(link)) {
      // The batch failed in its first part: like PostgreSQL, the rest of it (sent elsewhere next) is skipped.
      if (link.segmentError) {
        link.segmentError = false;
        this.skipToSync = true;
      }
    }
    if (!injected) this.clientUnitEnded(link);
    if (this.ctx.config.pool.mode === 'transaction' && this.links.mayRelease(link, this.txLink)) link.releaseAfterFeed = true;
    if (link.queue.pendingReady === 0) this.host.resume();
  }

  /** The client's ReadyForQuery for a unit on `link` arrived: account for it and keep what took effect. */
  private clientUnitEnded(link: Link): void {
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
    if (this.settings.segmentEnded(link, before, after)) this.prepared.clear();
    if (link.segmentDdl) {
      link.segmentDdl = false;
      this.catalog.invalidate();
    }
    link.segmentSettings = null;
    link.segmentError = false;
    link.segmentRollback = false;
    link.statusBefore = after;
    this.txStatus = after;
    if (after !== TxStatus.Idle) this.txLink = link;
    else {
      if (this.txLink === link) this.txLink = null;
      this.split?.ended();
    }
  }

  private logSlow(node: string, ms: number, sql: string): void {
    this.log.warn({ node, durationMs: Math.round(ms * 10) / 10, sql: sql.length > 200 ? sql.slice(0, 200) + '…' : sql }, 'slow statement');
  }

  linkLost(link: Link, error: Error | null): void {
    const lost = this.links.lost(link, error);
    if (lost === null) return;
    const { owed, wasInTx, midBatch } = lost;
    if (!link.scanner.atBoundary) {
      // The client has part of a message: nothing can follow it cleanly.
      this.log.warn({ node: link.node.name }, 'backend lost in the middle of a message; closing the client');
      this.host.destroy('backend lost mid-message');
      return;
    }
    if (link === this.txLink) this.txLink = null;
    this.skipToSync = false;
    const node = link.node;
    const err = new ProxyError(SqlState.ConnectionFailure, `connection to node ${node.name} (${node.host}:${node.port}) was lost`);
    if (wasInTx) {
      // The transaction is gone with its backend: keep it aborted until the client ends it.
      this.abortedTx = true;
      this.txStatus = TxStatus.Failed;
      // A client idle in the transaction hears why at its next statement.
      if (owed === 0) this.lostTxError = err;
    }
    if (owed > 0) {
      const parts: Buffer[] = [err.toFrame()];
      for (let i = 0; i < owed; i++) parts.push(readyForQuery(wasInTx ? TxStatus.Failed : TxStatus.Idle));
      this.host.writeClient(Buffer.concat(parts));
      this.log.warn({ node: node.name }, 'backend connection lost during a statement');
    } else if (midBatch) {
      this.host.writeClient(err.toFrame());
      if (wasInTx) this.lostTxError = null;
    }
    // The rest of a batch the client had begun is void; its Sync gets the ReadyForQuery.
    if (midBatch) this.skipToSync = true;
    this.host.resume();
  }

  // ------------------------------------------------------------------ LinksHost

  acquired(): void {
    this.host.resume();
  }

  // ------------------------------------------------------------------ for the session

  /** The client's input was handled up to the end of a chunk: send what was gathered, give back idle links. */
  flush(): void {
    if (!this.links.flush()) this.host.pauseInput();
  }

  /** Forwards a CancelRequest to the node running this session's statement. */
  cancel(): void {
    this.links.cancel();
  }

  close(): void {
    this.links.releaseAll();
  }

  describeState(): 'waiting' | 'active' | 'idle in transaction' | 'idle' {
    if (this.waitingForResume || this.links.acquiring) return 'waiting';
    if (this.links.busy) return 'active';
    return this.inTransaction ? 'idle in transaction' : 'idle';
  }
}

const ROLLBACK_COMPLETE = commandComplete('ROLLBACK');

/** Some statement of the unit calls a function (one may change session state, e.g. through set_config). */
function callsFunctions(c: Classification): boolean {
  const statements = c.statements;
  for (let i = 0; i < statements.length; i++) if (statements[i]!.functions.length > 0) return true;
  return false;
}
