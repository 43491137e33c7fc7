/**
 * The proxy process: accepts clients and runs one Session each, keeps the topology fresh, applies reloads, and
 * shuts down gracefully.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { runAdminCommand } from './admin/console.js';
import { startMetricsServer, type MetricsServer } from './admin/http.js';
import { Histogram } from './lib/histogram.js';
import { loadConfigFile } from './config/load.js';
import type { Config } from './config/types.js';
import { SessionRegistry, type AdminTable, type ProxyContext, type ProxyControls, type SessionView } from './context.js';
import { AuthQuery } from './pool/auth-query.js';
import type { BackendTls } from './pool/backend.js';
import { HealthChecker, type HealthSettings } from './nodes/health.js';
import { ReplayTracker, type ReplaySettings } from './nodes/replay.js';
import { backendSecretProblems, staticSecretProblems } from './pool/login-check.js';
import { globalLimitsOf } from './pool/limits.js';
import { PoolManager } from './pool/manager.js';
import { OwnConnections } from './pool/own-connections.js';
import type { PoolLimits } from './pool/pool.js';
import { applySnapshot, Topology, type NodeSnapshot } from './nodes/topology.js';
import { CatalogCache } from './router/catalog.js';
import { pgCatalogSource } from './pool/catalog-source.js';
import { loadParser } from './router/classify/parser.js';
import { compileRouterRules } from './router/policy.js';
import { REASON_COUNT } from './router/reasons.js';
import { Session } from './session/session.js';
import { compileHba } from './wire/auth/hba.js';
import { FailureLimiter } from './wire/auth/limiter.js';
import { errorResponse } from './wire/backend.js';
import { SqlState } from './wire/codes.js';

export interface RunningProxy {
  readonly host: string;
  readonly port: number;
  readonly context: ProxyContext;
  readonly health: HealthChecker;
  /** Port of the HTTP server for /metrics, /health and /ready; null when metrics.port is 0 (off). */
  readonly metricsPort: number | null;
  /** Resolves when the proxy has stopped (after close(), shutdown(), or SHUTDOWN from the admin console). */
  readonly stopped: Promise<void>;
  /** Re-reads the configuration file given at start (SIGHUP, admin RELOAD). */
  reload(): Promise<string>;
  /** Graceful stop: no new clients; transactions in flight may finish within `timeoutMs`; then 57P01 to all. */
  shutdown(timeoutMs?: number): Promise<void>;
  /** Immediate stop (tests): every client closed. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** The file the configuration came from, for reloads. */
  configFile?: string;
  /** Run as one of `workers`: the health view, reloads and admin figures come through the primary process. */
  worker?: WorkerSide;
}

/** A worker's side of the channel to the primary process (given to startProxy). */
export interface WorkerSide {
  /** 1-based. */
  index: number;
  firstSnapshot: Promise<NodeSnapshot[]>;
  reportFailure(nodeId: number, reason: string): void;
  forwardCancel(pid: number, secret: number): void;
  detach(nodeId: number): void;
  attach(nodeId: number): void;
  shutdown(): void;
  reload(): Promise<string>;
  collect(cmd: string): Promise<AdminTable[]>;
}

export class StartupError extends Error {}

function backendTlsOf(config: Config): BackendTls {
  return { mode: config.backend_tls.mode, ca: config.backend_tls.ca_file ? readFileSync(config.backend_tls.ca_file) : null };
}

function poolLimitsOf(config: Config): PoolLimits {
  return {
    maxPerNode: config.pool.max_per_node,
    minIdle: config.pool.min_idle,
    acquireTimeoutMs: config.pool.acquire_timeout_ms,
    idleTimeoutMs: config.pool.idle_timeout_ms,
    maxLifetimeMs: config.pool.max_lifetime_ms,
    connectTimeoutMs: config.pool.connect_timeout_ms,
    tls: backendTlsOf(config),
  };
}

export function healthSettingsOf(config: Config): HealthSettings {
  const hc = config.health_check;
  return {
    periodMs: hc.period_ms,
    timeoutMs: hc.timeout_ms,
    maxRetries: hc.max_retries,
    retryDelayMs: hc.retry_delay_ms,
    user: hc.user,
    password: hc.password,
    database: hc.database,
    ssl: sslForPg(backendTlsOf(config)),
    failover: { autoPromote: config.failover.auto_promote, afterMs: config.failover.after_ms, user: config.failover.user, password: config.failover.password },
  };
}

function replaySettingsOf(config: Config): ReplaySettings {
  const hc = config.health_check;
  return { user: hc.user, password: hc.password, database: hc.database, ssl: sslForPg(backendTlsOf(config)), timeoutMs: hc.timeout_ms };
}

function clientTlsOf(config: Config): tls.SecureContext | null {
  return config.tls.mode === 'disable' ? null : tls.createSecureContext({ cert: readFileSync(config.tls.cert_file!), key: readFileSync(config.tls.key_file!) });
}

function authQueryOf(config: Config, topology: Topology, own: OwnConnections): AuthQuery | null {
  if (config.auth.query === null) return null;
  const hc = config.health_check;
  return new AuthQuery(
    { sql: config.auth.query, user: config.auth.query_user!, password: config.auth.query_password, database: config.auth.query_database, timeoutMs: Math.max(2_000, hc.timeout_ms * 2), ssl: sslForPg(backendTlsOf(config)) },
    () => topology.primary(),
    own,
  );
}

export async function startProxy(config: Config, log: Logger, options: StartOptions = {}): Promise<RunningProxy> {
  const problems = staticSecretProblems(config);
  if (problems.length > 0) throw new StartupError(problems.join('\n'));
  const topology = new Topology(config.backends.map((b) => ({ ...b })));
  const workerIndex = options.worker?.index ?? 0;
  const pools = new PoolManager(poolLimitsOf(config), log, globalLimitsOf(config, workerIndex), (id) => topology.nodes[id]?.up === true);
  const health = new HealthChecker(topology, healthSettingsOf(config), log.child({ component: 'health' }));
  const replay = new ReplayTracker(topology, replaySettingsOf(config), log.child({ component: 'replay' }));
  const own = new OwnConnections();
  own.watch('health', () => health.connections.values());
  own.watch('replay', () => replay.connections.values());
  let catalogSsl = sslForPg(backendTlsOf(config));
  let catalogCreds = { user: config.health_check.user, password: config.health_check.password };
  const catalog = new CatalogCache(
    pgCatalogSource(() => {
      const p = topology.primary();
      return p ? { host: p.host, port: p.port, user: catalogCreds.user, password: catalogCreds.password, ssl: catalogSsl } : null;
    }, Math.max(5_000, config.health_check.timeout_ms * 5), own),
    { onError: (database, err) => log.warn({ database, err: err.message }, 'could not reload catalog facts; using the previous ones') },
  );

  const sessions = new Set<SessionView>();
  const pausedWaiters = new Set<Session>();
  let paused = false;
  let stopping: Promise<void> | null = null;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((r) => (resolveStopped = r));

  const worker = options.worker ?? null;
  const controls: ProxyControls = {
    reload: () => (worker ? worker.reload() : reload()),
    pause() {
      paused = true;
      log.warn('paused: new statements wait until RESUME');
    },
    resume() {
      paused = false;
      log.warn('resumed');
      for (const s of sessions) (s as Session).resumeAfterPause();
    },
    get paused() {
      return paused;
    },
    detachNode(id) {
      if (!topology.nodes[id]) throw new Error(`no node ${id}`);
      topology.detach(id);
      worker?.detach(id);
    },
    attachNode(id) {
      if (!topology.nodes[id]) throw new Error(`no node ${id}`);
      topology.attach(id);
      if (worker) worker.attach(id);
      else void health.round();
    },
    shutdown() {
      if (worker) worker.shutdown();
      else void shutdown(context.config.shutdown.timeout_ms);
    },
  };

  const context: ProxyContext = {
    sessions,
    controls,
    admin: runAdminCommand,
    tls: clientTlsOf(config),
    hba: compileHba(config.auth.hba),
    authQuery: authQueryOf(config, topology, own),
    loginFailures: new FailureLimiter(config.auth.max_failures_per_minute),
    catalog,
    config,
    log,
    topology,
    pools,
    ownConnections: own,
    router: compileRouterRules(config.routing),
    registry: worker ? new SessionRegistry(worker.index, (pid, secret) => worker.forwardCancel(pid, secret)) : new SessionRegistry(),
    ...(worker ? { collectAdmin: (cmd: string) => worker.collect(cmd) } : {}),
    maxMessageBytes: config.listen.max_message_bytes,
    lagLimits: { maxBytes: config.routing.max_lag_bytes, maxMs: config.routing.max_lag_ms },
    stats: { notUnderstood: 0, parsed: 0, routed: new Float64Array(REASON_COUNT), errorsByClass: new Map(), poolWait: new Histogram(), replayWaits: { standby: 0, primary: 0 }, replayWait: new Histogram(), clientsAccepted: 0 },
    replay,
    reportNodeFailure(nodeId, reason) {
      if (!context.config.health_check.fail_on_backend_error) return;
      // The process that runs the health checks confirms it (with workers, the primary process).
      if (worker) worker.reportFailure(nodeId, reason);
      else health.confirm(nodeId, reason);
    },
  };
  void pausedWaiters;

  const sweep = setInterval(() => {
    const now = performance.now();
    for (const s of sessions) (s as Session).checkTimeouts(now);
  }, 1000);
  sweep.unref();
  topology.on('change', (change: { node: string; from: string; to: string; first: boolean }, node: { id: number; up: boolean }) => {
    const fields = { node: change.node, from: change.from, to: change.to };
    if (change.first) log.info(fields, 'node discovered');
    else log.warn(fields, 'node state changed');
    if (!node.up) {
      pools.closeIdleOn(node.id);
      for (const s of sessions) (s as Session).nodeDown(node.id);
    }
  });

  if (worker) applySnapshot(topology, await worker.firstSnapshot);
  else await health.start();
  if (config.routing.read_your_writes !== 'off') replay.warm();
  // PostgreSQL's parser, for the statements the classifier cannot read: loaded now, not at the first of them.
  void loadParser().catch((err: Error) => log.warn({ err: err.message }, 'PostgreSQL parser unavailable; statements the classifier cannot read go to the primary'));
  const firstUp = topology.primary() ?? topology.nodes.find((n) => n.up);
  if (firstUp) {
    const loginProblems = await backendSecretProblems(config, firstUp, backendTlsOf(config));
    if (loginProblems.length > 0) {
      await health.stop();
      replay.close();
      pools.close();
      clearInterval(sweep);
      throw new StartupError(loginProblems.join('\n'));
    }
  }
  for (const n of topology.nodes) log.info({ node: n.name, host: n.host, port: n.port, up: n.up, role: n.role, weight: n.weight }, 'node');
  if (!topology.primary()) log.warn('no primary found yet; writes will fail until one is');

  const server = net.createServer((socket) => {
    context.stats.clientsAccepted++;
    if (sessions.size >= context.config.listen.max_clients) {
      socket.on('error', () => socket.destroy());
      // Read and drop whatever it sends (else its socket never ends), answer, and do not wait long for it.
      socket.resume();
      socket.setTimeout(2_000, () => socket.destroy());
      socket.end(errorResponse({ severity: 'FATAL', code: SqlState.TooManyConnections, message: `sorry, too many clients already (listen.max_clients = ${context.config.listen.max_clients})` }));
      return;
    }
    const session = new Session(context, socket);
    sessions.add(session);
    socket.once('close', () => sessions.delete(session));
  });
  server.on('error', (err) => log.error({ err }, 'listener error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
  log.info({ host: addr.address, port: addr.port }, 'pgproxy listening');

  let metrics: MetricsServer | null = null;
  // With workers, the primary process serves /metrics for all of them.
  if (config.metrics.port > 0 && !worker) {
    try {
      metrics = await startMetricsServer(context, config.metrics.host, config.metrics.port);
    } catch (err) {
      server.close();
      clearInterval(sweep);
      await health.stop();
      replay.close();
      pools.close();
      throw new StartupError(`metrics: cannot listen on ${config.metrics.host}:${config.metrics.port}: ${(err as Error).message}`);
    }
    log.info({ host: config.metrics.host, port: metrics.port }, 'metrics listening (/metrics, /health, /ready)');
  }

  /** Applies a new configuration without dropping clients; an invalid one is refused and the old one stays. */
  async function reload(): Promise<string> {
    if (!options.configFile) throw new Error('no configuration file to reload (pgproxy was started without --config)');
    let next: Config;
    try {
      next = loadConfigFile(options.configFile);
      const problems = staticSecretProblems(next);
      if (problems.length > 0) throw new Error(problems.join('\n'));
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload refused: the configuration is invalid; keeping the current one');
      throw err;
    }
    const prev = context.config;
    if (next.listen.host !== prev.listen.host || next.listen.port !== prev.listen.port) {
      log.warn('listen.host and listen.port take effect only after a restart');
    }
    if (next.metrics.host !== prev.metrics.host || next.metrics.port !== prev.metrics.port) {
      log.warn('metrics.host and metrics.port take effect only after a restart');
    }
    const newTls = clientTlsOf(next);
    context.config = next;
    context.tls = newTls;
    context.router = compileRouterRules(next.routing);
    context.hba = compileHba(next.auth.hba);
    context.authQuery = authQueryOf(next, topology, own);
    context.maxMessageBytes = next.listen.max_message_bytes;
    context.lagLimits = { maxBytes: next.routing.max_lag_bytes, maxMs: next.routing.max_lag_ms };
    if (next.auth.max_failures_per_minute !== prev.auth.max_failures_per_minute) context.loginFailures = new FailureLimiter(next.auth.max_failures_per_minute);
    for (const id of topology.syncBackends(next.backends)) pools.closeIdleOn(id);
    pools.updateLimits(poolLimitsOf(next), globalLimitsOf(next, workerIndex));
    health.updateSettings(healthSettingsOf(next));
    replay.updateSettings(replaySettingsOf(next));
    catalogSsl = sslForPg(backendTlsOf(next));
    catalogCreds = { user: next.health_check.user, password: next.health_check.password };
    void health.round();
    const summary = `reloaded ${options.configFile}: ${topology.nodes.filter((n) => !n.removed).length} backends, ${next.auth.users.length} users`;
    log.warn(summary);
    return summary;
  }

  async function shutdown(timeoutMs: number): Promise<void> {
    stopping ??= (async () => {
      log.warn({ timeoutMs }, 'shutting down: no new clients; waiting for transactions in flight');
      server.close();
      metrics?.markStopping();
      const deadline = Date.now() + timeoutMs;
      const bye = { code: SqlState.AdminShutdown, message: 'terminating connection due to administrator command' };
      for (;;) {
        for (const s of sessions) if (s.idle) s.terminate(bye);
        if (sessions.size === 0 || Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const s of sessions) s.terminate(bye);
      clearInterval(sweep);
      await health.stop();
      replay.close();
      pools.close();
      await metrics?.close();
      log.warn('stopped');
      resolveStopped();
    })();
    return stopping;
  }

  return {
    host: addr.address,
    port: addr.port,
    context,
    health,
    metricsPort: metrics?.port ?? null,
    stopped,
    reload,
    shutdown,
    async close() {
      if (stopping) return stopping;
      stopping = (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const s of sessions) s.terminate(null);
        });
        clearInterval(sweep);
        await health.stop();
      replay.close();
        pools.close();
        await metrics?.close();
        resolveStopped();
      })();
      return stopping;
    },
  };
}

/** node-postgres' ssl option for pgproxy's own monitoring connections (it has no "prefer": plaintext then). */
function sslForPg(t: { mode: string; ca: Buffer | null }): false | { rejectUnauthorized: boolean; ca?: Buffer } {
  if (t.mode === 'require') return { rejectUnauthorized: false };
  if (t.mode === 'verify-full') return { rejectUnauthorized: true, ...(t.ca ? { ca: t.ca } : {}) };
  return false;
}
