/**
 * The per-message loop of a logged-in client: each Query, Parse, Bind, Describe, Execute, Sync, Close, COPY
 * message and FunctionCall goes to the link of the node it must run on, unchanged; the replies come back through
 * the links in the client's order (replies.ts). Answers pgproxy gives itself (errors, SET / SHOW pgproxy.*, a
 * deferred BEGIN, explain notices, SHOW POOL_NODES) are queued behind what the client is still owed.
 *
 * Invariant that keeps replies in order without buffering them: at most one link owes the client replies at any
 * time. Before work goes to another link, the loop waits (holding the client's further input) until the current
 * one has sent its last ReadyForQuery. A batch that must leave a node midway ends its part there with pgproxy's own
 * Sync, whose ReadyForQuery the client never sees.
 *
 * `handle()` returns false when a message cannot be handled yet (a connection, another link, the catalog, a standby
 * catching up); the session then holds the client's input and calls `handle()` again with the same message after
 * `resume()`.
 *
 * Over 500 lines on purpose: every kind of message has its handler here, and they share the unit's state (the
 * transaction, the open batch, the local portal, the pending read wait). Prepared statements, settings, links,
 * replies, read-your-writes and pgproxy's own settings live in modules of their own.
 */
import type { Logger } from 'pino';
import { poolNodesResult } from '../admin/pool-nodes.js';
import type { ProxyContext } from '../context.js';
import { ProxyError } from '../errors.js';
import { classifyBytes, Pin, PIN_LABELS, type Classification, type StatementFacts } from '../router/classify/index.js';
import { HINT_VALUES, Hint, leadingHints } from '../router/hints.js';
import { decideCached, type CatalogFacts } from '../router/policy.js';
import { Reason, type Target, targetOf } from '../router/reasons.js';
import type { ScramClientKeys } from '../wire/auth/scram.js';
import { BIND_COMPLETE, CLOSE_COMPLETE, NO_PARAMETERS, PARSE_COMPLETE, commandComplete } from '../wire/backend.js';
import { FrontendCode, SqlState, TxStatus } from '../wire/codes.js';
import { FrameError, FrameFault, type Framer } from '../wire/framer.js';
import { formatLsn } from '../nodes/topology.js';
import { MessageError, bindPortalName, bodyProblem, bindStatementName, closeStatement, cstringEnd, executePortalName, queryMessage, SYNC, targetName } from '../wire/frontend.js';
import { SessionCatalog } from './catalog-facts.js';
import { explainText, newRouteRecord, routeText } from './explain.js';
import type { Link } from './link.js';
import { Links, noNeeds, type LinksHost } from './links.js';
import { describeProxyStatement, isProxyStatement, MIXED_UNIT_ERROR, notice, parseProblem, ProxyUnit, proxyUnitOf, runProxyStatement, type ShowSource } from './local-answers.js';
import { PreparedStatements, UNDECIDED, type PreparedStatement } from './prepared.js';
import { ProxySettings } from './proxy-settings.js';
import { ReadYourWrites } from './read-your-writes.js';
import { Replies, writeLocal, type RepliesParts } from './replies.js';
import { OWED, localAnswer, type LocalReady } from './reply-queue.js';
import type { RoutingHost } from './routing-host.js';
import { proxyStartupEntries, SessionSettings, settingOf } from './settings.js';
import { SplitTransaction } from './split-tx.js';
import { TxState } from './tx-state.js';

export type { RoutingHost };

/** A portal bound to a statement pgproxy answers itself (its Execute and Describe are answered here too). */
interface LocalPortal {
  name: string;
  stmt: PreparedStatement;
}

export class Routing implements LinksHost, ShowSource {
  readonly links: Links;
  readonly settings: SessionSettings;
  readonly proxy: ProxySettings;
  private readonly split: SplitTransaction | null;
  private readonly ryw: ReadYourWrites;
  private readonly prepared = new PreparedStatements();
  private readonly tx = new TxState();
  private readonly replies: Replies;
  private readonly catalog: SessionCatalog;

  /** The open extended batch may have changed data (its Sync is followed by the WAL-position query). */
  private unitMayWrite = false;
  /** The open extended batch copies data in. */
  private unitCopiesIn = false;
  /** SQL of the last statement bound in the open batch (for the slow-statement log). */
  private unitSql = '';
  private localPortal: LocalPortal | null = null;
  /** Held by PAUSE until RESUME. */
  waitingForResume = false;
  /** The message being handled already waited for a standby to catch up (it does not wait twice). */
  private waited = false;
  private waitStartedAt = 0;
  private readonly needs = noNeeds();
  private readonly last = newRouteRecord();
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
    this.proxy = new ProxySettings(proxyStartupEntries(startupParams));
    this.ryw = new ReadYourWrites(ctx, database);
    this.split = ctx.router.splitTransactions ? new SplitTransaction() : null;
    this.catalog = new SessionCatalog(ctx.catalog, database, () => host.log, () => host.resume());
    const parts = { ctx, host, tx: this.tx, settings: this.settings, prepared: this.prepared, proxy: this.proxy, ryw: this.ryw, split: this.split, catalog: this.catalog } as RepliesParts;
    this.replies = new Replies(parts);
    this.links = new Links(ctx, this, this.replies, { database, user, secret, scramKeys }, this.settings, readPreference);
    // The replies need the links, which need the replies as their owner.
    parts.links = this.links;
    this.slowMs = ctx.config.log.slow_ms;
  }

  get log(): Logger {
    return this.host.log;
  }

  /** Not inside a transaction and owing no replies. */
  get idle(): boolean {
    return !this.links.busy && !this.tx.open;
  }

  get inTransaction(): boolean {
    return this.tx.open;
  }

  // ------------------------------------------------------------------ the loop

  handle(f: Framer): boolean {
    const done = this.dispatch(f);
    if (done) this.waited = false;
    return done;
  }

  private dispatch(f: Framer): boolean {
    const type = f.type;
    const cur = this.links.cur;
    if (cur !== null && cur.copyIn && cur.clientCopyOpen && type !== FrontendCode.CopyData && type !== FrontendCode.CopyDone && type !== FrontendCode.CopyFail && type !== FrontendCode.Terminate) {
      // Sync and Flush are ignored in copy-in; anything else ends the COPY with an error, and is consumed by it.
      this.links.forward(cur, f);
      return true;
    }
    if ((type === FrontendCode.Query || type === FrontendCode.Parse || type === FrontendCode.Bind) && this.ctx.controls.paused && !this.batchOpen && this.tx.link === null) {
      // PAUSE: new work waits (work in flight and open transactions carry on).
      this.waitingForResume = true;
      return false;
    }
    if (this.tx.skipToSync && type !== FrontendCode.Sync) return true;
    const problem = bodyProblem(type, f.buf, f.bodyStart, f.end);
    if (problem !== null) return type === FrontendCode.Sync ? this.onSync(f, problem) : this.onMalformed(f, problem);
    try {
      return this.route(f, type, cur);
    } catch (err) {
      // The decoders run before anything changes, so the message can still be answered as a whole.
      if (err instanceof MessageError) return this.onMalformed(f, err.message);
      throw err;
    }
  }

  private route(f: Framer, type: number, cur: Link | null): boolean {
    switch (type) {
      case FrontendCode.Query:
        return this.onQuery(f);
      case FrontendCode.Parse:
        return this.onParse(f);
      case FrontendCode.Bind:
        return this.onBind(f);
      case FrontendCode.Describe:
        if (f.buf[f.bodyStart] === 0x53) return this.onDescribeStatement(f, targetName(f.buf, f.bodyStart, f.end));
        if (this.isLocalPortal(targetName(f.buf, f.bodyStart, f.end))) return this.emitLocal(describeProxyStatement(this.localPortal!.stmt.classification.statements[0]!), 'none');
        return this.onBatchMessage(f);
      case FrontendCode.Execute:
        if (this.isLocalPortal(executePortalName(f.buf, f.bodyStart, f.end))) return this.executeLocal();
        return this.onBatchMessage(f);
      case FrontendCode.Flush:
        if (this.links.cur === null) return true;
        return this.onBatchMessage(f);
      case FrontendCode.Close:
        return this.onClose(f);
      case FrontendCode.Sync:
        return this.onSync(f, null);
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
        throw new FrameError(`invalid frontend message type ${type}`, FrameFault.Type, type);
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
    const minLsnHint = HINT_VALUES.minLsn;
    const maxLagHint = HINT_VALUES.maxLagMs;
    const c = classifyBytes(buf, start, end, hints);
    const statements = c.statements;
    if (statements.length === 1 && statements[0]!.show === 'pool_nodes') return this.answerLocally(poolNodesResult(this.ctx.topology.nodes, this.links.loadBalanceNodeId), true);
    const proxyUnit = proxyUnitOf(c);
    if (proxyUnit === ProxyUnit.Mixed) return this.answerError(MIXED_UNIT_ERROR, true);
    if (proxyUnit === ProxyUnit.Only) return this.runProxyUnit(c);
    if (this.tx.aborted) return this.answerInAbortedTx(statements[0]?.tx?.op ?? null, true);
    const local = this.deferredTransaction(statements, true, buf, start, end);
    if (local !== null) return local;
    const catalog = this.catalog.facts();
    if (catalog === undefined) return false;
    const reason = this.transactionReason(c, decideCached(c, hints, this.ctx.router, this.settings.routing, catalog));
    const refused = this.refusedByRoute(hints, reason);
    if (refused !== null) return this.answerError(refused, true);
    const link = this.pick(reason, false, true, hints, minLsnHint, maxLagHint);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, reason, c, hints, catalog);
    const summary = c.summary;
    // The text is decoded only when something keeps it: a setting, a split transaction's BEGIN, the slow log.
    const keepsText = summary.settings !== 0 || this.slowMs > 0 || (this.split !== null && this.split.wantsText(c, link, this.tx.link));
    const sql = keepsText ? buf.toString('utf8', start, end) : '';
    if (summary.settings !== 0) {
      const setting = settingOf(sql, c);
      if (setting !== null) (link.segmentSettings ??= []).push(setting);
    }
    if (summary.ddl) link.segmentDdl = true;
    if (summary.rollsBack) link.segmentRollback = true;
    if (this.split !== null) this.split.track(sql, c, link, this.tx.link);
    this.links.forward(link, f);
    const captures = this.ryw.capturesAfter(link, this.capturesWrite(c, reason));
    link.expect(this.ryw.entryFor('query', captures));
    this.startUnit(link, sql);
    if (captures) this.captureAfter(link, copiesIn(c));
    return true;
  }

  private onParse(f: Framer): boolean {
    const buf = f.buf;
    const nameEnd = cstringEnd(buf, f.bodyStart, f.end);
    const start = nameEnd + 1;
    const end = cstringEnd(buf, start, f.end);
    const repeat = nameEnd === f.bodyStart ? this.prepared.unnamedRepeat(f) : null;
    const hints = repeat !== null ? repeat.hints : leadingHints(buf, start, end);
    const c = repeat !== null ? repeat.classification : classifyBytes(buf, start, end, hints);
    if (this.answeredLocally(c)) {
      // Not sent anywhere: prepared on a backend only if it ever has to run there.
      if (this.tx.clientStatus === TxStatus.Failed && !endsTransaction(c)) return this.answerError(IN_FAILED_TX, false);
      const problem = parseProblem(c.statements[0]!);
      if (problem !== null) return this.answerError(problem, false);
      if (!this.emitLocalOrWait()) return false;
      this.prepared.parsedLocally(f, nameEnd, start, end, c, hints);
      return this.emitLocal(PARSE_COMPLETE, 'none');
    }
    if (this.tx.aborted) return this.answerInAbortedTx(null, false);
    const catalog = this.catalog.facts();
    if (catalog === undefined) return false;
    const reason = this.transactionReason(c, decideCached(c, hints, this.ctx.router, this.settings.routing, catalog));
    const link = this.pick(reason, this.batchOpen, false, hints, HINT_VALUES.minLsn, HINT_VALUES.maxLagMs);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, reason, c, hints, catalog);
    if (repeat !== null) this.prepared.parsedAgain(link, reason);
    else if (this.prepared.parsed(f, nameEnd, start, end, link, c, hints, reason, this.slowMs > 0)) link.conn.stateTag = this.settings.tag;
    this.links.forward(link, f);
    link.expect(OWED.parse);
    link.batchOpen = true;
    return true;
  }

  /** Bind runs a statement where it is, re-preparing it there when needed. */
  private onBind(f: Framer): boolean {
    const name = bindStatementName(f.buf, f.bodyStart, f.end);
    const stmt = this.prepared.get(name);
    if (stmt !== null && this.answeredLocally(stmt.classification)) {
      if (this.tx.clientStatus === TxStatus.Failed && !endsTransaction(stmt.classification)) return this.answerError(IN_FAILED_TX, false);
      if (!this.emitLocalOrWait()) return false;
      this.localPortal = { name: bindPortalName(f.buf, f.bodyStart, f.end), stmt };
      return this.emitLocal(BIND_COMPLETE, 'none');
    }
    if (this.tx.aborted) return this.answerInAbortedTx(null, false);
    // A Bind to a backend replaces a local portal of the same name (the unnamed one, typically).
    if (this.localPortal !== null && this.localPortal.name === bindPortalName(f.buf, f.bodyStart, f.end)) this.localPortal = null;
    const link = this.useStatement(f, name, stmt);
    if (typeof link === 'boolean') return link;
    if (stmt !== null) {
      const summary = stmt.classification.summary;
      this.unitSql = stmt.sql;
      if (stmt.setting !== null) (link.segmentSettings ??= []).push(stmt.setting);
      if (this.capturesWrite(stmt.classification, stmt.reason === UNDECIDED ? Reason.Read : stmt.reason)) this.unitMayWrite = true;
      if (copiesIn(stmt.classification)) this.unitCopiesIn = true;
      if (summary.ddl) link.segmentDdl = true;
    }
    this.links.forward(link, f);
    link.batchOpen = true;
    return true;
  }

  private onDescribeStatement(f: Framer, name: string): boolean {
    const stmt = this.prepared.get(name);
    if (stmt !== null && this.answeredLocally(stmt.classification)) {
      return this.emitLocal(Buffer.concat([NO_PARAMETERS, describeProxyStatement(stmt.classification.statements[0]!)]), 'none');
    }
    const link = this.useStatement(f, name, stmt);
    if (typeof link === 'boolean') return link;
    this.links.forward(link, f);
    link.batchOpen = true;
    return true;
  }

  /** The link where statement `name` runs (prepared there first if needed), or what handle() must return. */
  private useStatement(f: Framer, name: string, stmt: PreparedStatement | null): Link | boolean {
    if (stmt === null) {
      const link = this.pickCurrent(false);
      // Never prepared in this session: the backend gives PostgreSQL's own answer (26000, a failed transaction).
      if (typeof link !== 'boolean') this.prepared.unknownOn(link, name);
      return link;
    }
    const catalog = stmt.reason === UNDECIDED ? (this.catalog.facts() ?? null) : null;
    const decided = stmt.reason === UNDECIDED ? decideCached(stmt.classification, stmt.hints, this.ctx.router, this.settings.routing, catalog) : stmt.reason;
    const reason = this.transactionReason(stmt.classification, decided);
    const link = this.pick(reason, this.batchOpen, false, stmt.hints, 0n, 0);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, reason, stmt.classification, stmt.hints, catalog);
    if (this.prepared.ensureOn(link, name)) link.conn.stateTag = this.settings.tag;
    void f;
    return link;
  }

  private onClose(f: Framer): boolean {
    const isStatement = f.buf[f.bodyStart] === 0x53;
    const name = targetName(f.buf, f.bodyStart, f.end);
    if (!isStatement && this.isLocalPortal(name)) {
      this.localPortal = null;
      return this.emitLocal(CLOSE_COMPLETE, 'none');
    }
    if (this.links.cur === null && this.tx.link === null) {
      // Nothing of the session is on any backend: PostgreSQL answers a Close of anything with CloseComplete.
      if (isStatement) this.prepared.closed(name, null, this.links.all());
      return this.emitLocal(CLOSE_COMPLETE, 'none');
    }
    const link = this.pickCurrent(false);
    if (typeof link === 'boolean') return link;
    if (isStatement) this.prepared.closed(name, link, this.links.all());
    this.links.forward(link, f);
    link.expect(OWED.close);
    link.batchOpen = true;
    return true;
  }

  /**
   * A message PostgreSQL answers with ERROR 08P01 (a field missing or left over, an unknown subtype). Where a
   * backend holds the session's batch or transaction, it gets the message and answers it itself, failing the
   * transaction as PostgreSQL would; otherwise pgproxy gives the same answer (and fails a deferred transaction).
   */
  private onMalformed(f: Framer, problem: string): boolean {
    const simple = f.type === FrontendCode.Query || f.type === FrontendCode.FunctionCall;
    const cur = this.links.cur;
    if (this.tx.link !== null || (cur !== null && cur.batchOpen)) {
      const link = this.pickCurrent(simple);
      if (typeof link === 'boolean') return link;
      this.links.forward(link, f);
      if (simple) link.expect(this.ryw.entryFor('query', false));
      else link.batchOpen = true;
      return true;
    }
    return this.answerError(new ProxyError(SqlState.ProtocolViolation, problem), simple);
  }

  private onBatchMessage(f: Framer): boolean {
    const link = this.pickCurrent(false);
    if (typeof link === 'boolean') return link;
    this.links.forward(link, f);
    link.batchOpen = true;
    return true;
  }

  /** `problem`: what PostgreSQL says of a Sync with a body (it answers ERROR, then ReadyForQuery). */
  private onSync(f: Framer, problem: string | null): boolean {
    this.localPortal = null;
    const reply = problem === null ? null : new ProxyError(SqlState.ProtocolViolation, problem).toFrame();
    if (this.tx.skipToSync) {
      // The batch failed (in pgproxy, or in a part it moved elsewhere): so did an open transaction.
      this.tx.skipToSync = false;
      return this.emitLocal(reply, 'failed');
    }
    const link = this.links.cur;
    if (link === null || (!link.batchOpen && link.queue.pendingReady === 0 && this.tx.link === null && !link.copyIn)) {
      // Nothing to synchronise on a backend: answer as PostgreSQL would.
      return this.answerLocally(reply, true);
    }
    if (!link.batchOpen && link.queue.length > 0 && !link.copyIn && this.tx.link !== link) {
      // The batch's backend part already ended (pgproxy's own Sync): its ReadyForQuery is pgproxy's to give.
      return this.answerLocally(reply, true);
    }
    this.links.forward(link, f);
    const captures = this.ryw.capturesAfter(link, this.unitMayWrite);
    const copies = this.unitCopiesIn;
    this.unitMayWrite = false;
    this.unitCopiesIn = false;
    link.expect(this.ryw.entryFor('sync', captures));
    link.batchOpen = false;
    this.startUnit(link, this.unitSql);
    if (captures) this.captureAfter(link, copies);
    return true;
  }

  private onFunctionCall(f: Framer): boolean {
    const link = this.pick(Reason.FunctionCall, false, true, 0, 0n, 0);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, Reason.FunctionCall, null, 0, null);
    this.links.forward(link, f);
    const captures = this.ryw.capturesAfter(link, this.tx.link === null);
    link.expect(this.ryw.entryFor('query', captures));
    if (captures) this.ryw.capture(link);
    return true;
  }

  /**
   * Asks for the WAL position behind the unit just sent on `link`: pipelined right behind it, or, for a unit that
   * copies data in, once it has ended (anything sent behind it would reach the backend in the middle of the COPY).
   */
  private captureAfter(link: Link, copiesIn: boolean): void {
    if (copiesIn) link.captureAfterUnit = true;
    else this.ryw.capture(link);
  }

  private startUnit(link: Link, sql: string): void {
    if (link.unitStartedAt === 0) {
      link.unitStartedAt = this.host.lastActivity;
      if (this.slowMs > 0) link.unitSql = sql;
    }
  }

  /**
   * Whether a unit may have written data on the primary: anything that cannot be proved read-only (a write, DDL,
   * COPY FROM, CALL, DO, a call of a function on the primary, a statement not understood).
   */
  private mayWrite(c: Classification, reason: Reason): boolean {
    for (const st of c.statements) if (st.kind === 'write' || st.kind === 'ddl' || st.kind === 'utility' || st.kind === 'unknown') return true;
    return targetOf(reason) === 'primary' && (callsFunctions(c) || reason === Reason.NotUnderstood || reason === Reason.Hint);
  }

  /**
   * Whether the WAL position follows this unit: after an autocommit unit that may have written, and after the
   * COMMIT of a transaction that may have written (a transaction that only read needs no position).
   */
  private capturesWrite(c: Classification, reason: Reason): boolean {
    const writes = this.mayWrite(c, reason);
    const tx = this.tx;
    if (c.summary.begins) {
      if (commits(c)) return writes;
      tx.wrote = writes;
      return false;
    }
    if (tx.link === null && tx.deferred === null) return writes;
    if (writes) tx.wrote = true;
    if (!commits(c)) return false;
    const wrote = tx.wrote;
    tx.wrote = false;
    return wrote;
  }

  /** Brings `link` up to date for the next unit, counts where the unit went and why, and explains it if asked. */
  private beforeSend(link: Link, reason: Reason, c: Classification | null, hints: number, catalog: CatalogFacts | null): void {
    if (!this.settings.upToDate(link)) this.settings.replay(link);
    const deferred = this.tx.deferred;
    if (deferred !== null) {
      // The transaction's first statement chose its node: open it there first.
      link.inject(deferred.frame, OWED.injectedQuery);
      this.tx.deferred = null;
      this.tx.link = link;
      this.tx.status = TxStatus.InTransaction;
      link.statusBefore = TxStatus.InTransaction;
      if (this.split !== null && link.node.role !== 'primary') this.split.opened(deferred.sql);
    }
    if (this.split !== null) {
      const begin = this.split.takePendingBegin(link);
      if (begin !== null) {
        link.inject(begin, OWED.injectedQuery);
        this.tx.link = link;
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
      stats.parsed += summary.parsed;
    }
    // Where it went and why: a read or statement that may run anywhere can still land on the primary.
    const final = target === 'primary' ? reason : this.tx.link !== null && this.tx.link === link && reason !== Reason.Read ? Reason.InTransaction : target === 'read' ? this.links.readReason : Reason.Any;
    stats.routed[final]++;
    if (target === 'primary') node.writes++;
    if (reads > 0) node.selectCount += reads;
    // Anything but a plain read may leave state on the backend that the next client must not see.
    if (target === 'primary' || reads === 0 || c === null || callsFunctions(c)) link.conn.stateTag = this.settings.tag;
    const last = this.last;
    last.reason = final;
    last.node = node;
    last.classification = c;
    last.hints = hints;
    last.sessionNode = this.ctx.config.routing.load_balance === 'session';
    if (!this.waited) last.waitedMs = -1;
    last.catalog = catalog;
    if (this.proxy.explain && !link.batchOpen) {
      // One notice per unit, before its first reply: behind what the client is still owed.
      const text = explainText(last, this.ctx.router, this.settings.routing, catalog);
      if (link.queue.length === 0) this.host.writeClient(notice('NOTICE', '00000', text));
      else link.expect(localAnswer(notice('NOTICE', '00000', text), 'none'));
    }
  }

  // ------------------------------------------------------------------ transactions

  /**
   * A transaction's node follows its access mode: a BEGIN that would not go to the primary (READ ONLY, or the
   * session's default read-only, or split transactions) is answered by pgproxy and sent, just before the
   * transaction's first statement, to the node that statement chooses (so SET TRANSACTION READ WRITE first still
   * reaches the primary, and a read-only transaction's standby is chosen when its snapshot is taken). COMMIT or
   * ROLLBACK of such a transaction that sent nothing is answered too. Returns what handle() returns, or null when
   * the unit goes on as usual.
   */
  private deferredTransaction(statements: readonly StatementFacts[], isQuery: boolean, buf: Buffer, start: number, end: number): boolean | null {
    const st = statements.length === 1 ? statements[0]! : null;
    const op = st?.tx?.op ?? null;
    if (this.tx.deferred !== null) {
      if (st === null || op === null) return null;
      if (op === 'begin') return this.emitLocal(Buffer.concat([notice('WARNING', '25001', 'there is already a transaction in progress'), commandComplete(st.command)]), isQuery ? 'current' : 'none');
      if (op === 'commit' || op === 'rollback') {
        const chain = st.tx!.chain;
        if (!chain) this.tx.deferred = null;
        this.proxy.transactionEnded(op === 'commit');
        return this.emitLocal(commandComplete(op === 'commit' ? 'COMMIT' : 'ROLLBACK'), isQuery ? (chain ? TxStatus.InTransaction : TxStatus.Idle) : 'none');
      }
      return null;
    }
    if (st === null || op !== 'begin' || !this.defersBegin(st)) return null;
    if (!this.emitLocalOrWait()) return false;
    const sql = buf.toString('utf8', start, end);
    const tx = st.tx!;
    this.tx.deferred = { frame: queryMessage(sql), sql, readOnly: tx.readOnly ? true : tx.readWrite ? false : null, isolation: tx.isolation };
    return this.emitLocal(commandComplete(st.command), isQuery ? TxStatus.InTransaction : 'none');
  }

  /**
   * A BEGIN pgproxy may answer itself now: outside a transaction, first of its unit, and its access mode not
   * decided for the primary (READ ONLY, or not given: SET TRANSACTION may still decide it; READ WRITE only in split
   * mode). A serializable transaction, or pgproxy.route = primary, starts on the primary at once.
   */
  private defersBegin(st: StatementFacts): boolean {
    if (this.tx.link !== null || this.tx.status !== TxStatus.Idle || this.batchOpen || this.proxy.route === 'primary') return false;
    const tx = st.tx!;
    const isolation = tx.isolation ?? this.settings.routing.defaultIsolation;
    if (isolation === 'serializable') return false;
    return !tx.readWrite || (this.split !== null && isolation !== 'repeatable read');
  }

  /**
   * The reason of the statement that opens a deferred transaction, from the transaction's access mode: READ ONLY
   * (given, set by SET TRANSACTION as its first statement, or the session's default) reads on a standby; read-write
   * goes to the primary (in split mode, the statement decides); serializable always to the primary.
   */
  private transactionReason(c: Classification, reason: Reason): Reason {
    const deferred = this.tx.deferred;
    if (deferred === null) return reason;
    const routing = this.settings.routing;
    let readOnly = deferred.readOnly ?? routing.defaultReadOnly;
    let isolation = deferred.isolation ?? routing.defaultIsolation;
    const first = c.statements[0];
    const m = first !== undefined && first.session !== null && first.session.name === 'transaction' ? first.txCharacteristics : null;
    if (m !== null) {
      if (m.readWrite) readOnly = false;
      else if (m.readOnly) readOnly = true;
      if (m.isolation !== null) isolation = m.isolation;
    }
    if (isolation === 'serializable') return Reason.Serializable;
    if (readOnly) return Reason.Read;
    if (this.split !== null && isolation !== 'repeatable read') return reason;
    return m !== null && m.readWrite ? Reason.ReadWriteCharacteristics : Reason.ReadWriteTransaction;
  }

  /** Statements pgproxy answers itself: its own settings, and a BEGIN / COMMIT / ROLLBACK it defers or ends. */
  private answeredLocally(c: Classification): boolean {
    const st = c.statements.length === 1 ? c.statements[0]! : null;
    if (st === null) return false;
    if (isProxyStatement(st)) return true;
    const op = st.tx?.op;
    // A transaction failed in pgproxy itself ends here too (any other statement gets 25P02).
    if (this.tx.aborted) return op === 'commit' || op === 'rollback';
    if (op === 'begin') return this.tx.deferred !== null || this.defersBegin(st);
    return this.tx.deferred !== null && (op === 'commit' || op === 'rollback');
  }

  private isLocalPortal(name: string): boolean {
    return this.localPortal !== null && this.localPortal.name === name;
  }

  /** Execute of a portal pgproxy answers itself. */
  private executeLocal(): boolean {
    const stmt = this.localPortal!.stmt;
    const st = stmt.classification.statements[0]!;
    if (isProxyStatement(st)) {
      if (showsLastCommit(stmt.classification) && !this.lastCommitKnown()) return false;
      // In the extended protocol a RowDescription goes only with Describe.
      const r = runProxyStatement(st, this, this.tx.open, false);
      if (!r.failed) return this.emitLocal(r.frames, 'none');
      if (!this.emitLocalOrWait()) return false;
      this.failTransaction();
      this.tx.skipToSync = true;
      return this.emitLocal(r.frames, 'none');
    }
    if (this.tx.aborted) {
      this.endAbortedTransaction();
      return this.emitLocal(ROLLBACK_COMPLETE, 'none');
    }
    const sql = Buffer.from(stmt.sql);
    return this.deferredTransaction(stmt.classification.statements, false, sql, 0, sql.length) ?? this.emitLocal(commandComplete(st.command), 'none');
  }

  /** SET / RESET / SHOW of pgproxy.* in a simple Query. */
  private runProxyUnit(c: Classification): boolean {
    if (this.tx.aborted || this.tx.status === TxStatus.Failed) return this.answerError(IN_FAILED_TX, true);
    if (showsLastCommit(c) && !this.lastCommitKnown()) return false;
    const parts: Buffer[] = [];
    let failed = false;
    for (const st of c.statements) {
      const r = runProxyStatement(st, this, this.tx.open, true);
      parts.push(r.frames);
      failed = r.failed;
      if (failed) break;
    }
    if (!failed) return this.emitLocal(parts.length === 1 ? parts[0]! : Buffer.concat(parts), 'current');
    if (!this.emitLocalOrWait()) return false;
    this.failTransaction();
    return this.emitLocal(parts.length === 1 ? parts[0]! : Buffer.concat(parts), 'failed');
  }

  /**
   * Whether SHOW pgproxy.last_commit_lsn can be answered now: not while the position of the session's last write
   * is still to come (database mode: its query pipelined behind the write; the session resumes once it is
   * answered), nor before the primary's position is fetched for writes whose position was not captured. When the
   * fetch fails, the answer is what is known.
   */
  private lastCommitKnown(): boolean {
    const cur = this.links.cur;
    if (cur !== null && (cur.captureAfterUnit || cur.queue.has('lsn'))) return false;
    if (!this.positionKnown()) return false;
    if (this.positionFailed) {
      this.positionFailed = false;
      this.ryw.positionUnknown = false;
    }
    return true;
  }

  /**
   * Whether the position of the session's writes is known (or its fetch failed: `positionFailed`, for the caller to
   * consume). If not, it is fetched from the primary once no link owes the client replies: the writes are then
   * acknowledged, so the primary's position is at or past their commits. False: the session waits, and is resumed
   * when the replies are in (replies.ts) or the position arrives.
   */
  private positionKnown(): boolean {
    if (!this.ryw.positionUnknown || this.positionFailed) return true;
    if (this.fetchingPosition || this.links.busy) return false;
    this.fetchingPosition = true;
    void this.ctx.replay.primaryInsertLsn().then((lsn) => {
      this.fetchingPosition = false;
      if (!this.ryw.fetched(lsn)) {
        if (this.ctx.topology.primary() === null) this.ryw.primaryGone();
        else this.positionFailed = true;
      }
      this.host.resume();
    });
    return false;
  }

  private fetchingPosition = false;
  /** The last fetch of the primary's position failed: the read waiting for it goes to the primary. */
  private positionFailed = false;

  /**
   * read_your_writes session: a read that may leave the primary after the session's writes waits for their
   * position (false). A failed fetch sends that read to the primary.
   */
  private readPositionReady(target: Target, withinUnit: boolean): boolean {
    if (target !== 'read' || !this.ryw.positionPending || this.proxy.route === 'primary') return true;
    const cur = this.links.cur;
    if (withinUnit && cur !== null && cur.node.role === 'primary' && cur.node.up) return true;
    return this.positionKnown();
  }

  /** pgproxy.route = standby (or its hint) refuses what needs the primary. */
  private refusedByRoute(hints: number, reason: Reason): ProxyError | null {
    if (targetOf(reason) !== 'primary' || (this.proxy.route !== 'standby' && (hints & Hint.Standby) === 0) || this.tx.link !== null) return null;
    return new ProxyError('25006', `pgproxy.route is standby: this statement needs the primary (${reason === Reason.Write ? 'write' : 'not a plain read'})`, 'ERROR', 'SET pgproxy.route = auto to send it to the primary.');
  }

  // ------------------------------------------------------------------ choosing a link

  /**
   * The link for work with this reason; or, for handle() to return, false (wait and re-read the message) or true
   * (pgproxy answered it with an error already).
   */
  private pick(reason: Reason, withinUnit: boolean, isQuery: boolean, hints: number, minLsnHint: bigint, maxLagHint: number): Link | boolean {
    try {
      const target = targetOf(reason);
      const tx = this.tx;
      if (this.split !== null && tx.link !== null && target === 'primary' && tx.link.node.role !== 'primary' && tx.status === TxStatus.InTransaction && this.split.active) {
        this.moveSplitTransaction(tx.link);
      }
      if (tx.link !== null) return this.links.switchTo(tx.link) ?? false;
      if (!this.readPositionReady(target, withinUnit)) return false;
      const needs = this.readNeeds(hints, minLsnHint, maxLagHint);
      if (this.positionFailed) {
        this.positionFailed = false;
        needs.primary = true;
      }
      const link = this.links.forRoute(target, withinUnit, needs);
      if (link !== null) {
        if (this.waited) this.waitEnded(link);
        return link;
      }
      if (this.links.readWait) this.waitForStandby();
      return false;
    } catch (err) {
      return this.answerError(err as Error, isQuery);
    }
  }

  /** What the read being placed needs of its node (filled into one reused object). */
  private readNeeds(hints: number, minLsnHint: bigint, maxLagHint: number) {
    const n = this.needs;
    const proxy = this.proxy;
    let minLsn = this.ryw.requiredLsn();
    const token = (hints & Hint.MinLsn) !== 0 ? minLsnHint : proxy.minLsn;
    if (token !== null && (minLsn === null || token > minLsn)) minLsn = token;
    const bound = (hints & Hint.MaxLagMs) !== 0 ? maxLagHint : proxy.maxLagMs;
    n.minLsn = minLsn;
    n.boundMs = bound !== null && bound > 0 ? bound : 0;
    n.freshSince = bound === 0 ? (this.waitStartedAt > 0 && this.waited ? this.waitStartedAt : Date.now()) : 0;
    n.onlyStandbys = proxy.route === 'standby' || (hints & Hint.Standby) !== 0;
    n.primary = proxy.route === 'primary';
    n.mayWait = !this.waited && this.ctx.config.routing.read_your_writes_wait_ms > 0 && (minLsn !== null || bound !== null);
    return n;
  }

  /** No standby meets the read's needs yet: wait (polling replay positions) for one to, then try again. */
  private waitForStandby(): void {
    const needs = this.needs;
    const copy = { ...needs };
    this.waitStartedAt = Date.now();
    const startedAt = performance.now();
    this.last.waitedFor = needs.minLsn;
    void this.ctx.replay.waitUntil(() => this.links.standbyQualifies(copy), this.ctx.config.routing.read_your_writes_wait_ms, needs.minLsn).then(() => {
      this.waited = true;
      this.last.waitedMs = performance.now() - startedAt;
      this.host.resume();
    });
  }

  /** A read that waited found its node. */
  private waitEnded(link: Link): void {
    const stats = this.ctx.stats;
    if (link.node.role === 'standby') stats.replayWaits.standby++;
    else stats.replayWaits.primary++;
    stats.replayWait.observe(this.last.waitedMs);
  }

  /** Like pick, for messages that follow the current unit (Execute, Describe of a portal, Close...). */
  private pickCurrent(isQuery: boolean): Link | boolean {
    try {
      if (this.tx.link !== null) return this.links.switchTo(this.tx.link) ?? false;
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
    this.tx.link = null;
  }

  // ------------------------------------------------------------------ answers pgproxy gives itself

  /**
   * Sends an answer pgproxy gives itself, in the client's order: at once when nothing is owed, else queued behind
   * the unit the current link is answering. A batch still open on a backend is ended there first (pgproxy's own
   * Sync) and the message waits for it: returns false then.
   */
  private emitLocal(bytes: Buffer | null, ready: LocalReady): boolean {
    const cur = this.links.cur;
    if (cur !== null && cur.batchOpen) {
      this.links.endBatchPart(cur);
      return false;
    }
    if (cur === null || cur.queue.length === 0) writeLocal(this.host, this.tx, bytes, ready);
    else cur.expect(localAnswer(bytes, ready));
    return true;
  }

  /** Like emitLocal's first check alone: false (and the backend's batch part ended) when the answer must wait. */
  private emitLocalOrWait(): boolean {
    const cur = this.links.cur;
    if (cur === null || !cur.batchOpen) return true;
    this.links.endBatchPart(cur);
    return false;
  }

  private answerLocally(reply: Buffer | null, withReady: boolean): boolean {
    return this.emitLocal(reply, withReady ? 'current' : 'none');
  }

  /** An error pgproxy raises for the current message: a Query gets ReadyForQuery, a batch skips to Sync. */
  private answerError(err: Error, isQuery: boolean): boolean {
    const pe = err instanceof ProxyError ? err : new ProxyError(SqlState.InternalError, err.message);
    if (!(err instanceof ProxyError)) this.log.error({ err }, 'unexpected routing error');
    if (!this.emitLocalOrWait()) return false;
    this.failTransaction();
    if (!isQuery) this.tx.skipToSync = true;
    return this.emitLocal(pe.toFrame(), isQuery ? 'failed' : 'none');
  }

  /**
   * An error pgproxy raised inside a transaction fails it, as any error does in PostgreSQL. A transaction only
   * pgproxy knows of (its BEGIN answered, not sent) is failed here; one on a backend is failed there too, by a
   * statement that fails (its error is pgproxy's own), so that the backend answers what follows with 25P02 and a
   * COMMIT with ROLLBACK. A unit still under way may be opening a transaction: the statement follows it as well
   * (outside a transaction it fails alone). Called before the error is queued (the error then follows that
   * statement); the client's status goes with the error ('failed').
   */
  private failTransaction(): void {
    const tx = this.tx;
    if (tx.aborted || tx.status === TxStatus.Failed) return;
    if (tx.deferred !== null) {
      tx.deferred = null;
      tx.aborted = true;
      return;
    }
    const link = tx.link ?? this.links.cur;
    if (link !== null && !link.conn.closed && (link === tx.link || link.queue.pendingReady > 0)) link.inject(FAIL_TRANSACTION, OWED.failTransaction);
  }

  /** ROLLBACK or COMMIT of a transaction failed in pgproxy itself (no backend holds it). */
  private endAbortedTransaction(): void {
    const tx = this.tx;
    tx.lostError = null;
    tx.aborted = false;
    tx.status = TxStatus.Idle;
    this.proxy.transactionEnded(false);
  }

  private answerInAbortedTx(op: string | null, isQuery: boolean): boolean {
    const tx = this.tx;
    if (isQuery && (op === 'rollback' || op === 'commit')) {
      this.endAbortedTransaction();
      return this.answerLocally(ROLLBACK_COMPLETE, true);
    }
    const lost = tx.lostError;
    if (lost !== null) {
      const ok = this.answerError(lost, isQuery);
      if (ok) tx.lostError = null;
      return ok;
    }
    return this.answerError(IN_FAILED_TX, isQuery);
  }

  // ------------------------------------------------------------------ ShowSource (SHOW pgproxy.*)

  lastCommitLsn(): string {
    const lsn = this.ryw.lastCommitLsn;
    return lsn === null ? '' : formatLsn(lsn);
  }

  lastRoute(): string {
    if (this.last.node === null) return '';
    return `${this.last.node.name} (${this.last.node.role}): ${routeText(this.last, this.ctx.router, this.settings.routing, this.last.catalog)}`;
  }

  // ------------------------------------------------------------------ LinksHost

  acquired(): void {
    this.host.resume();
  }

  // ------------------------------------------------------------------ for the session

  /** The client's input was handled up to the end of a chunk: send what was gathered. */
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
/** Fails the transaction it runs in (see failTransaction); the server log says why. */
const FAIL_TRANSACTION = queryMessage(`SELECT 'pgproxy: the client''s transaction failed on an error pgproxy raised'::pg_catalog.int4`);
const IN_FAILED_TX = new ProxyError(SqlState.InFailedTransaction, 'current transaction is aborted, commands ignored until end of transaction block');

/** Some statement of the unit calls a function (one may change session state, e.g. through set_config). */
function callsFunctions(c: Classification): boolean {
  const statements = c.statements;
  for (let i = 0; i < statements.length; i++) if (statements[i]!.functions.length > 0) return true;
  return false;
}

/** The unit copies data in (COPY ... FROM STDIN). */
function copiesIn(c: Classification): boolean {
  for (const st of c.statements) if (st.copy === 'from') return true;
  return false;
}

/** The unit has SHOW pgproxy.last_commit_lsn. */
function showsLastCommit(c: Classification): boolean {
  for (const st of c.statements) if (st.show === 'pgproxy.last_commit_lsn') return true;
  return false;
}

/** The unit is a COMMIT or ROLLBACK (what a failed transaction still accepts). */
function endsTransaction(c: Classification): boolean {
  const op = c.statements.length === 1 ? c.statements[0]!.tx?.op : undefined;
  return op === 'commit' || op === 'rollback';
}

/** The unit ends a transaction with COMMIT. */
function commits(c: Classification): boolean {
  for (const st of c.statements) {
    const op = st.tx?.op;
    if (op === 'commit' || op === 'commit_prepared') return true;
  }
  return false;
}

