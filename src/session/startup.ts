/**
 * A client's way in: the startup packet (or SSLRequest / GSSENCRequest / CancelRequest before it), access rules,
 * the authentication exchange (driving one wire/auth flow), and the login that tells the client the server's
 * parameters. Ends with a LoginResult handed to the session, or with a FATAL and the connection closed.
 *
 * `handle()` returns false while a step waits for something asynchronous (auth.query, the first backend login);
 * the session holds the client's input meanwhile and calls `handle()` again after `resume()`.
 */
import type { Logger } from 'pino';
import type { ProxyContext } from '../context.js';
import { BackendError, NodeConnectionError, ProxyError, isNodeUnavailableState } from '../errors.js';
import { pickReadNode } from '../router/balancer.js';
import { redirectFor } from '../router/policy.js';
import type { ScramClientKeys } from '../wire/auth/scram.js';
import { createAuthFlow } from '../wire/auth/create-flow.js';
import type { AuthFlow } from '../wire/auth/flow.js';
import { hbaMethod } from '../wire/auth/hba.js';
import { AUTH_OK, SSL_ACCEPTED, SSL_REFUSED, backendKeyData, parameterStatus, readyForQuery } from '../wire/backend.js';
import { BackendCode, CANCEL_REQUEST_CODE, FrontendCode, GSSENC_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE, SqlState, TxStatus } from '../wire/codes.js';
import type { Framer } from '../wire/framer.js';
import { AUTH_MESSAGE_LIMITS, parseStartup } from '../wire/frontend.js';
import { ProxySettings } from './proxy-settings.js';
import { proxyStartupEntries } from './settings.js';

export const ADMIN_DATABASE = 'pgproxy';

/** Who logged in, and how pgproxy logs in to backends for them. */
export interface LoginResult {
  readonly user: string;
  readonly database: string;
  /** The stored secret (plaintext, md5 hash or SCRAM verifier; '' for trust). */
  readonly secret: string;
  /** SCRAM pass-through keys, when the client authenticated with SCRAM against a stored verifier. */
  readonly scramKeys: ScramClientKeys | null;
  readonly startupParams: ReadonlyMap<string, string>;
  /** Where a redirect rule sends the session's reads, or null. */
  readonly readPreference: 'primary' | 'standby' | number | null;
  /** The client asked for the admin console (virtual database `pgproxy`) and may use it. */
  readonly admin: boolean;
}

/** What the startup steps need from the session that owns the client socket. */
export interface StartupHost {
  readonly ctx: ProxyContext;
  readonly address: string;
  readonly tls: boolean;
  readonly cancelKey: { pid: number; secret: number };
  write(bytes: Buffer): void;
  /** Answered 'S' to SSLRequest: the rest of the connection runs over TLS. */
  startTls(): void;
  fatal(err: ProxyError): void;
  close(): void;
  /** Re-run held client input (an asynchronous step finished). */
  resume(): void;
  /** The client said who it is: later log lines carry the user and database. */
  identify(user: string, database: string): void;
  /** Login is complete: the client has its ParameterStatus, BackendKeyData and ReadyForQuery. */
  loggedIn(result: LoginResult): void;
  readonly log: Logger;
}

/** Until login completes, messages are small (PostgreSQL allows authentication tokens up to 65535 bytes). */
const MAX_AUTH_MESSAGE = 65_535 + 5;

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

/** Startup parameters that are not server parameters the client could have asked for. */
const NOT_REPORTED = new Set(['user', 'database', 'replication', 'options']);

const enum Step {
  /** Waiting for the startup packet (or an SSL/GSS/cancel request). */
  Startup,
  /** An authentication exchange is under way. */
  Auth,
  /** Waiting for something asynchronous (auth.query, the first backend login): input is held. */
  Waiting,
  Done,
}

export class Startup {
  private step = Step.Startup;
  private user = '';
  private database = '';
  private startupParams: ReadonlyMap<string, string> = new Map();
  private secret = '';
  private flow: AuthFlow | null = null;
  private scramKeys: ScramClientKeys | null = null;
  private sslDone = false;
  private gssDone = false;

  constructor(private readonly host: StartupHost) {}

  get waiting(): boolean {
    return this.step === Step.Waiting;
  }

  /** The session closed: whatever is still under way is dropped when it completes. */
  abandon(): void {
    this.step = Step.Done;
  }

  get authenticating(): boolean {
    return this.step !== Step.Startup;
  }

  handle(f: Framer): boolean {
    switch (this.step) {
      case Step.Startup:
        this.onStartupPacket(f);
        return true;
      case Step.Auth:
        this.onAuthMessage(f);
        return true;
      case Step.Waiting:
        return false;
      default:
        return true;
    }
  }

  private onStartupPacket(f: Framer): void {
    const host = this.host;
    const ctx = host.ctx;
    const buf = f.buf;
    const code = buf.readInt32BE(f.start + 4);
    // Each request is answered once; a second one is read as a startup packet of an unknown protocol, as PostgreSQL does.
    if ((code === SSL_REQUEST_CODE && !this.sslDone) || (code === GSSENC_REQUEST_CODE && !this.gssDone)) {
      const ssl = code === SSL_REQUEST_CODE;
      if (ssl) this.sslDone = true;
      else this.gssDone = true;
      const accept = ssl && ctx.tls !== null && !host.tls;
      if (f.buffered > 0) {
        // Bytes sent after the request, before our answer, would be read as if encrypted (CVE-2021-23214).
        if (!accept) host.write(SSL_REFUSED);
        return host.fatal(new ProxyError(SqlState.ProtocolViolation, `received unencrypted data after ${ssl ? 'SSL' : 'GSSAPI encryption'} request`, 'FATAL'));
      }
      f.expectUntyped();
      if (accept) {
        host.write(SSL_ACCEPTED);
        host.startTls();
      } else {
        host.write(SSL_REFUSED);
      }
      return;
    }
    if (code === CANCEL_REQUEST_CODE) {
      if (f.end - f.start === 16) ctx.registry.cancel(buf.readInt32BE(f.start + 8), buf.readInt32BE(f.start + 12));
      host.close();
      return;
    }
    if (code >> 16 !== 3) {
      const message = `unsupported frontend protocol ${code >> 16}.${code & 0xffff}: server supports 3.0 to 3.0`;
      if (code >> 16 >= 3) return host.fatal(new ProxyError(SqlState.FeatureNotSupported, message, 'FATAL'));
      // A client of protocol 2 reads errors in that protocol's format: 'E', the text, NUL (as PostgreSQL sends it).
      host.write(Buffer.from(`EFATAL:  ${message}\n\0`, 'utf8'));
      return host.close();
    }
    const startup = parseStartup(buf, f.start, f.end);
    const unsupported = [...startup.params.keys()].filter((k) => k.startsWith('_pq_.'));
    if (startup.protocol !== PROTOCOL_3_0 || unsupported.length > 0) host.write(negotiateProtocolVersion(unsupported));
    for (const k of unsupported) startup.params.delete(k);
    f.setMaxFrame(MAX_AUTH_MESSAGE);
    f.setTypeLimits(AUTH_MESSAGE_LIMITS);
    const user = startup.params.get('user');
    if (!user) return host.fatal(new ProxyError(SqlState.InvalidAuthorization, 'no PostgreSQL user name specified in startup packet', 'FATAL'));
    const replication = startup.params.get('replication');
    if (replication !== undefined && replication !== 'false' && replication !== 'off' && replication !== '0' && replication !== 'no') {
      return host.fatal(new ProxyError(SqlState.FeatureNotSupported, 'pgproxy does not accept replication connections; connect to the primary directly', 'FATAL'));
    }
    this.user = user;
    this.database = startup.params.get('database') || user;
    if (ctx.config.tls.mode === 'require' && !host.tls) {
      return host.fatal(new ProxyError(SqlState.InvalidAuthorization, 'pgproxy requires TLS (tls.mode = require): connect with sslmode=require', 'FATAL'));
    }
    this.startupParams = startup.params;
    host.identify(this.user, this.database);
    this.beginAuth();
  }

  private beginAuth(): void {
    const host = this.host;
    const ctx = host.ctx;
    const auth = ctx.config.auth;
    if (ctx.loginFailures.blocked(host.address)) {
      host.log.warn({ address: host.address }, 'login refused: too many failed attempts from this address');
      return host.fatal(new ProxyError(SqlState.InvalidAuthorization, 'too many failed login attempts; try again later', 'FATAL'));
    }
    let method: string | null = auth.method;
    if (ctx.hba.length > 0) {
      method = hbaMethod(ctx.hba, { database: this.database, user: this.user, address: host.address, tls: host.tls });
      const where = `host "${host.address}", user "${this.user}", database "${this.database}", ${host.tls ? 'SSL on' : 'SSL off'}`;
      if (method === null) return host.fatal(new ProxyError(SqlState.InvalidAuthorization, `no pgproxy hba rule for ${where}`, 'FATAL'));
      if (method === 'reject') return host.fatal(new ProxyError(SqlState.InvalidAuthorization, `pgproxy hba rejects connection for ${where}`, 'FATAL'));
    }
    const chosen = method as 'md5' | 'scram-sha-256' | 'password' | 'trust';
    const entry = auth.users.find((u) => u.name === this.user);
    if (entry === undefined && ctx.authQuery !== null && chosen !== 'trust') {
      // Not configured: ask the primary for the stored secret (client input waits meanwhile).
      this.step = Step.Waiting;
      ctx.authQuery.lookup(this.user).then(
        (secret) => {
          if (this.step !== Step.Waiting) return;
          this.startMethod(chosen, secret);
          this.host.resume();
        },
        (err: Error) => {
          if (this.step !== Step.Waiting) return;
          host.log.warn({ err: err.message }, 'auth.query failed');
          host.fatal(new ProxyError(SqlState.CannotConnectNow, 'cannot look up the user now (auth.query failed)', 'FATAL'));
        },
      );
      return;
    }
    this.startMethod(chosen, entry?.password ?? null);
  }

  /** Sends the first request of `method` for a user whose stored secret is `secret` (null: unknown user). */
  private startMethod(method: 'md5' | 'scram-sha-256' | 'password' | 'trust', secret: string | null): void {
    this.secret = secret ?? '';
    if (method === 'trust') return this.authenticated();
    if (method === 'password' && !this.host.tls) {
      return this.host.fatal(new ProxyError(SqlState.InvalidAuthorization, 'password authentication is allowed only over TLS', 'FATAL'));
    }
    this.flow = createAuthFlow(method, this.user, secret);
    this.step = Step.Auth;
    this.host.write(this.flow.start());
  }

  private onAuthMessage(f: Framer): void {
    if (f.type !== FrontendCode.Password) {
      return this.host.fatal(new ProxyError(SqlState.ProtocolViolation, `expected password response, got message type ${f.type}`, 'FATAL'));
    }
    const step = this.flow!.next(f.buf.subarray(f.bodyStart, f.end));
    switch (step.kind) {
      case 'reply':
        this.host.write(step.message);
        return;
      case 'done':
        if (step.message !== null) this.host.write(step.message);
        this.scramKeys = step.scramKeys;
        this.authenticated();
        return;
      case 'fail':
        this.host.ctx.loginFailures.record(this.host.address);
        this.host.log.info({ address: this.host.address }, 'password authentication failed');
        this.host.fatal(new ProxyError(SqlState.InvalidPassword, `password authentication failed for user "${this.user}"`, 'FATAL'));
        return;
    }
  }

  private authenticated(): void {
    const host = this.host;
    const ctx = host.ctx;
    this.flow = null;
    if (this.database === ADMIN_DATABASE) {
      if (!ctx.config.admin.users.includes(this.user)) {
        return host.fatal(new ProxyError(SqlState.InvalidAuthorization, `user "${this.user}" is not allowed to use the pgproxy admin console (admin.users)`, 'FATAL'));
      }
      host.write(AUTH_OK);
      return this.finish(ADMIN_PARAMS, true);
    }
    host.write(AUTH_OK);
    const proxyEntries = proxyStartupEntries(this.startupParams);
    if (proxyEntries.length > 0) {
      // pgproxy.* values in the startup options are checked now, as PostgreSQL checks `-c` options at login.
      try {
        new ProxySettings(proxyEntries);
      } catch (err) {
        if (err instanceof ProxyError) return host.fatal(err);
        throw err;
      }
    }
    const known = ctx.pools.serverParams(this.database, this.user);
    if (known !== undefined) return this.finish(known, false);
    // First client of this (database, user): learn the server's parameters (and that the login works) from a real
    // backend connection, which then goes back to the pool: idle clients hold no backend connection.
    const node = ctx.topology.primary() ?? pickReadNode(ctx.topology.nodes);
    if (node === null) return host.fatal(new ProxyError(SqlState.CannotConnectNow, 'no PostgreSQL node is available', 'FATAL'));
    const pool = ctx.pools.get(node, this.database, this.user, this.secret);
    if (this.scramKeys !== null) pool.setScramKeys(this.scramKeys);
    this.step = Step.Waiting;
    pool.acquire().then(
      (conn) => {
        pool.release(conn, { reusable: true, inTransaction: false, reset: false });
        if (this.step !== Step.Waiting) return;
        ctx.pools.rememberServerParams(this.database, this.user, conn.serverParams);
        this.finish(conn.serverParams, false);
      },
      (err: Error) => {
        if (this.step !== Step.Waiting) return;
        if (err instanceof BackendError && err.frame) {
          // The backend refused the login (e.g. no such database): the client gets PostgreSQL's own answer.
          host.write(err.frame);
          host.close();
          return;
        }
        if (err instanceof NodeConnectionError || (err instanceof BackendError && isNodeUnavailableState(err.sqlstate))) ctx.reportNodeFailure(node.id, err.message);
        const code = err instanceof ProxyError || err instanceof BackendError ? err.sqlstate : SqlState.CannotConnectNow;
        host.fatal(new ProxyError(code, err.message, 'FATAL'));
      },
    );
  }

  private finish(serverParams: ReadonlyMap<string, string>, admin: boolean): void {
    const host = this.host;
    const values = new Map(serverParams);
    if (!admin) {
      // What the client asked for at startup is what its backends will report once the SETs are replayed.
      const byLower = new Map([...values.keys()].map((k) => [k.toLowerCase(), k]));
      for (const [k, v] of this.startupParams) {
        if (NOT_REPORTED.has(k)) continue;
        const known = byLower.get(k.toLowerCase());
        if (known) values.set(known, v);
      }
      // The proxy is writable as a whole, whichever node the session touches first.
      values.set('in_hot_standby', 'off');
      values.set('default_transaction_read_only', 'off');
    }
    const frames: Buffer[] = [];
    for (const [k, v] of values) frames.push(parameterStatus(k, v));
    frames.push(backendKeyData(host.cancelKey.pid, host.cancelKey.secret));
    frames.push(readyForQuery(TxStatus.Idle));
    host.write(Buffer.concat(frames));
    this.step = Step.Done;
    const ctx = host.ctx;
    host.loggedIn({
      user: this.user,
      database: this.database,
      secret: this.secret,
      scramKeys: this.scramKeys,
      startupParams: this.startupParams,
      readPreference: admin ? null : redirectFor(ctx.router, { applicationName: this.startupParams.get('application_name') ?? '', database: this.database, user: this.user }),
      admin,
    });
  }
}

/** NegotiateProtocolVersion: pgproxy speaks 3.0 and none of the `_pq_` options the client asked for. */
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
