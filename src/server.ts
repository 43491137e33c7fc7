/** The proxy process: accepts clients, runs one Session each, keeps the topology fresh, and shuts down cleanly. */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { SessionRegistry, type ProxyContext } from './context.js';
import { errorResponse } from './wire/backend.js';
import { SqlState } from './wire/codes.js';
import { AuthQuery } from './pool/auth-query.js';
import { HealthChecker } from './pool/health.js';
import { compileHba } from './wire/auth/hba.js';
import { FailureLimiter } from './wire/auth/limiter.js';
import { backendSecretProblems, staticSecretProblems } from './pool/login-check.js';
import { PoolManager } from './pool/manager.js';
import { Topology } from './pool/topology.js';
import { CatalogCache, pgCatalogSource } from './router/catalog.js';
import { compileRouterRules } from './router/policy.js';
import { Session } from './session.js';

export interface RunningProxy {
  readonly host: string;
  readonly port: number;
  readonly context: ProxyContext;
  readonly health: HealthChecker;
  close(): Promise<void>;
}

export class StartupError extends Error {}

export async function startProxy(config: Config, log: Logger): Promise<RunningProxy> {
  const problems = staticSecretProblems(config);
  if (problems.length > 0) throw new StartupError(problems.join('\n'));
  const backendTls = { mode: config.backend_tls.mode, ca: config.backend_tls.ca_file ? readFileSync(config.backend_tls.ca_file) : null };
  const pgSsl = sslForPg(backendTls);
  const topology = new Topology(config.backends.map((b) => ({ ...b })));
  const pools = new PoolManager(
    {
      maxPerNode: config.pool.max_per_node,
      minIdle: config.pool.min_idle,
      acquireTimeoutMs: config.pool.acquire_timeout_ms,
      idleTimeoutMs: config.pool.idle_timeout_ms,
      maxLifetimeMs: config.pool.max_lifetime_ms,
      connectTimeoutMs: config.pool.connect_timeout_ms,
      tls: backendTls,
    },
    log,
    { maxPerUser: config.limits.max_connections_per_user, maxPerDatabase: config.limits.max_connections_per_database },
    (id) => topology.nodes[id]?.up === true,
  );
  const hc = config.health_check;
  const health = new HealthChecker(
    topology,
    {
      periodMs: hc.period_ms,
      timeoutMs: hc.timeout_ms,
      maxRetries: hc.max_retries,
      retryDelayMs: hc.retry_delay_ms,
      user: hc.user,
      password: hc.password,
      database: hc.database,
      ssl: pgSsl,
      failover: { autoPromote: config.failover.auto_promote, afterMs: config.failover.after_ms, user: config.failover.user, password: config.failover.password },
    },
    log.child({ component: 'health' }),
  );
  const catalog = new CatalogCache(
    pgCatalogSource(() => {
      const p = topology.primary();
      return p ? { host: p.host, port: p.port, user: hc.user, password: hc.password, ssl: pgSsl } : null;
    }, Math.max(5_000, hc.timeout_ms * 5)),
    { onError: (database, err) => log.warn({ database, err: err.message }, 'could not reload catalog facts; using the previous ones') },
  );
  const context: ProxyContext = {
    tls: config.tls.mode === 'disable' ? null : tls.createSecureContext({ cert: readFileSync(config.tls.cert_file!), key: readFileSync(config.tls.key_file!) }),
    hba: compileHba(config.auth.hba),
    authQuery:
      config.auth.query === null
        ? null
        : new AuthQuery(
            { sql: config.auth.query, user: config.auth.query_user!, password: config.auth.query_password, database: config.auth.query_database, timeoutMs: Math.max(2_000, hc.timeout_ms * 2), ssl: pgSsl },
            () => topology.primary(),
          ),
    loginFailures: new FailureLimiter(config.auth.max_failures_per_minute),
    catalog,
    config,
    log,
    topology,
    pools,
    router: compileRouterRules(config.routing),
    registry: new SessionRegistry(),
    maxMessageBytes: config.listen.max_message_bytes,
    lagLimits: { maxBytes: config.routing.max_lag_bytes, maxMs: config.routing.max_lag_ms },
    stats: { notUnderstood: 0 },
    reportNodeFailure(nodeId, reason) {
      if (!config.health_check.fail_on_backend_error) return;
      const node = topology.nodes[nodeId];
      if (node?.up) topology.markDown(nodeId, reason);
    },
  };
  const sessions = new Set<Session>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const s of sessions) s.checkTimeouts(now);
  }, 1000);
  sweep.unref();
  topology.on('change', (change: { node: string; from: string; to: string; first: boolean }, node: { id: number; up: boolean }) => {
    const fields = { node: change.node, from: change.from, to: change.to };
    if (change.first) log.info(fields, 'node discovered');
    else log.warn(fields, 'node state changed');
    if (!node.up) {
      pools.closeIdleOn(node.id);
      for (const s of sessions) s.nodeDown(node.id);
    }
  });

  await health.start();
  const firstUp = topology.primary() ?? topology.nodes.find((n) => n.up);
  if (firstUp) {
    const loginProblems = await backendSecretProblems(config, firstUp, backendTls);
    if (loginProblems.length > 0) {
      await health.stop();
      pools.close();
      throw new StartupError(loginProblems.join('\n'));
    }
  }
  for (const n of topology.nodes) log.info({ node: n.name, host: n.host, port: n.port, up: n.up, role: n.role, weight: n.weight }, 'node');
  if (!topology.primary()) log.warn('no primary found yet; writes will fail until one is');

  const server = net.createServer((socket) => {
    if (sessions.size >= config.listen.max_clients) {
      socket.on('error', () => socket.destroy());
      socket.end(errorResponse({ severity: 'FATAL', code: SqlState.TooManyConnections, message: `sorry, too many clients already (listen.max_clients = ${config.listen.max_clients})` }));
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

  return {
    host: addr.address,
    port: addr.port,
    context,
    health,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.close();
      });
      clearInterval(sweep);
      await health.stop();
      pools.close();
    },
  };
}

/** node-postgres' ssl option for pgproxy's own monitoring connections (it has no "prefer": plaintext then). */
function sslForPg(t: { mode: string; ca: Buffer | null }): false | { rejectUnauthorized: boolean; ca?: Buffer } {
  if (t.mode === 'require') return { rejectUnauthorized: false };
  if (t.mode === 'verify-full') return { rejectUnauthorized: true, ...(t.ca ? { ca: t.ca } : {}) };
  return false;
}
