/**
 * One client connection: startup, authentication, then the routing loop that forwards each unit of work
 * (a Query, or an extended-protocol batch up to Sync) to the backend connection of the node it must run on.
 *
 * Invariant that keeps replies in order without buffering them: at most one backend connection owes the
 * client replies at any time. Before work goes to another connection, the session waits (holding the client's
 * further input) until the current one has sent its last ReadyForQuery. Mid-batch moves from a standby to the
 * primary end the standby's part with pgproxy's own Sync, whose ReadyForQuery the client never sees.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { serialize } from 'pg-protocol';
import { isShowPoolNodes, poolNodesResult } from './admin/pool-nodes.js';
import { BackendError, NodeConnectionError, ProxyError, isNodeUnavailableState } from './errors.js';
import type { BackendConnection, BackendOwner } from './pool/backend.js';
import { parseLsn, type NodeState } from './nodes/topology.js';
import type { ClientInfo, ProxyContext, SessionView } from './context.js';
import { canRead, pickReadNode, readable, type LagLimits } from './router/balancer.js';
import { classify, type StatementFacts } from './router/classify.js';
import type { CatalogSnapshot } from './router/catalog.js';
import { redirectFor, routeClassification, type CatalogFacts, type Route, type SessionRouting } from './router/policy.js';
import type { HbaMethod } from './config/schema.js';
import { hbaMethod } from './wire/auth/hba.js';
import { randomSalt, verifyMd5Response } from './wire/auth/md5.js';
import { verifyCleartextPassword } from './wire/auth/password.js';
import { mockScramVerifier, ScramServer, scramVerifierFromSecret, SCRAM_MECHANISM, type ScramClientKeys } from './wire/auth/scram.js';
import {
  AUTH_OK,
  AUTH_CLEARTEXT,
  authMd5Request,
  authSaslContinue,
  authSaslRequest,
  backendKeyData,
  parameterStatus,
  parseErrorFields,
  readyForQuery,
  SSL_ACCEPTED,
  SSL_REFUSED,
  errorResponse,
} from './wire/backend.js';
import { BackendCode, CANCEL_REQUEST_CODE, FrontendCode, GSSENC_REQUEST_CODE, MAX_STARTUP_PACKET, PROTOCOL_3_0, SSL_REQUEST_CODE, SqlState, TxStatus } from './wire/codes.js';
import { Framer, FrameError } from './wire/framer.js';
import {
  MessageError,
  bindStatementName,
  closeStatement,
  parseParse,
  parseStartup,
  queryText,
  queryMessage,
  SYNC,
  targetName,
} from './wire/frontend.js';
import { captureSet, ReplyScanner, type ReplyHandler } from './wire/reply-scanner.js';

const enum Phase {
  Startup,
  Auth,
  Login,
  Ready,
  Closed,
}

// Entries of a link's reply FIFO: what a reply of type '1', '3' or 'Z' answers.
const E_PARSE = 1;
const E_CLOSE = 2;
const E_SYNC = 3;
const E_QUERY = 4;
/** pgproxy's own `SELECT pg_current_wal_insert_lsn()` (read-your-writes): its DataRow is read, not forwarded. */
const E_LSN = 5;
/** The client's CopyDone/CopyFail, sent before the backend said it entered COPY (marks which Syncs came before it). */
const E_COPYEND = 6;
const INJECTED = 8;
const KIND = 7;

const CAPTURE = captureSet(BackendCode.ReadyForQuery, BackendCode.ErrorResponse, BackendCode.NotificationResponse);
/** ErrorResponses up to this size are inspected before they are forwarded (all real ones are far smaller). */
const MAX_ERROR_CAPTURE = 64 * 1024;

function errorFrame(body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(body.length + 5);
  b[0] = BackendCode.ErrorResponse;
  b.writeInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}
const LSN_QUERY = queryMessage('SELECT pg_current_wal_insert_lsn()::text');

/** Entries answered by a ReadyForQuery. */
function endsWithReady(entry: number): boolean {
  const k = entry & KIND;
  return k >= E_SYNC && k <= E_LSN;
}

/** Parameters the client cannot set with SET at startup; everything else it sends is replayed on backends. */
const NOT_REPLAYED = new Set(['user', 'database', 'replication', 'options']);

/** A statement prepared by the client (named, or the unnamed one), as pgproxy needs it to re-prepare elsewhere. */
interface TrackedStatement {
  sql: string;
  route: Route;
  /** A copy of the client's Parse message, injected on backends that have not seen it. */
  parse: Buffer;
  /** The statement changes session state: its text, replayed on other backends once it succeeded. */
  setting: string | null;
}

/** A backend connection held by this session, with the state of the replies it owes. */
class Link implements ReplyHandler {
  readonly scanner: ReplyScanner;
  private fifo: number[] = [];
  private head = 0;
  /** Sync/Query messages sent whose ReadyForQuery has not arrived yet. */
  pendingZ = 0;
  status: number = TxStatus.Idle;
  copyIn = false;
  /** Only plain reads ran here (a returned connection then needs no DISCARD ALL). */
  onlyReads = true;
  /** How many of the session's recorded settings this backend has applied. */
  appliedSettings = 0;
  /** Session settings sent since the client's last ReadyForQuery on this link, applied once they succeed. */
  segmentSettings: string[] | null = null;
  /** An ErrorResponse arrived since the client's last ReadyForQuery on this link. */
  segmentError = false;
  /** Status before the current segment (to see a transaction end). */
  statusBefore: number = TxStatus.Idle;
  /** The segment rolls back (ROLLBACK, ROLLBACK TO): settings made in it are not kept. */
  segmentRollback = false;
  /** The segment changed the schema: the database's catalog facts must be reloaded. */
  segmentDdl = false;

  /** Transaction pooling: return this link to the pool once the current inbound chunk is handled. */
  releaseAfterFeed = false;
  /** Statements closed by the client elsewhere, to close here before this backend is used again. */
  pendingCloses: string[] | null = null;
  private readonly capture = new Uint8Array(CAPTURE);

  constructor(
    readonly session: Session,
    readonly conn: BackendConnection,
    readonly node: NodeState,
  ) {
    this.scanner = new ReplyScanner(this, this.capture);
  }

  expect(entry: number): void {
    this.fifo.push(entry);
    if (endsWithReady(entry)) this.pendingZ++;
  }

  /** When the oldest unit still owed a reply was sent (0: none), and its SQL (for the slow log). */
  private unitStart = 0;
  private unitSql = '';

  startUnit(sql: string): void {
    if (this.unitStart === 0) {
      this.unitStart = performance.now();
      this.unitSql = sql;
    }
  }

  /** The client's ReadyForQuery for a unit arrived: account for its duration. */
  finishUnit(slowMs: number): void {
    if (this.unitStart === 0) return;
    const ms = performance.now() - this.unitStart;
    this.unitStart = 0;
    const n = this.node;
    n.queries++;
    n.queryTimeMs += ms;
    n.latency.observe(ms);
    if (slowMs > 0 && ms > slowMs) this.session.logSlow(this.node.name, ms, this.unitSql);
  }

  /** ReadyForQuery messages the client still expects from this link (its own Syncs and Queries). */
  clientPendingReady(): number {
    let n = 0;
    for (let i = this.head; i < this.fifo.length; i++) {
      const e = this.fifo[i]!;
      if (endsWithReady(e) && (e & INJECTED) === 0) n++;
    }
    return n;
  }

  /**
   * PostgreSQL ignores Sync (and Flush) in copy-in mode: Syncs the client sent after the COPY's Execute and
   * before its CopyDone (pipelined, before we knew) will get no ReadyForQuery.
   */
  private dropSyncsDuringCopy(): void {
    const kept: number[] = [];
    let beforeEnd = true;
    for (let i = this.head; i < this.fifo.length; i++) {
      const e = this.fifo[i]!;
      const k = e & KIND;
      if (k === E_COPYEND && beforeEnd) {
        beforeEnd = false;
        continue;
      }
      if (beforeEnd && k === E_SYNC && (e & INJECTED) === 0) {
        this.pendingZ--;
        continue;
      }
      kept.push(e);
    }
    this.fifo = kept;
    this.head = 0;
    this.clientCopyOpen = beforeEnd;
  }

  /** The client is still sending COPY data (CopyDone/CopyFail not sent yet). */
  clientCopyOpen = false;
  /** Messages of an extended batch were sent since the last Sync (a backend left so would skip to Sync, or keep a portal open). */
  batchOpen = false;

  /** DataRows are captured only while an LSN query is under way (it is rare; forwarding stays zero-copy otherwise). */
  captureDataRows(on: boolean): void {
    this.capture[BackendCode.DataRow] = on ? 1 : 0;
  }

  private peek(): number {
    return this.head < this.fifo.length ? this.fifo[this.head]! : 0;
  }

  private shift(): number {
    const e = this.fifo[this.head++]!;
    if (this.head === this.fifo.length) {
      this.fifo.length = 0;
      this.head = 0;
    }
    return e;
  }

  onReplyHeader(type: number, bodyLength: number): boolean {
    const head = this.peek();
    if (head === (E_QUERY | INJECTED) || head === (E_LSN | INJECTED)) return false;
    switch (type) {
      case BackendCode.ParseComplete:
        return (head & KIND) === E_PARSE ? (this.shift() & INJECTED) === 0 : true;
      case BackendCode.CloseComplete:
        return (head & KIND) === E_CLOSE ? (this.shift() & INJECTED) === 0 : true;
      case BackendCode.ReadyForQuery: {
        // Parse/Close entries still queued were skipped by an error; the Z answers the first Sync/Query.
        for (let i = this.head; i < this.fifo.length; i++) {
          if (endsWithReady(this.fifo[i]!)) return (this.fifo[i]! & INJECTED) === 0;
        }
        return true;
      }
      case BackendCode.ErrorResponse:
        // In the extended protocol the backend skips everything up to Sync after an error.
        if ((head & KIND) !== E_QUERY) while ((this.peek() & KIND) === E_PARSE || (this.peek() & KIND) === E_CLOSE) this.shift();
        // Forwarded (or not) once its severity is known, in onReplyMessage; an oversized one goes as it is.
        return bodyLength > MAX_ERROR_CAPTURE;
      case BackendCode.NotificationResponse:
        // Re-sent in onReplyMessage with the session's own pid where the backend put its own.
        return bodyLength > MAX_ERROR_CAPTURE;
      case BackendCode.CopyInResponse:
      case BackendCode.CopyBothResponse:
        this.copyIn = true;
        this.dropSyncsDuringCopy();
        return true;
      default:
        return true;
    }
  }

  onReplyMessage(type: number, body: Buffer): void {
    if (type === BackendCode.ReadyForQuery) {
      let entry = 0;
      while (this.head < this.fifo.length) {
        const e = this.shift();
        if (endsWithReady(e)) {
          entry = e;
          break;
        }
      }
      if ((entry & KIND) === E_LSN && !this.fifo.some((e) => (e & KIND) === E_LSN)) this.captureDataRows(false);
      this.pendingZ--;
      this.copyIn = false;
      this.status = body[0]!;
      this.session.onLinkReady(this, (entry & INJECTED) !== 0);
    } else if (type === BackendCode.NotificationResponse) {
      this.session.forwardNotification(this, body);
    } else if (type === BackendCode.DataRow) {
      if (this.peek() === (E_LSN | INJECTED)) {
        // One text column: the LSN as 'X/Y'.
        const len = body.readInt32BE(2);
        const lsn = len > 0 ? parseLsn(body.toString('latin1', 6, 6 + len)) : null;
        if (lsn !== null) this.session.noteWriteLsn(lsn);
      }
    } else if (type === BackendCode.ErrorResponse) {
      const f = parseErrorFields(body);
      if (isNodeUnavailableState(f.code)) this.session.onNodeUnavailable(this, f.code, f.message);
      // A FATAL ends the backend connection: the client hears of it as one 08006 when its connection closes.
      // An error nobody asked for (this link owes the client nothing) would desynchronise the client.
      const fatal = f.severity === 'FATAL' || f.severity === 'PANIC';
      const owed = this.clientPendingReady() > 0 || this.copyIn || this.session.inOpenBatch(this);
      if (fatal && f.code === SqlState.ProtocolViolation && owed) {
        // The client broke the protocol (as PostgreSQL saw it): it gets PostgreSQL's answer, and is closed like there.
        this.session.writeClient(errorFrame(body));
        this.session.closeAfterProtocolError();
        return;
      }
      if (fatal || !owed) return;
      this.segmentError = true;
      this.session.countError(f.code);
      this.session.writeClient(errorFrame(body));
    }
  }

  onForward(bytes: Buffer): void {
    this.session.writeClient(bytes);
  }
}

export class Session implements BackendOwner, SessionView {
  readonly id: number;
  private phase = Phase.Startup;
  private readonly framer: Framer;
  private log: Logger;
  private user = '';
  private database = '';
  private secret = '';
  private startupParams = new Map<string, string>();
  private replayParams = '';
  private replaySignature = '';
  private md5Salt: Buffer | null = null;
  private scram: ScramServer | null = null;
  readonly cancelKey: { pid: number; secret: number };

  /** Backend connections held, by node id. */
  private readonly links = new Map<number, Link>();
  /** The link of the current or last unit: where messages without routing information go. */
  private cur: Link | null = null;
  /** Inside an extended-protocol batch (messages sent since the last Sync). */
  private unitOpen = false;
  /** Link of the open transaction (its last client-visible ReadyForQuery said T or E). */
  private txLink: Link | null = null;
  private txStatus: number = TxStatus.Idle;
  /** The session's load-balance node for reads (pgpool's session-level load balancing). */
  private readNodeId: number | null = null;
  private readonly statements = new Map<string, TrackedStatement>();
  /** Session defaults that change routing (read-only or serializable transactions by default). */
  private readonly routing: SessionRouting = { defaultReadOnly: false, defaultSerializable: false };
  /** Why the session's reads are tied to the primary (an object living in its primary backend session). */
  private pinned: string | null = null;
  /** Where a redirect rule sends this session's reads: 'primary', 'standby', a node id, or null (no rule). */
  private readPreference: 'primary' | 'standby' | number | null = null;
  /** Read-your-writes: the WAL position of the session's last committed write; reads need a standby past it. */
  private minReadLsn: bigint | null = null;
  /** The open extended batch changed data (read-your-writes asks for the WAL position after its Sync). */
  private unitWrites = false;
  /** SQL of the last statement bound in the open batch (for the slow-statement log). */
  private unitSql = '';
  /** Split transactions: the BEGIN of a read-write transaction running on a standby until its first write. */
  private splitBegin: string | null = null;
  /** ...and its savepoint commands so far, to recreate them on the primary. */
  private splitSavepoints: string[] = [];
  /** The transaction is being moved to the primary: this opens it there before the first statement. */
  private pendingPrimaryBegin: string | null = null;
  /** Session settings (SET, RESET, DISCARD...) that took effect, in order: replayed on every other backend. */
  private readonly settings: string[] = [];
  /** Settings made inside the open transaction: recorded at COMMIT, dropped at ROLLBACK. */
  private pendingSettings: string[] = [];

  /** Set while an extended batch failed in pgproxy itself: everything up to Sync is discarded. */
  private skipToSync = false;
  /** The transaction lost its backend: statements get 25P02 until the client ends it. */
  private abortedTx = false;

  /** Client input held while waiting (for a backend connection, or for another link to finish). */
  private held: Buffer | null = null;
  private blocked = false;
  private acquireError: { nodeId: number; error: Error } | null = null;
  /** Node whose backend connection is being acquired (at most one at a time; the session is blocked meanwhile). */
  private acquiring: number | null = null;
  /** When the client last sent anything (for idle timeouts; read by a once-a-second sweep). */
  private lastActivity = Date.now();
  private clientPaused = false;

  private client: net.Socket;
  /** The user has a stored secret (configured, or found by auth.query). */
  private knownUser = false;
  /** The client's address (for access rules and the login-failure limit). */
  private readonly address: string;
  private tls = false;
  /** Cleartext password method: the next password message is the password itself. */
  private cleartext = false;
  private authTimer: NodeJS.Timeout | null;

  constructor(
    private readonly ctx: ProxyContext,
    socket: net.Socket,
  ) {
    this.id = ctx.registry.nextSessionId();
    this.cancelKey = ctx.registry.newCancelKey(this);
    this.log = ctx.log.child({ client: this.id });
    this.framer = new Framer(MAX_STARTUP_PACKET, true);
    this.client = socket;
    this.address = socket.remoteAddress ?? '';
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    this.bindClient(socket);
    socket.on('close', () => this.close());
    this.authTimer = setTimeout(() => this.fatal(new ProxyError(SqlState.ProtocolViolation, 'authentication timeout (listen.auth_timeout_ms)', 'FATAL')), ctx.config.listen.auth_timeout_ms);
    this.log.info({ remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'client connected');
  }

  private bindClient(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('drain', () => this.onClientDrain());
    socket.on('error', () => this.close());
  }

  /** Answered 'S' to SSLRequest: the rest of the connection runs over TLS. */
  private startTls(): void {
    const raw = this.client;
    raw.removeAllListeners('data');
    raw.removeAllListeners('drain');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.ctx.tls! });
    this.client = secure;
    this.tls = true;
    this.bindClient(secure);
    secure.on('close', () => this.close());
  }

  // ---------------------------------------------------------------- client input

  private onClientData(chunk: Buffer): void {
    if (this.phase === Phase.Closed) return;
    this.lastActivity = Date.now();
    if (this.blocked) {
      this.held = this.held ? Buffer.concat([this.held, chunk]) : chunk;
      return;
    }
    const f = this.framer;
    f.push(chunk);
    try {
      while (f.next()) {
        if (!this.handleFrame()) {
          const rest = f.takeRest(true);
          this.held = this.held ? Buffer.concat([rest, this.held]) : rest;
          this.blocked = true;
          this.client.pause();
          break;
        }
        if (this.isClosed()) return;
      }
    } catch (err) {
      this.protocolFailure(err as Error);
    } finally {
      this.flushRun();
    }
  }

  private resume(): void {
    if (!this.blocked || this.phase === Phase.Closed) return;
    this.blocked = false;
    const data = this.held;
    this.held = null;
    if (!this.clientPaused) this.client.resume();
    if (data && data.length > 0) this.onClientData(data);
  }

  /** Returns false when the frame cannot be handled yet (the session blocks and re-reads it later). */
  private handleFrame(): boolean {
    switch (this.phase) {
      case Phase.Startup:
        this.handleStartup();
        return true;
      case Phase.Auth:
        this.handleAuth();
        return true;
      case Phase.Login:
        return false;
      case Phase.Ready:
        return this.handleMessage();
      default:
        return true;
    }
  }

  private protocolFailure(err: Error): void {
    const message = err instanceof FrameError || err instanceof MessageError ? err.message : `internal error: ${err.message}`;
    if (!(err instanceof FrameError || err instanceof MessageError)) this.log.error({ err }, 'session failed');
    else this.log.info({ reason: message }, 'protocol violation; closing client');
    this.fatal(new ProxyError(SqlState.ProtocolViolation, message, 'FATAL'));
  }

  // ---------------------------------------------------------------- startup and authentication

  private handleStartup(): void {
    const f = this.framer;
    const buf = f.buf;
    if (f.end - f.start < 8) throw new FrameError('startup packet too short');
    const code = buf.readInt32BE(f.start + 4);
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      // Bytes sent after the request, before our answer, would be read as if encrypted (CVE-2021-23214).
      if (f.buffered > 0) throw new FrameError('unexpected data after encryption request');
      f.expectUntyped();
      if (code === SSL_REQUEST_CODE && this.ctx.tls !== null && !this.tls) {
        this.client.write(SSL_ACCEPTED);
        this.startTls();
      } else {
        this.client.write(SSL_REFUSED);
      }
      return;
    }
    if (code === CANCEL_REQUEST_CODE) {
      if (f.end - f.start === 16) this.ctx.registry.cancel(buf.readInt32BE(f.start + 8), buf.readInt32BE(f.start + 12));
      this.close();
      return;
    }
    if (code >> 16 !== 3) {
      this.fatal(new ProxyError(SqlState.FeatureNotSupported, `unsupported frontend protocol ${code >> 16}.${code & 0xffff}: server supports 3.0 to 3.0`, 'FATAL'));
      return;
    }
    const startup = parseStartup(buf, f.start, f.end);
    const unsupported = [...startup.params.keys()].filter((k) => k.startsWith('_pq_.'));
    if (startup.protocol !== PROTOCOL_3_0 || unsupported.length > 0) this.client.write(negotiateProtocolVersion(unsupported));
    for (const k of unsupported) startup.params.delete(k);
    // Until login completes, messages are small (PostgreSQL allows auth tokens up to 65535 bytes).
    this.framer.setMaxFrame(MAX_AUTH_MESSAGE);
    const user = startup.params.get('user');
    if (!user) {
      this.fatal(new ProxyError(SqlState.InvalidAuthorization, 'no PostgreSQL user name specified in startup packet', 'FATAL'));
      return;
    }
    const replication = startup.params.get('replication');
    if (replication !== undefined && replication !== 'false' && replication !== 'off' && replication !== '0' && replication !== 'no') {
      this.fatal(new ProxyError(SqlState.FeatureNotSupported, 'pgproxy does not accept replication connections; connect to the primary directly', 'FATAL'));
      return;
    }
    this.user = user;
    this.database = startup.params.get('database') || user;
    if (this.ctx.config.tls.mode === 'require' && !this.tls) {
      this.fatal(new ProxyError(SqlState.InvalidAuthorization, 'pgproxy requires TLS (tls.mode = require): connect with sslmode=require', 'FATAL'));
      return;
    }
    this.startupParams = startup.params;
    this.replayParams = buildReplaySql(startup.params);
    this.replaySignature = this.replayParams;
    this.log = this.log.child({ user: this.user, database: this.database });
    this.readPreference = redirectFor(this.ctx.router, { applicationName: startup.params.get('application_name') ?? '', database: this.database, user: this.user });
    if (this.replayParams !== '') applyRoutingEffects(this.routing, this.replayParams);
    this.beginAuth();
  }

  private beginAuth(): void {
    const auth = this.ctx.config.auth;
    if (this.ctx.loginFailures.blocked(this.address)) {
      this.log.warn({ address: this.address }, 'login refused: too many failed attempts from this address');
      this.fatal(new ProxyError(SqlState.InvalidAuthorization, 'too many failed login attempts; try again later', 'FATAL'));
      return;
    }
    let method: HbaMethod | null = auth.method;
    if (this.ctx.hba.length > 0) {
      method = hbaMethod(this.ctx.hba, { database: this.database, user: this.user, address: this.address, tls: this.tls });
      const where = `host "${this.address}", user "${this.user}", database "${this.database}", ${this.tls ? 'SSL on' : 'SSL off'}`;
      if (method === null) return this.fatal(new ProxyError(SqlState.InvalidAuthorization, `no pgproxy hba rule for ${where}`, 'FATAL'));
      if (method === 'reject') return this.fatal(new ProxyError(SqlState.InvalidAuthorization, `pgproxy hba rejects connection for ${where}`, 'FATAL'));
    }
    const entry = auth.users.find((u) => u.name === this.user);
    if (entry === undefined && this.ctx.authQuery !== null && method !== 'trust') {
      // Not configured: ask the primary for the stored secret (client input waits meanwhile).
      this.phase = Phase.Login;
      const m = method;
      this.ctx.authQuery.lookup(this.user).then(
        (secret) => {
          if (this.isClosed()) return;
          this.startAuthMethod(m, secret);
          this.blocked = true;
          this.resume();
        },
        (err: Error) => {
          this.log.warn({ err: err.message }, 'auth.query failed');
          this.fatal(new ProxyError(SqlState.CannotConnectNow, 'cannot look up the user now (auth.query failed)', 'FATAL'));
        },
      );
      return;
    }
    this.startAuthMethod(method, entry?.password ?? null);
  }

  /** Sends the challenge of `method` for a user whose stored secret is `secret` (null: unknown user). */
  private startAuthMethod(method: HbaMethod, secret: string | null): void {
    this.secret = secret ?? '';
    this.knownUser = secret !== null;
    if (method === 'trust') {
      this.authenticated();
      return;
    }
    this.phase = Phase.Auth;
    if (method === 'password') {
      if (!this.tls) return this.fatal(new ProxyError(SqlState.InvalidAuthorization, 'password authentication is allowed only over TLS', 'FATAL'));
      this.cleartext = true;
      this.client.write(AUTH_CLEARTEXT);
      return;
    }
    const storedVerifier = secret !== null && secret.startsWith('SCRAM-SHA-256$') ? scramVerifierFromSecret(secret) : null;
    if (method === 'scram-sha-256' || storedVerifier !== null) {
      // Like PostgreSQL: md5 with a stored SCRAM verifier authenticates with SCRAM; an unknown user (or one whose
      // secret cannot serve SCRAM) goes through the whole exchange and fails at its end, telling nothing away.
      const verifier = secret !== null ? scramVerifierFromSecret(secret) : null;
      this.scram = new ScramServer(verifier ?? mockScramVerifier(this.user));
      this.client.write(authSaslRequest([SCRAM_MECHANISM]));
      return;
    }
    this.md5Salt = randomSalt();
    this.client.write(authMd5Request(this.md5Salt));
  }

  private handleAuth(): void {
    const f = this.framer;
    if (f.type !== FrontendCode.Password) {
      this.fatal(new ProxyError(SqlState.ProtocolViolation, `expected password response, got message type ${f.type}`, 'FATAL'));
      return;
    }
    const body = f.buf.subarray(f.bodyStart, f.end);
    if (this.scram) {
      this.handleScram(body);
      return;
    }
    const response = body.toString('utf8', 0, Math.max(0, body.indexOf(0)));
    const known = this.knownUser;
    const ok = this.cleartext ? known && verifyCleartextPassword(this.user, this.secret, response) : known && verifyMd5Response(this.user, this.secret, this.md5Salt!, response);
    if (!ok) {
      this.authFailed();
      return;
    }
    this.authenticated();
  }

  private handleScram(body: Buffer): void {
    const scram = this.scram!;
    if (!this.md5Salt) {
      // SASLInitialResponse: mechanism name, int32 length, data.
      const z = body.indexOf(0);
      if (z < 0 || body.length < z + 5) throw new MessageError('malformed SASLInitialResponse');
      const mechanism = body.toString('utf8', 0, z);
      const len = body.readInt32BE(z + 1);
      const data = len < 0 ? Buffer.alloc(0) : body.subarray(z + 5, z + 5 + len);
      const r = scram.handleClientFirst(mechanism, data);
      if (!r.ok) return this.authFailed();
      this.md5Salt = Buffer.alloc(0); // marks the exchange as past its first step
      this.client.write(authSaslContinue(r.serverFirst));
      return;
    }
    const r = scram.handleClientFinal(body);
    if (!r.ok) return this.authFailed();
    const verifier = this.secret.startsWith('SCRAM-SHA-256$') ? scramVerifierFromSecret(this.secret) : null;
    if (verifier !== null) {
      // No plaintext password: log in to backends with the client's own proof (SCRAM pass-through).
      this.scramKeys = { clientKey: r.clientKey, serverKey: verifier.serverKey, salt: verifier.salt, iterations: verifier.iterations };
    }
    this.client.write(authSaslContinue(r.serverFinal, true));
    this.authenticated();
  }

  private authFailed(): void {
    this.ctx.loginFailures.record(this.address);
    this.log.info({ address: this.address }, 'password authentication failed');
    this.fatal(new ProxyError(SqlState.InvalidPassword, `password authentication failed for user "${this.user}"`, 'FATAL'));
  }

  private authenticated(): void {
    this.phase = Phase.Login;
    if (this.database === ADMIN_DATABASE) {
      if (!this.ctx.config.admin.users.includes(this.user)) {
        this.fatal(new ProxyError(SqlState.InvalidAuthorization, `user "${this.user}" is not allowed to use the pgproxy admin console (admin.users)`, 'FATAL'));
        return;
      }
      this.adminMode = true;
      this.client.write(AUTH_OK);
      this.finishLogin(ADMIN_PARAMS);
      return;
    }
    this.client.write(AUTH_OK);
    const known = this.ctx.pools.serverParams(this.database, this.user);
    if (known) {
      this.finishLogin(known);
      return;
    }
    // First client of this (database, user): learn the server's parameters (and that the login works) from a
    // real backend connection, which then serves this session or returns to the pool.
    const node = this.ctx.topology.primary() ?? pickReadNode(this.ctx.topology.nodes);
    if (!node) {
      this.fatal(new ProxyError(SqlState.CannotConnectNow, 'no PostgreSQL node is available', 'FATAL'));
      return;
    }
    const pool = this.pool(node);
    pool.acquire().then(
      (conn) => {
        if (this.phase === Phase.Closed) {
          pool.release(conn, { reusable: true, inTransaction: false });
          return;
        }
        this.ctx.pools.rememberServerParams(this.database, this.user, conn.serverParams);
        // Idle clients hold no backend connection: this one only taught us the server's parameters.
        pool.release(conn, { reusable: true, inTransaction: false });
        this.finishLogin(conn.serverParams);
      },
      (err: Error) => {
        if (err instanceof BackendError && err.frame) {
          this.client.end(err.frame);
          this.close();
          return;
        }
        this.noteNodeError(node, err);
        const code = err instanceof ProxyError || err instanceof BackendError ? err.sqlstate : SqlState.CannotConnectNow;
        this.fatal(new ProxyError(code, err.message, 'FATAL'));
      },
    );
  }

  private finishLogin(serverParams: Map<string, string>): void {
    if (this.phase === Phase.Closed) return;
    if (this.authTimer !== null) {
      clearTimeout(this.authTimer);
      this.authTimer = null;
    }
    const values = new Map(serverParams);
    // What the client asked for at startup is what its backends will report once the SETs are replayed.
    const byLower = new Map([...values.keys()].map((k) => [k.toLowerCase(), k]));
    for (const [k, v] of this.startupParams) {
      if (NOT_REPLAYED.has(k)) continue;
      const known = byLower.get(k.toLowerCase());
      if (known) values.set(known, v);
    }
    // The proxy is writable as a whole, whichever node the session touches first.
    values.set('in_hot_standby', 'off');
    values.set('default_transaction_read_only', 'off');
    const frames: Buffer[] = [];
    for (const [k, v] of values) frames.push(parameterStatus(k, v));
    frames.push(backendKeyData(this.cancelKey.pid, this.cancelKey.secret));
    frames.push(readyForQuery(TxStatus.Idle));
    this.client.write(Buffer.concat(frames));
    this.phase = Phase.Ready;
    this.framer.setMaxFrame(this.ctx.maxMessageBytes);
    this.blocked = true; // held input (if any) is processed now
    this.resume();
  }

  // ---------------------------------------------------------------- the routing loop

  private handleMessage(): boolean {
    const f = this.framer;
    const type = f.type;
    if (this.adminMode) return this.handleAdminMessage();
    const copying = this.cur;
    if (copying !== null && copying.copyIn && copying.clientCopyOpen && type !== FrontendCode.CopyData && type !== FrontendCode.CopyDone && type !== FrontendCode.CopyFail && type !== FrontendCode.Terminate) {
      // Sync and Flush are ignored in copy-in; anything else ends the COPY with an error, and is consumed by it.
      this.forward(copying);
      return true;
    }
    if (this.ctx.controls.paused && !this.unitOpen && this.txLink === null && (type === FrontendCode.Query || type === FrontendCode.Parse || type === FrontendCode.Bind)) {
      // PAUSE: new work waits (work in flight and open transactions carry on).
      this.waitingForResume = true;
      return false;
    }
    if (this.skipToSync && type !== FrontendCode.Sync) return true;
    switch (type) {
      case FrontendCode.Query:
        return this.onQuery();
      case FrontendCode.Parse:
        return this.onParse();
      case FrontendCode.Bind:
        return this.onBindOrDescribe(bindStatementName(f.buf, f.bodyStart, f.end), true);
      case FrontendCode.Describe:
        if (f.buf[f.bodyStart] === 0x53) return this.onBindOrDescribe(targetName(f.buf, f.bodyStart, f.end), false);
        return this.forwardToCurrent();
      case FrontendCode.Execute:
      case FrontendCode.Flush:
        return this.forwardToCurrent();
      case FrontendCode.Close:
        return this.onClose();
      case FrontendCode.Sync:
        return this.onSync();
      case FrontendCode.CopyData:
        // Outside COPY a backend ignores these (a COPY that failed while the client was still sending).
        if (this.cur) this.forward(this.cur);
        return true;
      case FrontendCode.CopyDone:
      case FrontendCode.CopyFail:
        if (this.cur) {
          this.forward(this.cur);
          if (this.cur.copyIn) this.cur.clientCopyOpen = false;
          else this.cur.expect(E_COPYEND);
        }
        return true;
      case FrontendCode.FunctionCall:
        return this.onFunctionCall();
      case FrontendCode.Terminate:
        this.close();
        return true;
      default:
        throw new MessageError(`invalid frontend message type ${type}`);
    }
  }

  /** The admin console: simple queries only, answered by pgproxy itself. */
  private handleAdminMessage(): boolean {
    const f = this.framer;
    switch (f.type) {
      case FrontendCode.Query: {
        if (this.adminBusy) return false;
        const sql = queryText(f.buf, f.bodyStart, f.end);
        this.adminBusy = true;
        this.ctx.admin(sql, this.ctx).then(
          (frames) => {
            this.adminBusy = false;
            this.writeClient(Buffer.concat([frames, readyForQuery(TxStatus.Idle)]));
            this.resume();
          },
          (err: Error) => {
            this.adminBusy = false;
            const pe = err instanceof ProxyError ? err : new ProxyError(SqlState.InternalError, err.message);
            this.writeClient(Buffer.concat([pe.toFrame(), readyForQuery(TxStatus.Idle)]));
            this.resume();
          },
        );
        return true;
      }
      case FrontendCode.Sync:
        this.skipToSync = false;
        this.writeClient(readyForQuery(TxStatus.Idle));
        return true;
      case FrontendCode.Terminate:
        this.close();
        return true;
      case FrontendCode.Flush:
        return true;
      default:
        if (!this.skipToSync) this.writeClient(new ProxyError(SqlState.FeatureNotSupported, 'the pgproxy admin console accepts simple queries only').toFrame());
        this.skipToSync = true;
        return true;
    }
  }

  private adminMode = false;
  private adminBusy = false;
  /** The link whose part of a batch pgproxy ended with its own Sync, to move the rest elsewhere. */
  private splitFrom: Link | null = null;
  /** Held by PAUSE: resumed by RESUME. */
  waitingForResume = false;

  /** RESUME: sessions held by PAUSE go on. */
  resumeAfterPause(): void {
    if (!this.waitingForResume) return;
    this.waitingForResume = false;
    this.resume();
  }

  private onQuery(): boolean {
    const f = this.framer;
    const sql = queryText(f.buf, f.bodyStart, f.end);
    if (isShowPoolNodes(sql)) return this.answerLocally(poolNodesResult(this.ctx.topology.nodes, this.readNodeId), true);
    const classification = classify(sql);
    if (this.abortedTx) return this.answerInAbortedTx(classification.statements[0]?.tx?.op ?? null, true);
    const catalog = this.catalogFacts();
    if (catalog === undefined) return false;
    let route = routeClassification(classification, this.ctx.router, this.routing, catalog);
    if (route.begins && route.target !== 'primary' && this.ctx.router.splitTransactions && /repeatable\s+read/i.test(sql)) {
      route = { ...route, target: 'primary', reason: 'repeatable read transaction' };
    }
    const link = this.pick(route, false, true);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, route);
    const setting = settingsOf(sql, classification.statements);
    if (setting !== null) (link.segmentSettings ??= []).push(setting);
    if (route.ddl) link.segmentDdl = true;
    if (route.rollsBack) link.segmentRollback = true;
    if (this.ctx.router.splitTransactions) this.trackSplit(sql, classification.statements, route, link);
    this.forward(link);
    link.expect(E_QUERY);
    link.startUnit(sql);
    this.unitOpen = false;
    if (route.writes && !route.begins) this.afterWrite(link);
    return true;
  }

  private onParse(): boolean {
    const f = this.framer;
    const msg = parseParse(f.buf, f.bodyStart, f.end);
    if (this.abortedTx) return this.answerInAbortedTx(null, false);
    const classification = classify(msg.sql);
    const catalog = this.catalogFacts();
    if (catalog === undefined) return false;
    const route = routeClassification(classification, this.ctx.router, this.routing, catalog);
    const link = this.pick(route, this.unitOpen, false);
    if (typeof link === 'boolean') return link;
    const setting = settingsOf(msg.sql, classification.statements);
    const stmt: TrackedStatement = { sql: msg.sql, route, parse: Buffer.from(f.buf.subarray(f.start, f.end)), setting };
    this.statements.set(msg.name, stmt);
    this.beforeSend(link, route);
    const prepared = link.conn.prepared;
    if (msg.name !== '' && prepared.has(msg.name)) {
      // A statement of that name survives on this backend from before (closed elsewhere, or an earlier client).
      this.inject(link, closeStatement(msg.name), E_CLOSE);
    }
    prepared.set(msg.name, msg.sql);
    if (msg.name !== '') link.conn.needsReset = true;
    this.forward(link);
    link.expect(E_PARSE);
    link.batchOpen = true;
    this.unitOpen = true;
    return true;
  }

  /** Bind, or Describe of a statement: runs where the statement is, re-preparing it there when needed. */
  private onBindOrDescribe(name: string, isBind: boolean): boolean {
    if (this.abortedTx) return this.answerInAbortedTx(null, false);
    const stmt = this.statements.get(name);
    const link = stmt ? this.pick(stmt.route, this.unitOpen, false) : this.pickCurrent(false);
    if (typeof link === 'boolean') return link;
    if (stmt) {
      this.beforeSend(link, stmt.route);
      if (link.conn.prepared.get(name) !== stmt.sql) {
        if (name !== '' && link.conn.prepared.has(name)) this.inject(link, closeStatement(name), E_CLOSE);
        this.inject(link, stmt.parse, E_PARSE | INJECTED);
        link.conn.prepared.set(name, stmt.sql);
      }
      if (isBind) this.unitSql = stmt.sql;
      if (isBind && stmt.setting !== null) (link.segmentSettings ??= []).push(stmt.setting);
      if (isBind && stmt.route.writes && !stmt.route.begins) this.unitWrites = true;
      if (isBind && stmt.route.ddl) link.segmentDdl = true;
    }
    this.forward(link);
    link.batchOpen = true;
    this.unitOpen = true;
    return true;
  }

  private onClose(): boolean {
    const f = this.framer;
    const isStatement = f.buf[f.bodyStart] === 0x53;
    const name = targetName(f.buf, f.bodyStart, f.end);
    const link = this.pickCurrent(false);
    if (typeof link === 'boolean') return link;
    if (isStatement) {
      this.statements.delete(name);
      link.conn.prepared.delete(name);
      // Other backends that prepared it close it too, the next time the session uses them.
      for (const other of this.links.values()) {
        if (other !== link && other.conn.prepared.delete(name)) (other.pendingCloses ??= []).push(name);
      }
    }
    this.forward(link);
    link.expect(E_CLOSE);
    link.batchOpen = true;
    this.unitOpen = true;
    return true;
  }

  private onSync(): boolean {
    if (this.skipToSync) {
      this.skipToSync = false;
      return this.answerLocally(null, true);
    }
    const link = this.cur;
    if (link === null || (!this.unitOpen && link.pendingZ === 0 && this.txLink === null && !link.copyIn)) {
      // Nothing to synchronise on a backend: answer as PostgreSQL would.
      return this.answerLocally(null, true);
    }
    this.forward(link);
    link.expect(E_SYNC);
    link.batchOpen = false;
    link.startUnit(this.unitSql);
    this.unitOpen = false;
    if (this.unitWrites) {
      this.unitWrites = false;
      this.afterWrite(link);
    }
    return true;
  }

  /**
   * Read-your-writes: after a unit that changed data outside an explicit transaction (or committed one), ask
   * the same primary connection for its WAL insert position. The client never sees that query; until its
   * answer arrives this link owes replies, so the session's next read waits for it before picking a node.
   */
  private afterWrite(link: Link): void {
    if (!this.ctx.config.routing.read_your_writes || this.txLink !== null || link.node.role !== 'primary') return;
    this.inject(link, LSN_QUERY, E_LSN | INJECTED);
    link.captureDataRows(true);
  }

  logSlow(node: string, ms: number, sql: string): void {
    this.log.warn({ node, durationMs: Math.round(ms * 10) / 10, sql: sql.length > 200 ? sql.slice(0, 200) + '…' : sql }, 'slow statement');
  }

  noteWriteLsn(lsn: bigint): void {
    if (this.minReadLsn === null || lsn > this.minReadLsn) this.minReadLsn = lsn;
  }

  private forwardToCurrent(): boolean {
    const link = this.pickCurrent(false);
    if (typeof link === 'boolean') return link;
    this.forward(link);
    link.batchOpen = true;
    this.unitOpen = true;
    return true;
  }

  private onFunctionCall(): boolean {
    const route: Route = { target: 'primary', reason: 'function call', reads: 0, writes: true, begins: false, pins: null, notUnderstood: 0, ddl: false, rollsBack: false };
    const link = this.pick(route, false, true);
    if (typeof link === 'boolean') return link;
    this.beforeSend(link, route);
    this.forward(link);
    link.expect(E_QUERY);
    return true;
  }

  private beforeSend(link: Link, route: Route): void {
    if (link.appliedSettings < this.settings.length) this.replaySettings(link);
    if (this.pendingPrimaryBegin !== null && link.node.role === 'primary') {
      this.inject(link, queryMessage(this.pendingPrimaryBegin), E_QUERY | INJECTED);
      this.pendingPrimaryBegin = null;
      this.txLink = link;
    }
    if (link.pendingCloses !== null) {
      for (const name of link.pendingCloses) this.inject(link, closeStatement(name), E_CLOSE | INJECTED);
      link.pendingCloses = null;
    }
    if (route.pins !== null && this.pinned === null) {
      this.pinned = route.pins;
      this.log.debug({ reason: route.pins }, 'reads pinned to the primary for the rest of the session');
    }
    if (route.notUnderstood > 0) this.ctx.stats.notUnderstood += route.notUnderstood;
    const reasons = this.ctx.stats.routeReasons;
    const reason = route.target === 'primary' ? route.reason : route.target;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    if (route.target === 'primary') link.node.writes++;
    if (route.target === 'primary' || route.reads === 0) link.onlyReads = false;
    if (route.reads > 0) link.node.selectCount += route.reads;
    if (!link.onlyReads) link.conn.needsReset = true;
  }

  /** Split transactions: remembers how a read-write transaction began on a standby, and its savepoints. */
  private trackSplit(sql: string, statements: readonly StatementFacts[], route: Route, link: Link): void {
    if (route.begins && link.node.role !== 'primary' && this.txLink === null) {
      this.splitBegin = sql;
      this.splitSavepoints = [];
      return;
    }
    if (this.splitBegin !== null && link === this.txLink && statements.some((st) => st.tx !== null && (st.tx.op === 'savepoint' || st.tx.op === 'release' || st.tx.op === 'rollback_to'))) {
      this.splitSavepoints.push(sql);
    }
  }

  /**
   * The first write of a split transaction: the standby's read part ends (pgproxy's own COMMIT, unseen by the
   * client) and the transaction opens again on the primary, with its savepoints, before the write runs there.
   */
  private moveSplitTransaction(standby: Link): void {
    if (this.unitOpen && this.cur === standby) {
      this.inject(standby, SYNC, E_SYNC | INJECTED);
      this.unitOpen = false;
    }
    this.inject(standby, queryMessage('COMMIT'), E_QUERY | INJECTED);
    this.pendingPrimaryBegin = [this.splitBegin!, ...this.splitSavepoints].join(';\n');
    this.splitBegin = null;
    this.splitSavepoints = [];
    this.txLink = null;
  }

  /**
   * Catalog facts of the session's database: null when they cannot be had (routing then goes without them),
   * undefined while the first load is under way (the session waits for it).
   */
  private catalogFacts(): CatalogFacts | null | undefined {
    const cache = this.ctx.catalog;
    const snapshot = cache.get(this.database);
    if (snapshot !== undefined) return catalogAdapter(cache, snapshot);
    if (this.catalogFailedAt !== 0 && Date.now() - this.catalogFailedAt < CATALOG_RETRY_MS) return null;
    if (this.catalogLoading) return undefined;
    this.catalogLoading = true;
    cache.load(this.database).then(
      () => {
        this.catalogLoading = false;
        this.resume();
      },
      (err: Error) => {
        this.catalogLoading = false;
        this.catalogFailedAt = Date.now();
        this.log.warn({ err: err.message }, 'catalog facts unavailable; routing without volatility and unlogged-table checks');
        this.resume();
      },
    );
    return undefined;
  }

  private catalogLoading = false;
  private catalogFailedAt = 0;

  // ---------------------------------------------------------------- choosing a link

  /**
   * The link for work with this route; or, for handleMessage to return, false (wait and re-read the message)
   * or true (pgproxy answered it with an error already).
   */
  private pick(route: Route, withinUnit: boolean, isQuery: boolean): Link | boolean {
    try {
      return this.linkFor(route, withinUnit) ?? false;
    } catch (err) {
      return this.answerError(err as Error, isQuery);
    }
  }

  /** Like pick, for messages that follow the current unit (Execute, Describe of a portal, Close...). */
  private pickCurrent(isQuery: boolean): Link | boolean {
    try {
      return this.currentOrPrimary() ?? false;
    } catch (err) {
      return this.answerError(err as Error, isQuery);
    }
  }

  /** The link for work with this route, or null when the session must wait (then the frame is re-read later). */
  private linkFor(route: Route, withinUnit: boolean): Link | null {
    if (this.txLink && this.splitBegin !== null && route.target === 'primary' && this.txLink.node.role !== 'primary' && this.txStatus === TxStatus.InTransaction) {
      this.moveSplitTransaction(this.txLink);
    }
    if (this.txLink) return this.switchTo(this.txLink);
    const cur = this.cur;
    // Inside a batch, a statement that can run where the batch runs stays there: the batch is one implicit
    // transaction, and splitting it needlessly would break that.
    if (withinUnit && cur && (route.target !== 'primary' || cur.node.role === 'primary') && cur.node.up) return cur;
    if (route.target === 'any' && cur && !cur.conn.closed && cur.node.up) return this.switchTo(cur);
    const node = route.target === 'primary' ? this.primaryNode() : this.readNode();
    return this.linkOnNode(node);
  }

  private readNode(): NodeState {
    if (this.pinned !== null || this.readPreference === 'primary') return this.primaryNode();
    const nodes = this.ctx.topology.nodes;
    if (typeof this.readPreference === 'number') {
      const n = nodes[this.readPreference];
      if (n && readable(n)) return n;
    }
    const onlyStandbys = this.readPreference === 'standby';
    const minLsn = this.ctx.config.routing.read_your_writes ? this.minReadLsn : null;
    const limits = this.ctx.lagLimits;
    if (this.ctx.config.routing.load_balance === 'session' && this.readNodeId !== null) {
      const n = nodes[this.readNodeId]!;
      if (canRead(n, limits, minLsn, onlyStandbys) && (n.weight > 0 || !anyWeightedReadable(nodes, limits, minLsn, onlyStandbys))) return n;
    }
    const picked = pickReadNode(nodes, limits, minLsn, onlyStandbys);
    if (picked === null) return this.primaryNode();
    // Only a node picked by weight becomes the session's load-balance node (not a fallback to the primary).
    if (this.ctx.config.routing.load_balance === 'session' && (minLsn === null || picked.role !== 'primary')) this.readNodeId = picked.id;
    return picked;
  }

  private currentOrPrimary(): Link | null {
    if (this.txLink) return this.switchTo(this.txLink);
    if (this.cur && !this.cur.conn.closed) return this.cur;
    return this.linkOnNode(this.primaryNode());
  }

  private primaryNode(): NodeState {
    const topo = this.ctx.topology;
    const primary = topo.primary();
    if (primary) return primary;
    if (topo.primaryCount() > 1) throw new ProxyError(SqlState.CannotConnectNow, 'more than one node claims to be primary; writes are refused until this resolves');
    throw new ProxyError(SqlState.CannotConnectNow, 'no primary available');
  }

  private linkOnNode(node: NodeState): Link | null {
    const existing = this.links.get(node.id);
    if (existing && !existing.conn.closed) return this.switchTo(existing);
    if (this.acquireError && this.acquireError.nodeId === node.id) {
      const err = this.acquireError.error;
      this.acquireError = null;
      throw err;
    }
    if (this.acquiring !== null) return null;
    // Before taking a new connection, let the current one finish what it owes the client.
    if (this.cur && this.cur.pendingZ > 0) return this.switchTo(null);
    const pool = this.pool(node);
    this.acquiring = node.id;
    const waitStart = performance.now();
    pool.acquire().then(
      (conn) => {
        this.acquiring = null;
        this.ctx.stats.poolWait.observe(performance.now() - waitStart);
        if (this.phase === Phase.Closed) {
          pool.release(conn, { reusable: true, inTransaction: false });
          return;
        }
        this.addLink(node, conn);
        this.resume();
      },
      (err: Error) => {
        this.acquiring = null;
        this.noteNodeError(node, err);
        this.acquireError = { nodeId: node.id, error: toClientError(node, err) };
        this.resume();
      },
    );
    return null;
  }

  /** Moves work to `link` (null: only wait for the current link to finish). Returns null while waiting. */
  private switchTo(link: Link | null): Link | null {
    const cur = this.cur;
    if (link !== null && (cur === link || cur === null || cur.conn.closed)) {
      this.cur = link;
      return link;
    }
    if (cur !== null && this.unitOpen && link !== null) {
      // Leaving a batch midway: end its part on the current link with a Sync whose reply the client never sees.
      this.inject(cur, SYNC, E_SYNC | INJECTED);
      cur.batchOpen = false;
      this.unitOpen = false;
      this.splitFrom = cur;
    }
    if (cur !== null && cur.pendingZ > 0) return null;
    if (link === null) return null;
    this.cur = link;
    return link;
  }

  /** Brings a backend up to date with the session's settings, in one Query whose replies the client never sees. */
  private replaySettings(link: Link): void {
    const pending = this.settings.slice(link.appliedSettings);
    link.appliedSettings = this.settings.length;
    link.conn.settingsOwner = this.id;
    link.conn.settingsCount = link.appliedSettings;
    link.onlyReads = false;
    link.conn.needsReset = true;
    this.inject(link, queryMessage(pending.join(';\n')), E_QUERY | INJECTED);
    if (pending.some(discardsAll)) link.conn.prepared.clear();
    if (pending.some(resetsSettings)) {
      // DISCARD ALL / RESET ALL also undid the client's startup parameters on that backend.
      if (this.replaySignature !== '') this.inject(link, queryMessage(this.replayParams), E_QUERY | INJECTED);
    }
  }

  /** Settings of a segment that succeeded: recorded, and known to be applied on the backend that ran them. */
  private commitSettings(link: Link, list: string[]): void {
    const upToDate = link.appliedSettings === this.settings.length;
    for (const sql of list) {
      this.settings.push(sql);
      applyRoutingEffects(this.routing, sql);
      if (discardsAll(sql)) {
        // DISCARD ALL deallocates every prepared statement too (RESET ALL does not).
        link.conn.prepared.clear();
        this.statements.clear();
      }
      if (resetsSettings(sql)) link.conn.appliedParams = '';
    }
    if (upToDate) link.appliedSettings = this.settings.length;
    link.conn.settingsOwner = this.id;
    link.conn.settingsCount = link.appliedSettings;
  }

  private addLink(node: NodeState, conn: BackendConnection): Link {
    const link = new Link(this, conn, node);
    conn.owner = this;
    this.links.set(node.id, link);
    if (conn.settingsOwner === this.id) {
      link.appliedSettings = Math.min(conn.settingsCount, this.settings.length);
    } else if (conn.settingsOwner !== 0) {
      // Another client's settings are still on this connection (transaction pooling): clear them first.
      this.inject(link, queryMessage('RESET ALL'), E_QUERY | INJECTED);
      conn.settingsOwner = 0;
      conn.settingsCount = 0;
      conn.appliedParams = '';
    }
    if (this.replaySignature !== '' && conn.appliedParams !== this.replaySignature) {
      this.inject(link, queryMessage(this.replayParams), E_QUERY | INJECTED);
      conn.appliedParams = this.replaySignature;
    }
    return link;
  }

  private pool(node: NodeState) {
    const pool = this.ctx.pools.get(node, this.database, this.user, this.secret);
    if (this.scramKeys !== null) pool.setScramKeys(this.scramKeys);
    return pool;
  }

  private scramKeys: ScramClientKeys | null = null;

  // ---------------------------------------------------------------- writing

  /**
   * Forwards the current frame unchanged. Consecutive frames of one chunk for the same backend are sent as one
   * view of the chunk, in a single write when the chunk has been handled (or before anything else is written).
   */
  private forward(link: Link): void {
    const f = this.framer;
    link.node.bytesToNode += f.end - f.start;
    if (this.runLink === link && this.runBuf === f.buf && this.runEnd === f.start) {
      this.runEnd = f.end;
      return;
    }
    this.flushRun();
    this.runLink = link;
    this.runBuf = f.buf;
    this.runStart = f.start;
    this.runEnd = f.end;
  }

  /** Writes the pending run of forwarded frames. */
  private flushRun(): void {
    const link = this.runLink;
    if (link === null) return;
    this.runLink = null;
    const buf = this.runBuf;
    this.runBuf = EMPTY_BUFFER;
    if (!link.conn.closed && !link.conn.write(this.runStart === 0 && this.runEnd === buf.length ? buf : buf.subarray(this.runStart, this.runEnd))) this.pauseClient();
  }

  private inject(link: Link, frame: Buffer, entry: number): void {
    this.flushRun();
    link.conn.write(frame);
    link.expect(entry);
  }

  private runLink: Link | null = null;
  private runBuf: Buffer = EMPTY_BUFFER;
  private runStart = 0;
  private runEnd = 0;

  writeClient(bytes: Buffer): void {
    if (this.phase === Phase.Closed) return;
    if (!this.client.write(bytes)) {
      for (const l of this.links.values()) l.conn.socket.pause();
    }
  }

  private onClientDrain(): void {
    for (const l of this.links.values()) l.conn.socket.resume();
  }

  onBackendDrain(): void {
    if (this.clientPaused) {
      this.clientPaused = false;
      if (!this.blocked) this.client.resume();
    }
  }

  private pauseClient(): void {
    this.clientPaused = true;
    this.client.pause();
  }

  // ---------------------------------------------------------------- answers pgproxy gives itself

  /**
   * Sends a reply pgproxy produces (optionally followed by ReadyForQuery). Waits first until no backend owes
   * the client replies, so that order is kept.
   */
  private answerLocally(reply: Buffer | null, withReady: boolean): boolean {
    if (this.cur && this.cur.pendingZ > 0) {
      if (this.unitOpen) {
        this.inject(this.cur, SYNC, E_SYNC | INJECTED);
        this.unitOpen = false;
      }
      return false;
    }
    const parts: Buffer[] = [];
    if (reply) parts.push(reply);
    if (withReady) parts.push(readyForQuery(this.abortedTx ? TxStatus.Failed : this.txStatus));
    this.writeClient(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
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
      return this.answerLocally(Buffer.from(commandCompleteFrame('ROLLBACK')), true);
    }
    const lost = this.lostTxError;
    if (lost !== null) {
      const ok = this.answerError(lost, isQuery);
      if (ok) this.lostTxError = null;
      return ok;
    }
    return this.answerError(new ProxyError(SqlState.InFailedTransaction, 'current transaction is aborted, commands ignored until end of transaction block'), isQuery);
  }

  /** The backend of a transaction the client was idle in was lost: its next statement is told so. */
  private lostTxError: ProxyError | null = null;

  // ---------------------------------------------------------------- backend events

  onBackendData(conn: BackendConnection, chunk: Buffer): void {
    const link = this.links.get(conn.node.id);
    if (!link || link.conn !== conn) return;
    link.node.bytesFromNode += chunk.length;
    try {
      link.scanner.feed(chunk);
    } catch (err) {
      this.log.warn({ node: conn.node.name, err: (err as Error).message }, 'malformed data from backend');
      conn.destroy();
      return;
    }
    if (link.releaseAfterFeed) this.releaseLink(link);
  }

  /** Transaction pooling: gives an idle link back to its pool, keeping the session's settings on record. */
  private releaseLink(link: Link): void {
    link.releaseAfterFeed = false;
    if (link.pendingZ > 0 || link.status !== TxStatus.Idle || !link.scanner.atBoundary || link.copyIn || link.batchOpen) return;
    if (this.links.get(link.node.id) !== link) return;
    this.links.delete(link.node.id);
    if (this.cur === link) this.cur = null;
    const conn = link.conn;
    conn.owner = null;
    if (conn.settingsOwner === this.id) conn.settingsCount = link.appliedSettings;
    this.pool(link.node).release(conn, { reusable: !conn.closed, inTransaction: false, keepSessionState: true });
  }

  /** Transaction pooling applies, and this link may go back to the pool now. */
  private mayReleaseLink(link: Link): boolean {
    if (this.ctx.config.pool.mode !== 'transaction' || this.phase !== Phase.Ready) return false;
    if (link.pendingZ > 0 || link.status !== TxStatus.Idle || (this.unitOpen && this.cur === link)) return false;
    // Objects living in one backend session keep the session on its primary connection.
    return !(this.pinned !== null && link.node.role === 'primary');
  }

  /** A ReadyForQuery arrived on `link`; `injected` when it answers pgproxy's own Sync or Query. */
  onLinkReady(link: Link, injected: boolean): void {
    if (injected && link === this.splitFrom) {
      this.splitFrom = null;
      // The batch failed in its first part: like PostgreSQL, the rest of it (sent elsewhere next) is skipped.
      if (link.segmentError) {
        link.segmentError = false;
        this.skipToSync = true;
      }
    }
    if (!injected) {
      link.finishUnit(this.ctx.config.log.slow_ms);
      const before = link.statusBefore;
      const after = link.status;
      const list = link.segmentError ? null : link.segmentSettings;
      if (before === TxStatus.Idle && after === TxStatus.Idle) {
        if (list && !link.segmentRollback) this.commitSettings(link, list);
      } else {
        if (list) this.pendingSettings.push(...list);
        if (after === TxStatus.Idle) {
          // The transaction ended: COMMIT keeps what it set, ROLLBACK (or a failed transaction) drops it.
          if (before === TxStatus.InTransaction && !link.segmentRollback && !link.segmentError) this.commitSettings(link, this.pendingSettings);
          this.pendingSettings = [];
        }
      }
      if (link.segmentDdl) {
        link.segmentDdl = false;
        this.ctx.catalog.invalidate(this.database);
      }
      link.segmentSettings = null;
      link.segmentError = false;
      link.segmentRollback = false;
      link.statusBefore = after;
      this.txStatus = link.status;
      if (link.status !== TxStatus.Idle) this.txLink = link;
      else {
        if (this.txLink === link) this.txLink = null;
        this.splitBegin = null;
        this.splitSavepoints = [];
      }
    }
    if (this.mayReleaseLink(link)) link.releaseAfterFeed = true;
    if (this.blocked && link.pendingZ === 0) queueMicrotask(() => this.resume());
  }

  /** The client has sent this link part of a batch (no Sync yet) and may be waiting for its replies. */
  inOpenBatch(link: Link): boolean {
    return (this.unitOpen && this.cur === link) || this.splitFrom === link;
  }

  /**
   * A NotificationResponse carries the notifying backend's pid; clients compare it with their BackendKeyData to
   * recognise their own NOTIFYs, so the session's own backend pid becomes the pid pgproxy gave the client.
   */
  forwardNotification(link: Link, body: Buffer): void {
    const frame = Buffer.allocUnsafe(body.length + 5);
    frame[0] = BackendCode.NotificationResponse;
    frame.writeInt32BE(body.length + 4, 1);
    body.copy(frame, 5);
    if (frame.readInt32BE(5) === link.conn.pid) frame.writeInt32BE(this.cancelKey.pid, 5);
    this.writeClient(frame);
  }

  closeAfterProtocolError(): void {
    this.log.info('backend ended the session for a protocol violation by the client; closing it');
    queueMicrotask(() => this.close());
  }

  countError(sqlstate: string): void {
    const byClass = this.ctx.stats.errorsByClass;
    const cls = sqlstate.slice(0, 2);
    byClass.set(cls, (byClass.get(cls) ?? 0) + 1);
  }

  onNodeUnavailable(link: Link, code: string, message: string): void {
    this.ctx.reportNodeFailure(link.node.id, `${code} ${message}`);
  }

  onBackendClosed(conn: BackendConnection, error: Error | null): void {
    const link = this.links.get(conn.node.id);
    if (!link || link.conn !== conn) return;
    this.links.delete(conn.node.id);
    if (this.phase === Phase.Closed) return;
    if (!this.closingNode) this.ctx.reportNodeFailure(conn.node.id, error?.message ?? 'connection lost');
    const midBatch = this.unitOpen && this.cur === link;
    if (link === this.cur) this.cur = null;
    const wasInTx = link === this.txLink || link.status !== TxStatus.Idle;
    if (link === this.txLink) this.txLink = null;
    const owed = link.clientPendingReady();
    if (owed === 0 && !wasInTx && !midBatch) return;
    if (!link.scanner.atBoundary) {
      // The client has part of a message: nothing can follow it cleanly.
      this.log.warn({ node: conn.node.name }, 'backend lost in the middle of a message; closing the client');
      this.client.destroy();
      this.close();
      return;
    }
    this.unitOpen = false;
    this.skipToSync = false;
    const lost = new ProxyError(SqlState.ConnectionFailure, `connection to node ${conn.node.name} (${conn.node.host}:${conn.node.port}) was lost`);
    if (wasInTx) {
      // The transaction is gone with its backend: keep it aborted until the client ends it.
      this.abortedTx = true;
      this.txStatus = TxStatus.Failed;
      // A client idle in the transaction hears why at its next statement.
      if (owed === 0) this.lostTxError = lost;
    }
    if (owed > 0) {
      const parts: Buffer[] = [lost.toFrame()];
      for (let i = 0; i < owed; i++) parts.push(readyForQuery(wasInTx ? TxStatus.Failed : TxStatus.Idle));
      this.writeClient(Buffer.concat(parts));
      this.log.warn({ node: conn.node.name }, 'backend connection lost during a statement');
    } else if (midBatch) {
      this.writeClient(lost.toFrame());
      if (wasInTx) this.lostTxError = null;
    }
    // The rest of a batch the client had begun is void; its Sync gets the ReadyForQuery.
    if (midBatch) this.skipToSync = true;
    if (this.blocked) queueMicrotask(() => this.resume());
  }

  /** Set while the session itself drops links to a node that was marked down (not a new failure to report). */
  private closingNode = false;

  /** The node was marked down: statements in flight there fail now rather than hang, and its links are dropped. */
  nodeDown(nodeId: number): void {
    const link = this.links.get(nodeId);
    if (!link) return;
    this.closingNode = true;
    try {
      link.conn.destroy();
    } finally {
      this.closingNode = false;
    }
  }

  /** Called about once a second: client idle and idle-in-transaction timeouts. */
  checkTimeouts(now: number): void {
    if (this.phase !== Phase.Ready || this.blocked) return;
    for (const l of this.links.values()) if (l.pendingZ > 0) return;
    const idleFor = now - this.lastActivity;
    const listen = this.ctx.config.listen;
    const inTx = this.txStatus !== TxStatus.Idle || this.abortedTx;
    if (inTx && listen.idle_in_transaction_timeout_ms > 0 && idleFor > listen.idle_in_transaction_timeout_ms) {
      this.log.info({ idleMs: idleFor }, 'closing client idle in transaction');
      this.fatal(new ProxyError('25P03', 'terminating connection due to idle-in-transaction timeout', 'FATAL'));
    } else if (!inTx && listen.client_idle_timeout_ms > 0 && idleFor > listen.client_idle_timeout_ms) {
      this.log.info({ idleMs: idleFor }, 'closing idle client');
      this.fatal(new ProxyError('57P05', 'terminating connection due to idle-session timeout', 'FATAL'));
    }
  }

  private noteNodeError(node: NodeState, err: Error): void {
    if (err instanceof NodeConnectionError || (err instanceof BackendError && isNodeUnavailableState(err.sqlstate))) {
      this.ctx.reportNodeFailure(node.id, err.message);
    }
  }

  /** Forwards a CancelRequest to the node running this session's statement. */
  cancel(): void {
    const link = this.cur;
    if (!link || link.pendingZ === 0) return;
    const { host, port } = link.conn.node;
    const s = net.connect({ host, port }, () => s.end(serialize.cancel(link.conn.pid, link.conn.secretKey)));
    s.on('error', () => s.destroy());
    s.setTimeout(5000, () => s.destroy());
  }

  // ---------------------------------------------------------------- for the admin console

  private readonly connectedAt = new Date();

  describe(): ClientInfo {
    let active = false;
    for (const l of this.links.values()) if (l.pendingZ > 0) active = true;
    const state =
      this.phase === Phase.Startup ? 'startup'
      : this.phase === Phase.Auth || this.phase === Phase.Login ? 'auth'
      : this.waitingForResume || this.acquiring !== null ? 'waiting'
      : active || this.adminBusy ? 'active'
      : this.txStatus !== TxStatus.Idle || this.abortedTx ? 'idle in transaction'
      : 'idle';
    return {
      id: this.id,
      user: this.user,
      database: this.database,
      address: this.address,
      applicationName: this.startupParams.get('application_name') ?? '',
      tls: this.tls,
      state,
      connectedAt: this.connectedAt,
      servers: [...this.links.values()].map((l) => ({ node: l.node.name, pid: l.conn.pid, active: l.pendingZ > 0, connectionId: l.conn.id })),
    };
  }

  get idle(): boolean {
    if (this.phase !== Phase.Ready) return true;
    for (const l of this.links.values()) if (l.pendingZ > 0) return false;
    return this.txStatus === TxStatus.Idle && !this.abortedTx;
  }

  terminate(error: { code: string; message: string } | null): void {
    if (error) this.fatal(new ProxyError(error.code, error.message, 'FATAL'));
    else this.close();
  }

  // ---------------------------------------------------------------- ending

  /** A method, not a field read, so that TypeScript does not narrow `phase` across calls that close. */
  private isClosed(): boolean {
    return this.phase === Phase.Closed;
  }

  private fatal(err: ProxyError): void {
    if (this.phase === Phase.Closed) return;
    this.client.end(err.toFrame());
    this.close();
  }

  close(): void {
    if (this.phase === Phase.Closed) return;
    const wasReady = this.phase === Phase.Ready;
    this.phase = Phase.Closed;
    this.runLink = null; // nothing more goes to backends once the session ends
    if (this.authTimer !== null) clearTimeout(this.authTimer);
    this.held = null;
    this.ctx.registry.remove(this);
    for (const link of this.links.values()) {
      const conn = link.conn;
      conn.owner = null;
      // A backend left mid-batch skips to Sync (or keeps a portal's implicit transaction): never reuse it.
      const clean = link.pendingZ === 0 && !link.copyIn && !link.batchOpen && !conn.closed;
      const pool = this.pool(link.node);
      pool.release(conn, { reusable: clean, inTransaction: link.status !== TxStatus.Idle });
    }
    this.links.clear();
    if (!this.client.destroyed) this.client.end();
    this.log.info({ ready: wasReady }, 'client disconnected');
  }
}

/**
 * The session-state change a statement list makes, as SQL to replay elsewhere, or null. SET LOCAL and
 * SET TRANSACTION stay with their transaction and are never replayed.
 */
function settingsOf(sql: string, statements: readonly StatementFacts[]): string | null {
  let any = false;
  let all = true;
  for (const st of statements) {
    if (st.kind === 'empty') continue;
    // set_config(name, value, false) in a SELECT is a session setting too: replay the statement itself.
    if (statements.length === 1 && st.setConfigCalls.some((c) => c.isLocal !== true)) return sql;
    const persistent = st.kind === 'session' && st.session !== null && !st.session.local;
    if (persistent) any = true;
    else all = false;
  }
  if (!any) return null;
  if (all) return sql;
  // Mixed with other statements: rebuild just the settings.
  const parts: string[] = [];
  for (const st of statements) {
    const s = st.session;
    if (st.kind !== 'session' || s === null || s.local) continue;
    if (s.op === 'set' && s.name && s.value !== null) parts.push(`SET ${s.name} TO ${s.value}`);
    else if (s.op === 'reset' && s.name) parts.push(`RESET ${s.name}`);
    else if (s.op === 'reset_all') parts.push('RESET ALL');
    else if (s.op === 'discard') parts.push(`DISCARD ${s.value ?? 'ALL'}`);
    else if (s.op === 'set_session_characteristics') return sql; // rebuilding it is not worth it: replay the whole text
  }
  return parts.length > 0 ? parts.join('; ') : null;
}

/** Updates the session defaults that change routing from a setting that took effect. */
function applyRoutingEffects(routing: SessionRouting, sql: string): void {
  for (const st of classify(sql).statements) {
    const s = st.session;
    if (s === null) continue;
    if (s.op === 'reset_all' || (s.op === 'discard' && s.value === 'all')) {
      routing.defaultReadOnly = false;
      routing.defaultSerializable = false;
    } else if (s.op === 'set_session_characteristics' && st.txCharacteristics !== null) {
      const c = st.txCharacteristics;
      if (c.readOnly) routing.defaultReadOnly = true;
      if (c.readWrite) routing.defaultReadOnly = false;
      routing.defaultSerializable = c.serializable;
    } else if (s.name === 'default_transaction_read_only') {
      routing.defaultReadOnly = s.op === 'set' && isTruthySetting(s.value);
    } else if (s.name === 'default_transaction_isolation') {
      routing.defaultSerializable = s.op === 'set' && /serializable/i.test(s.value ?? '');
    }
  }
}

function isTruthySetting(value: string | null): boolean {
  if (value === null) return false;
  const v = value.replace(/^'(.*)'$/, '$1').trim().toLowerCase();
  return v === 'on' || v === 'true' || v === '1' || v === 'yes' || v === 't' || v === 'y';
}

function resetsSettings(sql: string): boolean {
  return /\b(discard\s+all|reset\s+all)\b/i.test(sql);
}

function discardsAll(sql: string): boolean {
  return /\bdiscard\s+all\b/i.test(sql);
}

const CATALOG_RETRY_MS = 5_000;
const MAX_AUTH_MESSAGE = 65_535 + 5;
const EMPTY_BUFFER = Buffer.alloc(0);
const ADMIN_DATABASE = 'pgproxy';
/** What the admin console reports at startup (there is no backend behind it). */
const ADMIN_PARAMS = new Map([
  ['server_version', '15.0 (pgproxy admin console)'],
  ['server_encoding', 'UTF8'],
  ['client_encoding', 'UTF8'],
  ['DateStyle', 'ISO, MDY'],
  ['integer_datetimes', 'on'],
  ['standard_conforming_strings', 'on'],
  ['TimeZone', 'UTC'],
  ['application_name', ''],
  ['is_superuser', 'off'],
]);
const adapters = new WeakMap<CatalogSnapshot, CatalogFacts>();

/**
 * The policy's view of a catalog snapshot. A function the catalog does not know (created after the snapshot
 * was taken, or not a function at all) counts as volatile: the primary can run anything.
 */
function catalogAdapter(cache: import('./router/catalog.js').CatalogCache, snapshot: CatalogSnapshot): CatalogFacts {
  let facts = adapters.get(snapshot);
  if (facts === undefined) {
    facts = {
      isVolatile: (name) => cache.isVolatile(snapshot, name) || !cache.isKnownFunction(snapshot, name),
      isUnlogged: (relation) => cache.isUnlogged(snapshot, relation),
    };
    adapters.set(snapshot, facts);
  }
  return facts;
}

function anyWeightedReadable(nodes: readonly NodeState[], limits: LagLimits, minLsn: bigint | null, onlyStandbys: boolean): boolean {
  for (const n of nodes) if (n.weight > 0 && canRead(n, limits, minLsn, onlyStandbys)) return true;
  return false;
}

function toClientError(node: NodeState, err: Error): Error {
  if (err instanceof ProxyError) return err;
  if (err instanceof BackendError) return new ProxyError(err.sqlstate, err.message);
  return new ProxyError(SqlState.ConnectionFailure, `could not connect to node ${node.name}: ${err.message}`);
}

function commandCompleteFrame(tag: string): Buffer {
  const body = Buffer.from(tag + '\0', 'utf8');
  const b = Buffer.allocUnsafe(body.length + 5);
  b[0] = BackendCode.CommandComplete;
  b.writeInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}

/** NegotiateProtocolVersion: we speak 3.0 and none of the `_pq_` options the client asked for. */
function negotiateProtocolVersion(unsupported: string[]): Buffer {
  const names = unsupported.map((n) => Buffer.from(n + '\0', 'utf8'));
  const len = 4 + 4 + 4 + names.reduce((s, b) => s + b.length, 0);
  const b = Buffer.allocUnsafe(len + 1);
  b[0] = BackendCode.NegotiateProtocolVersion;
  b.writeInt32BE(len, 1);
  b.writeInt32BE(0, 5);
  b.writeInt32BE(unsupported.length, 9);
  let o = 13;
  for (const n of names) o += n.copy(b, o);
  return b;
}

/** SET statements that give a backend connection the client's startup parameters. */
export function buildReplaySql(params: Map<string, string>): string {
  const sets: string[] = [];
  for (const [k, v] of params) {
    if (NOT_REPLAYED.has(k) || k.startsWith('_pq_.')) continue;
    sets.push(`SET ${quoteIdent(k)} = ${quoteLiteral(v)}`);
  }
  const options = params.get('options');
  if (options) for (const [k, v] of parseOptions(options)) sets.push(`SET ${quoteIdent(k)} = ${quoteLiteral(v)}`);
  return sets.join('; ');
}

/** `options` startup parameter: `-c name=value` and `--name=value`, with backslash-escaped spaces. */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
      inWord = true;
    } else if (ch === ' ' || ch === '\t' || ch === '\n') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let setting: string | undefined;
    const w = words[i]!;
    if (w === '-c') setting = words[++i];
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    if (!setting) continue;
    const eq = setting.indexOf('=');
    if (eq <= 0) continue;
    out.push([setting.slice(0, eq).replace(/-/g, '_'), setting.slice(eq + 1)]);
  }
  return out;
}

function quoteIdent(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"';
}

function quoteLiteral(s: string): string {
  return "'" + s.replace(/'/g, "''") + "'";
}

export { errorResponse };
