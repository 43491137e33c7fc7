/**
 * One client connection: its socket (and TLS upgrade), framing of what it sends, holding its input while a step
 * waits, backpressure both ways, idle timeouts, and the end of the session. Each frame goes to the phase the
 * connection is in: startup and authentication (startup.ts), then the routing loop (routing.ts) or the admin
 * console (admin-console.ts).
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { CancelTarget, ClientInfo, ProxyContext, SessionView } from '../context.js';
import { ProxyError } from '../errors.js';
import { FrontendCode, SqlState } from '../wire/codes.js';
import { FrameError, FrameFault, Framer, MAX_STARTUP_LENGTH } from '../wire/framer.js';
import { MessageError, SESSION_MESSAGE_LIMITS } from '../wire/frontend.js';
import { AdminConsole, type AdminConsoleHost } from './admin-console.js';
import { Routing, type RoutingHost } from './routing.js';
import { Startup, type LoginResult, type StartupHost } from './startup.js';

const enum Phase {
  Startup,
  Routing,
  Admin,
  Closed,
}

export class Session implements SessionView, CancelTarget, StartupHost, RoutingHost, AdminConsoleHost {
  readonly id: number;
  readonly cancelKey: { pid: number; secret: number };
  /** Created on first use: most idle sessions never log. */
  private logger: Logger | null = null;
  private logBindings: Record<string, unknown>;
  readonly address: string;
  tls = false;
  private phase = Phase.Startup;
  private readonly framer = new Framer(MAX_STARTUP_LENGTH, true);
  private client: net.Socket;
  private startup: Startup | null;
  private routing: Routing | null = null;
  private admin: AdminConsole | null = null;
  private login: LoginResult | null = null;

  /** Client input held while the current message waits (a backend connection, another link, a lookup). */
  private held: Buffer | null = null;
  private blocked = false;
  private resumeQueued = false;
  /** A backend's socket is full: the client is not read until it drains. */
  private clientPaused = false;
  /** When the client last sent anything (performance.now()): idle timeouts, and when units started. */
  lastActivity = performance.now();
  private authTimer: NodeJS.Timeout | null;
  private readonly connectedAt = new Date();

  constructor(
    readonly ctx: ProxyContext,
    socket: net.Socket,
  ) {
    this.id = ctx.registry.nextSessionId();
    this.cancelKey = ctx.registry.newCancelKey(this);
    this.logBindings = { client: this.id };
    this.client = socket;
    this.address = socket.remoteAddress ?? '';
    this.startup = new Startup(this);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    this.bindClient(socket);
    socket.on('close', () => this.close());
    this.authTimer = setTimeout(() => this.fatal(new ProxyError(SqlState.ProtocolViolation, 'authentication timeout (listen.auth_timeout_ms)', 'FATAL')), ctx.config.listen.auth_timeout_ms);
    if (ctx.log.isLevelEnabled('info')) this.log.info({ remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'client connected');
  }

  get log(): Logger {
    return (this.logger ??= this.ctx.log.child(this.logBindings));
  }

  private bindClient(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('drain', () => this.routing?.links.pauseBackends(false));
    socket.on('error', () => this.close());
  }

  // ------------------------------------------------------------------ client input

  private onClientData(chunk: Buffer): void {
    if (this.phase === Phase.Closed) return;
    this.lastActivity = performance.now();
    if (this.blocked) {
      this.held = this.held ? Buffer.concat([this.held, chunk]) : chunk;
      return;
    }
    const f = this.framer;
    f.push(chunk);
    try {
      while (f.next()) {
        if (!this.handleFrame(f)) {
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
      if (this.routing !== null && !this.isClosed()) this.routing.flush();
    }
  }

  /** Returns false when the frame cannot be handled yet (the session holds it and re-reads it after resume()). */
  private handleFrame(f: Framer): boolean {
    switch (this.phase) {
      case Phase.Startup:
        return this.startup!.handle(f);
      case Phase.Routing:
        if (f.type === FrontendCode.Terminate) return this.terminated();
        return (this.routing ??= this.newRouting()).handle(f);
      case Phase.Admin:
        if (f.type === FrontendCode.Terminate) return this.terminated();
        return this.admin!.handle(f);
      default:
        return true;
    }
  }

  private terminated(): boolean {
    this.close();
    return true;
  }

  /** Re-runs held input once the current callback has returned (it may be a backend's, mid-chunk). */
  resume(): void {
    if (!this.blocked || this.resumeQueued || this.phase === Phase.Closed) return;
    this.resumeQueued = true;
    queueMicrotask(this.resumeNow);
  }

  private readonly resumeNow = (): void => {
    this.resumeQueued = false;
    if (!this.blocked || this.phase === Phase.Closed) return;
    this.blocked = false;
    const data = this.held;
    this.held = null;
    if (!this.clientPaused) this.client.resume();
    if (data !== null && data.length > 0) this.onClientData(data);
  };

  /**
   * Input that breaks the protocol gets PostgreSQL's answer (docs/protocol-violations.md): a length PostgreSQL
   * would not read closes the connection without a word (it is logged), a type byte it does not expect and a
   * malformed startup packet get FATAL 08P01; pgproxy's own lower limit (listen.max_message_bytes) gets FATAL 54000.
   */
  private protocolFailure(err: Error): void {
    if (err instanceof FrameError) {
      switch (err.fault) {
        case FrameFault.Length:
          this.log.info({ reason: err.message }, 'protocol violation: invalid message length; closing client without a reply');
          this.client.destroy();
          this.close();
          return;
        case FrameFault.OverLimit:
          this.log.info({ reason: err.message }, 'message over listen.max_message_bytes; closing client');
          this.fatal(new ProxyError(SqlState.ProgramLimitExceeded, `message of ${err.size} bytes exceeds listen.max_message_bytes (${this.ctx.maxMessageBytes})`, 'FATAL'));
          return;
        case FrameFault.Type: {
          const message = this.phase === Phase.Startup ? `expected password response, got message type ${err.type}` : err.message;
          this.log.info({ reason: message }, 'protocol violation; closing client');
          this.fatal(new ProxyError(SqlState.ProtocolViolation, message, 'FATAL'));
          return;
        }
      }
    }
    const known = err instanceof MessageError;
    const message = known ? err.message : `internal error: ${err.message}`;
    if (!known) this.log.error({ err }, 'session failed');
    else this.log.info({ reason: message }, 'protocol violation; closing client');
    this.fatal(new ProxyError(SqlState.ProtocolViolation, message, 'FATAL'));
  }

  // ------------------------------------------------------------------ StartupHost

  write(bytes: Buffer): void {
    this.client.write(bytes);
  }

  startTls(): void {
    const raw = this.client;
    raw.removeAllListeners('data');
    raw.removeAllListeners('drain');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.ctx.tls! });
    this.client = secure;
    this.tls = true;
    this.bindClient(secure);
    secure.on('close', () => this.close());
  }

  identify(user: string, database: string): void {
    this.logBindings = { client: this.id, user, database };
    this.logger = null;
  }

  loggedIn(result: LoginResult): void {
    if (this.authTimer !== null) {
      clearTimeout(this.authTimer);
      this.authTimer = null;
    }
    this.login = result;
    this.startup = null;
    if (result.admin) {
      this.admin = new AdminConsole(this.ctx, this);
      this.phase = Phase.Admin;
    } else {
      // The routing state is made at the first message: an idle client costs only its socket and this object.
      this.phase = Phase.Routing;
    }
    this.framer.setMaxFrame(this.ctx.maxMessageBytes);
    this.framer.setTypeLimits(SESSION_MESSAGE_LIMITS);
    // Input that arrived during login is handled now.
    this.blocked = true;
    this.resume();
  }

  private newRouting(): Routing {
    const r = this.login!;
    return new Routing(this.ctx, this, r.database, r.user, r.secret, r.scramKeys, r.startupParams, r.readPreference);
  }

  // ------------------------------------------------------------------ RoutingHost

  get clientPid(): number {
    return this.cancelKey.pid;
  }

  writeClient(bytes: Buffer): boolean {
    if (this.phase === Phase.Closed) return false;
    const client = this.client;
    // The client ended its side ('close' is still to come): nothing can be written, and no backend should wait for it.
    if (client.destroyed || client.writableEnded) return false;
    if (!client.write(bytes)) this.routing?.links.pauseBackends(true);
    return client.writableLength > 0;
  }

  pauseInput(): void {
    this.clientPaused = true;
    this.client.pause();
  }

  resumeInput(): void {
    if (!this.clientPaused) return;
    this.clientPaused = false;
    if (!this.blocked) this.client.resume();
  }

  closeAfterProtocolError(): void {
    this.log.info('backend ended the session for a protocol violation by the client; closing it');
    queueMicrotask(() => this.close());
  }

  destroy(_reason: string): void {
    this.client.destroy();
    this.close();
  }

  // ------------------------------------------------------------------ the server's view (SessionView)

  /** Called about once a second: client idle and idle-in-transaction timeouts. */
  checkTimeouts(now: number): void {
    const routing = this.routing;
    if (this.phase !== Phase.Routing || this.blocked || (routing !== null && routing.links.busy)) return;
    const idleFor = now - this.lastActivity;
    const listen = this.ctx.config.listen;
    const inTransaction = routing !== null && routing.inTransaction;
    if (inTransaction && listen.idle_in_transaction_timeout_ms > 0 && idleFor > listen.idle_in_transaction_timeout_ms) {
      this.log.info({ idleMs: Math.round(idleFor) }, 'closing client idle in transaction');
      this.fatal(new ProxyError('25P03', 'terminating connection due to idle-in-transaction timeout', 'FATAL'));
    } else if (!inTransaction && listen.client_idle_timeout_ms > 0 && idleFor > listen.client_idle_timeout_ms) {
      this.log.info({ idleMs: Math.round(idleFor) }, 'closing idle client');
      this.fatal(new ProxyError('57P05', 'terminating connection due to idle-session timeout', 'FATAL'));
    }
  }

  /** RESUME: a session held by PAUSE goes on. */
  resumeAfterPause(): void {
    if (this.routing === null || !this.routing.waitingForResume) return;
    this.routing.waitingForResume = false;
    this.resume();
  }

  /** The node was marked down: statements in flight there fail now rather than hang. */
  nodeDown(nodeId: number): void {
    this.routing?.links.nodeDown(nodeId);
  }

  cancel(): void {
    this.routing?.cancel();
  }

  describe(): ClientInfo {
    const state =
      this.phase === Phase.Startup ? (this.startup?.authenticating ? 'auth' : 'startup')
      : this.phase === Phase.Admin ? (this.admin!.active ? 'active' : 'idle')
      : this.phase === Phase.Routing ? (this.routing?.describeState() ?? 'idle')
      : 'idle';
    return {
      id: this.id,
      user: this.login?.user ?? '',
      database: this.login?.database ?? '',
      address: this.address,
      applicationName: this.login?.startupParams.get('application_name') ?? '',
      tls: this.tls,
      state,
      connectedAt: this.connectedAt,
      servers: this.routing?.links.describe() ?? [],
    };
  }

  get idle(): boolean {
    return this.routing === null || this.phase !== Phase.Routing || this.routing.idle;
  }

  terminate(error: { code: string; message: string } | null): void {
    if (error) this.fatal(new ProxyError(error.code, error.message, 'FATAL'));
    else this.close();
  }

  // ------------------------------------------------------------------ ending

  /** A method, not a field read, so that TypeScript does not narrow `phase` across calls that close. */
  private isClosed(): boolean {
    return this.phase === Phase.Closed;
  }

  fatal(err: ProxyError): void {
    if (this.phase === Phase.Closed) return;
    this.client.end(err.toFrame());
    this.close();
  }

  close(): void {
    if (this.phase === Phase.Closed) return;
    const wasReady = this.phase === Phase.Routing || this.phase === Phase.Admin;
    this.phase = Phase.Closed;
    if (this.authTimer !== null) clearTimeout(this.authTimer);
    this.held = null;
    this.ctx.registry.remove(this);
    this.startup?.abandon();
    this.routing?.close();
    if (!this.client.destroyed) this.client.end();
    if (this.ctx.log.isLevelEnabled('info')) this.log.info({ ready: wasReady }, 'client disconnected');
  }
}
