/**
 * One connection to a PostgreSQL node: connect, authenticate as the configured user, then raw frame forwarding
 * to whichever session currently owns it.
 */
import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { BackendError, NodeConnectionError } from '../errors.js';
import { secretKind } from '../config/secrets.js';
import { md5SaltedResponse } from '../wire/auth/md5.js';
import { ScramClient, ScramError, SCRAM_MECHANISM, type ScramClientKeys } from '../wire/auth/scram.js';
import { parseErrorFields, parseParameterStatus } from '../wire/backend.js';
import { AuthCode, BackendCode } from '../wire/codes.js';
import { Framer } from '../wire/framer.js';
import { TERMINATE } from '../wire/frontend.js';

export interface NodeAddress {
  id: number;
  name: string;
  host: string;
  port: number;
}

export interface LoginSpec {
  user: string;
  database: string;
  /** Plaintext password, or an md5 hash (answers md5 only). Empty for trust. */
  secret: string;
  /** Extra startup parameters (application_name...). */
  params?: Record<string, string>;
  connectTimeoutMs: number;
  /** TLS to the backend (default: none). */
  tls?: BackendTls;
  /** SCRAM pass-through: keys recovered from the client's own SCRAM proof, when no plaintext password is known. */
  scramKeys?: ScramClientKeys | null;
}

export interface BackendTls {
  mode: 'disable' | 'prefer' | 'require' | 'verify-full';
  /** CA certificates for verify-full (default: Node's bundled roots). */
  ca: Buffer | null;
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
/** Size of the buffer a plaintext backend socket reads into (PostgreSQL sends at most 8 KB per write). */
const READ_BUFFER_SIZE = 16 * 1024;

/**
 * Where a backend socket's reads go. A plaintext socket reads into one reused buffer (Node's `onread`): no Buffer
 * is allocated and no stream event is emitted per read. The chunk handed to `sink` is a view of that buffer, valid
 * during the call; when `sink` says a view of it was kept (queued for writing to a client that reads slowly), the
 * next read goes into a new buffer, so that queued bytes are never overwritten. TLS sockets keep the stream path.
 */
const NO_SINK = (): boolean => false;

export class SocketReads {
  private buf: Buffer | null = null;
  private lent = false;
  /** Returns true when the chunk, or a view of it, is kept beyond the call. */
  sink: (chunk: Buffer) => boolean = NO_SINK;

  readonly nextBuffer = (): Buffer => {
    if (this.buf === null || this.lent) {
      this.buf = Buffer.allocUnsafe(READ_BUFFER_SIZE);
      this.lent = false;
    }
    return this.buf;
  };

  /** Returns true: keep reading (backpressure pauses the socket itself). */
  readonly onRead = (n: number, buf: Buffer): boolean => {
    if (this.sink(buf.subarray(0, n))) this.lent = true;
    return true;
  };

  /** The stream path (TLS): every chunk is a buffer of its own. */
  readonly onData = (chunk: Buffer): void => {
    this.sink(chunk);
  };
}

/**
 * Connects to a node; with backend TLS, asks for it (SSLRequest) and upgrades when the node answers 'S'.
 * `prefer` falls back to plaintext on 'N'; `require` and `verify-full` refuse it.
 */
function openSocket(node: NodeAddress, opts: BackendTls | undefined, timeoutMs: number, reads: SocketReads): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const mode = opts?.mode ?? 'disable';
    // The raw socket always reads into the reused buffer; with TLS, the TLS layer takes its reads over.
    const raw = net.connect({ host: node.host, port: node.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000, onread: { buffer: reads.nextBuffer, callback: reads.onRead } });
    const timer = setTimeout(() => fail(new NodeConnectionError(node.name, `timeout connecting to ${node.name} (${node.host}:${node.port})`)), timeoutMs);
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      raw.destroy();
      reject(err);
    };
    const ok = (s: net.Socket): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.removeAllListeners('error');
      // A TLS socket emits its decrypted bytes as chunks of their own.
      if (s !== raw) s.on('data', reads.onData);
      resolve(s);
    };
    raw.on('error', (err) => fail(new NodeConnectionError(node.name, `${node.name} (${node.host}:${node.port}): ${err.message}`)));
    raw.on('connect', () => {
      if (mode === 'disable') return ok(raw);
      raw.write(SSL_REQUEST);
      reads.sink = (answer) => {
        reads.sink = NO_SINK;
        // Anything after the one-byte answer would be unencrypted data injected before the handshake.
        if (answer.length !== 1) fail(new NodeConnectionError(node.name, `${node.name} sent unexpected data after its SSL answer`));
        else if (answer[0] === 0x4e) {
          if (mode === 'prefer') ok(raw);
          else fail(new NodeConnectionError(node.name, `${node.name} does not support TLS (backend_tls.mode = ${mode})`));
        } else if (answer[0] !== 0x53) fail(new NodeConnectionError(node.name, `${node.name} sent an invalid answer to SSLRequest`));
        else {
          const verify = mode === 'verify-full';
          const secure = tls.connect({
            socket: raw,
            host: node.host,
            ...(net.isIP(node.host) === 0 ? { servername: node.host } : {}),
            ...(opts!.ca ? { ca: opts!.ca } : {}),
            rejectUnauthorized: verify,
            ...(verify ? {} : { checkServerIdentity: () => undefined }),
          });
          secure.once('secureConnect', () => ok(secure));
          secure.on('error', (err) => fail(new NodeConnectionError(node.name, `${node.name}: TLS: ${err.message}`)));
        }
        return false;
      };
    });
  });
}

/** What a backend connection reports to the session that holds it. */
export interface BackendOwner {
  /**
   * Bytes from the backend. `chunk` is valid only during the call; return true when a view of it was kept (e.g.
   * queued for writing to a client), so that the next read does not overwrite it.
   */
  onBackendData(conn: BackendConnection, chunk: Buffer): boolean;
  onBackendClosed(conn: BackendConnection, error: Error | null): void;
  onBackendDrain(conn: BackendConnection): void;
}

let nextConnectionId = 1;

export class BackendConnection {
  readonly id = nextConnectionId++;
  readonly createdAt = Date.now();
  lastReleasedAt = Date.now();
  /** When a session last took it from its pool (0: never). */
  leasedAt = 0;
  /** Where it is in its pool (SHOW SERVERS): leased to a session (or being opened for one), idle, or being reset. */
  poolState: 'leased' | 'idle' | 'reset' = 'leased';
  pid = 0;
  secretKey = 0;
  readonly serverParams = new Map<string, string>();
  owner: BackendOwner | null = null;
  closed = false;
  /** Prepared statements this backend session holds: name ('' = unnamed) -> SQL text. */
  readonly prepared = new Map<string, string>();
  /**
   * Whose session state this backend carries: null while it is as a new connection would be; otherwise a tag the
   * session layer chose (equal tags mean equal state). The pool resets a tagged connection (DISCARD ALL) on
   * release unless told to keep its state.
   */
  stateTag: unknown = null;

  private constructor(
    readonly node: NodeAddress,
    readonly user: string,
    readonly database: string,
    readonly socket: net.Socket,
    private readonly reads: SocketReads,
  ) {}

  static connect(node: NodeAddress, login: LoginSpec): Promise<BackendConnection> {
    const started = Date.now();
    const reads = new SocketReads();
    return openSocket(node, login.tls, login.connectTimeoutMs, reads).then((socket) => BackendConnection.login(node, login, socket, reads, Math.max(1, login.connectTimeoutMs - (Date.now() - started))));
  }

  private static login(node: NodeAddress, login: LoginSpec, socket: net.Socket, reads: SocketReads, timeoutMs: number): Promise<BackendConnection> {
    return new Promise((resolve, reject) => {
      const conn = new BackendConnection(node, login.user, login.database, socket, reads);
      const framer = new Framer(1 << 24);
      let scram: ScramClient | null = null;
      let settled = false;
      const timer = setTimeout(() => fail(new NodeConnectionError(node.name, `timeout logging in to ${node.name} (${node.host}:${node.port})`)), timeoutMs);
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        conn.closed = true;
        socket.destroy();
        reject(err);
      };
      const onError = (err: Error): void => fail(new NodeConnectionError(node.name, `${node.name} (${node.host}:${node.port}): ${err.message}`));
      const onClose = (): void => fail(new NodeConnectionError(node.name, `${node.name} closed the connection during login`));
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.write(serialize.startup({ user: login.user, database: login.database, ...login.params }));
      const onData = (chunk: Buffer): boolean => {
        if (settled) return false;
        try {
          framer.push(chunk);
          while (framer.next()) {
            const buf = framer.buf;
            const body = buf.subarray(framer.bodyStart, framer.end);
            switch (framer.type) {
              case BackendCode.Authentication:
                scram = conn.answerAuth(body, login, scram);
                break;
              case BackendCode.ParameterStatus: {
                const [name, value] = parseParameterStatus(body);
                conn.serverParams.set(name, value);
                break;
              }
              case BackendCode.BackendKeyData:
                conn.pid = body.readInt32BE(0);
                conn.secretKey = body.readInt32BE(4);
                break;
              case BackendCode.ErrorResponse: {
                const f = parseErrorFields(body);
                fail(new BackendError(f.code, f.message, f.severity, Buffer.from(buf.subarray(framer.start, framer.end))));
                return false;
              }
              case BackendCode.ReadyForQuery:
                if (framer.pending) throw new Error('unexpected data after ReadyForQuery');
                settled = true;
                clearTimeout(timer);
                socket.off('error', onError);
                socket.off('close', onClose);
                conn.enterForwarding();
                resolve(conn);
                return false;
              default:
                break; // NoticeResponse, NegotiateProtocolVersion: nothing to do during login
            }
          }
        } catch (err) {
          if (err instanceof BackendError || err instanceof NodeConnectionError) fail(err);
          // A SCRAM exchange that cannot succeed is a login failure, not a sign the node is unwell.
          else if (err instanceof ScramError) fail(new BackendError('28P01', `${node.name}: ${err.message}`, 'FATAL'));
          else fail(new NodeConnectionError(node.name, `${node.name}: ${(err as Error).message}`));
        }
        return false;
      };
      reads.sink = onData;
    });
  }

  /** Answers an Authentication request; returns the SCRAM exchange state to carry to the next one. */
  private answerAuth(body: Buffer, login: LoginSpec, scram: ScramClient | null): ScramClient | null {
    const code = body.readInt32BE(0);
    switch (code) {
      case AuthCode.Ok:
        return null;
      case AuthCode.CleartextPassword:
        if (secretKind(login.secret) === 'md5') throw new BackendError('28P01', `node ${this.node.name} asks for a cleartext password but only an md5 hash is configured for user "${login.user}"`, 'FATAL');
        this.socket.write(serialize.password(login.secret));
        return null;
      case AuthCode.MD5Password:
        this.socket.write(serialize.password(md5SaltedResponse(login.user, login.secret, body.subarray(4, 8))));
        return null;
      case AuthCode.SASL: {
        const mechanisms = body.toString('utf8', 4).split('\0');
        if (!mechanisms.includes(SCRAM_MECHANISM)) throw new BackendError('28000', `node ${this.node.name} offers no supported SASL mechanism`, 'FATAL');
        let client: ScramClient;
        if (login.scramKeys) client = ScramClient.fromKeys(login.scramKeys);
        else if (login.secret === '' || secretKind(login.secret) !== 'plain') {
          throw new BackendError('28P01', `node ${this.node.name} asks for SCRAM-SHA-256 but no plaintext password is configured for user "${login.user}"`, 'FATAL');
        } else client = new ScramClient(login.secret);
        this.socket.write(serialize.sendSASLInitialResponseMessage(SCRAM_MECHANISM, client.clientFirstMessage().toString('utf8')));
        return client;
      }
      case AuthCode.SASLContinue:
        if (!scram) throw new Error('SASLContinue without SASL');
        this.socket.write(serialize.sendSCRAMClientFinalMessage(scram.handleServerFirst(body.subarray(4)).toString('utf8')));
        return scram;
      case AuthCode.SASLFinal:
        if (!scram) throw new Error('SASLFinal without SASL');
        scram.verifyServerFinal(body.subarray(4));
        return null;
      default:
        throw new BackendError('28000', `node ${this.node.name} asks for an unsupported authentication method (${code})`, 'FATAL');
    }
  }

  private enterForwarding(): void {
    const socket = this.socket;
    this.reads.sink = (chunk) => {
      const owner = this.owner;
      if (owner !== null) return owner.onBackendData(this, chunk);
      // Data on an idle pooled connection is a FATAL (e.g. the node shutting down) or a stray notice:
      // either way the connection is no longer trustworthy.
      this.destroy();
      return false;
    };
    socket.on('drain', () => this.owner?.onBackendDrain(this));
    socket.on('error', () => this.handleClose(null));
    socket.on('close', () => this.handleClose(null));
  }

  private handleClose(error: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const owner = this.owner;
    this.owner = null;
    if (owner) owner.onBackendClosed(this, error ?? new NodeConnectionError(this.node.name, `connection to ${this.node.name} lost`));
    this.onClosed?.(this);
  }

  /** Set by the pool to learn about closes of idle connections. */
  onClosed: ((conn: BackendConnection) => void) | null = null;

  /** The TLS protocol and cipher of the connection ('TLSv1.3/TLS_AES_256_GCM_SHA384'), or '' when plaintext. */
  get tlsDescription(): string {
    const s = this.socket;
    if (!(s instanceof tls.TLSSocket)) return '';
    return `${s.getProtocol() ?? ''}/${s.getCipher()?.name ?? ''}`;
  }

  write(buf: Buffer): boolean {
    return this.socket.write(buf);
  }

  /**
   * Terminate, and resolve once the backend has closed its end of the connection: its process has then exited and
   * its slot under the node's max_connections is free (PostgreSQL releases the slot before it closes the socket).
   * A node that has not closed within `timeoutMs` has the socket destroyed.
   */
  terminateAndWait(timeoutMs: number): Promise<void> {
    const socket = this.socket;
    if (this.closed || socket.destroyed) {
      this.handleClose(null);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => socket.destroy(), timeoutMs);
      timer.unref();
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      // Closed for everyone from now on, without telling an owner or the pool: the caller does.
      this.closed = true;
      this.owner = null;
      socket.end(TERMINATE);
    });
  }

  /** Polite close: Terminate, then end. */
  terminate(): void {
    if (this.closed) return;
    this.socket.end(TERMINATE);
    this.handleClose(null);
  }

  destroy(): void {
    this.handleClose(null);
  }
}
