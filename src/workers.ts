/**
 * `workers: N`: N processes (node:cluster) serve one port. The primary process runs the one health checker
 * and shares its view with the workers after every round; workers report node failures and forward cancels
 * for sessions of other workers through it; admin figures and /metrics are gathered from every worker.
 */
import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { localAdminTable } from './admin/console.js';
import { ownServerRows, SERVERS_COLUMNS } from './admin/servers.js';
import { OwnConnections } from './pool/own-connections.js';
import type { AdminTable } from './context.js';
import { createMetricsRegistry } from './admin/metrics.js';
import { loadConfigFile } from './config/load.js';
import type { Config } from './config/types.js';
import { HealthChecker } from './nodes/health.js';
import { applySnapshot, snapshotOf, Topology, type NodeSnapshot } from './nodes/topology.js';
import { healthSettingsOf, startProxy, type RunningProxy, type WorkerSide } from './server.js';
import { workerOfPid } from './context.js';

/** Messages a worker sends to the primary process. */
type FromWorker =
  | { type: 'nodeFailure'; nodeId: number; reason: string }
  | { type: 'cancel'; pid: number; secret: number }
  | { type: 'detach' | 'attach'; nodeId: number }
  | { type: 'shutdown' }
  | { type: 'request'; id: number; what: 'reload' }
  | { type: 'request'; id: number; what: 'collect'; cmd: string }
  | { type: 'reply'; id: number; ok: boolean; value?: unknown; error?: string };

/** Messages the primary process sends to a worker. */
type ToWorker =
  | { type: 'topology'; nodes: NodeSnapshot[] }
  | { type: 'cancel'; pid: number; secret: number }
  | { type: 'shutdown'; timeoutMs: number }
  | { type: 'request'; id: number; what: 'reload' | 'metrics' }
  | { type: 'request'; id: number; what: 'collect'; cmd: string }
  | { type: 'reply'; id: number; ok: boolean; value?: unknown; error?: string };

const REQUEST_TIMEOUT_MS = 15_000;

class Requests {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  open<T>(send: (id: number) => void): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('no answer from the other pgproxy process'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      send(id);
    });
  }

  settle(id: number, ok: boolean, value: unknown, error: string | undefined): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (ok) p.resolve(value);
    else p.reject(new Error(error ?? 'failed'));
  }
}

// ------------------------------------------------------------------------------------------- worker side

/** Runs in each worker process: a proxy whose health view comes from the primary process. */
export async function runWorker(configFile: string, log: Logger): Promise<number> {
  const index = Number(process.env.PGPROXY_WORKER);
  const config = loadConfigFile(configFile);
  const requests = new Requests();
  const send = (m: FromWorker): void => {
    process.send?.(m);
  };
  let resolveFirst: (s: NodeSnapshot[]) => void = () => {};
  const side: WorkerSide = {
    index,
    firstSnapshot: new Promise((r) => (resolveFirst = r)),
    reportFailure: (nodeId, reason) => send({ type: 'nodeFailure', nodeId, reason }),
    forwardCancel: (pid, secret) => send({ type: 'cancel', pid, secret }),
    detach: (nodeId) => send({ type: 'detach', nodeId }),
    attach: (nodeId) => send({ type: 'attach', nodeId }),
    shutdown: () => send({ type: 'shutdown' }),
    reload: () => requests.open<string>((id) => send({ type: 'request', id, what: 'reload' })),
    collect: (cmd) => requests.open<AdminTable[]>((id) => send({ type: 'request', id, what: 'collect', cmd })),
  };
  let proxy: RunningProxy | null = null;
  let metrics: ReturnType<typeof createMetricsRegistry> | null = null;
  const reply = (id: number, work: () => unknown): void => {
    Promise.resolve()
      .then(work)
      .then(
        (value) => send({ type: 'reply', id, ok: true, value }),
        (err: Error) => send({ type: 'reply', id, ok: false, error: err.message }),
      );
  };
  process.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'topology':
        if (proxy) applySnapshot(proxy.context.topology, m.nodes);
        else resolveFirst(m.nodes);
        break;
      case 'cancel':
        proxy?.context.registry.cancelLocal(m.pid, m.secret);
        break;
      case 'shutdown':
        void proxy?.shutdown(m.timeoutMs).then(() => process.exit(0));
        break;
      case 'reply':
        requests.settle(m.id, m.ok, m.value, m.error);
        break;
      case 'request':
        if (m.what === 'reload') reply(m.id, () => proxy!.reload());
        else if (m.what === 'metrics') reply(m.id, () => (metrics ??= createMetricsRegistry(proxy!.context)).getMetricsAsJSON());
        else if (m.what === 'collect') {
          const cmd = m.cmd;
          reply(m.id, () => localAdminTable(cmd, proxy!.context));
        }
        break;
    }
  });
  // Signals go to the primary process, which stops the workers in order.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('SIGHUP', () => {});
  proxy = await startProxy(config, log.child({ worker: index }), { configFile, worker: side });
  await proxy.stopped;
  return 0;
}

// ------------------------------------------------------------------------------------------ primary side

/** Runs in the primary process: forks the workers, checks the nodes, and coordinates. */
export async function runPrimary(configFile: string, config: Config, workers: number, log: Logger): Promise<number> {
  let current = config;
  const topology = new Topology(config.backends.map((b) => ({ ...b })));
  const health = new HealthChecker(topology, healthSettingsOf(config), log.child({ component: 'health' }));
  // The health checker's connections are this process's: SHOW SERVERS adds them to the workers' rows.
  const own = new OwnConnections();
  own.watch('health', () => health.connections.values());
  const withOwnRows = (cmd: string, tables: AdminTable[]): AdminTable[] =>
    cmd === 'SHOW SERVERS' ? [...tables, { columns: SERVERS_COLUMNS, rows: ownServerRows(topology.nodes, own.list()) }] : tables;
  const requests = new Requests();
  const live = new Map<number, Worker>();
  let stopping = false;

  const broadcast = (m: ToWorker): void => {
    for (const w of live.values()) if (w.isConnected()) w.send(m);
  };
  const share = (): void => broadcast({ type: 'topology', nodes: snapshotOf(topology) });
  health.onRound = share;
  topology.on('change', (c: { node: string; from: string; to: string; first: boolean }) => {
    if (c.first) log.info({ node: c.node, to: c.to }, 'node discovered');
    else log.warn({ node: c.node, from: c.from, to: c.to }, 'node state changed');
    share();
  });
  await health.start();

  const askAll = <T>(what: 'reload' | 'metrics' | 'collect', cmd = ''): Promise<T[]> =>
    Promise.all(
      [...live.values()].map((w) =>
        requests.open<T>((id) => w.send(what === 'collect' ? ({ type: 'request', id, what, cmd } satisfies ToWorker) : ({ type: 'request', id, what } satisfies ToWorker))),
      ),
    );

  const reloadAll = async (): Promise<string> => {
    let next: Config;
    try {
      next = loadConfigFile(configFile);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload refused: the configuration is invalid; keeping the current one');
      throw err;
    }
    current = next;
    topology.syncBackends(next.backends);
    health.updateSettings(healthSettingsOf(next));
    const answers = await askAll<string>('reload');
    void health.round();
    return answers[0] ?? 'reloaded';
  };

  const shutdownAll = (timeoutMs: number): void => {
    if (stopping) return;
    stopping = true;
    log.warn({ timeoutMs }, 'shutting down the workers');
    broadcast({ type: 'shutdown', timeoutMs });
  };

  const fork = (index: number): void => {
    const w = cluster.fork({ PGPROXY_WORKER: String(index) });
    live.set(index, w);
    w.on('online', () => w.send({ type: 'topology', nodes: snapshotOf(topology) } satisfies ToWorker));
    w.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'nodeFailure':
          if (current.health_check.fail_on_backend_error) health.confirm(m.nodeId, m.reason);
          break;
        case 'cancel': {
          const owner = live.get(workerOfPid(m.pid));
          if (owner?.isConnected()) owner.send({ type: 'cancel', pid: m.pid, secret: m.secret } satisfies ToWorker);
          break;
        }
        case 'detach':
          topology.detach(m.nodeId);
          share();
          break;
        case 'attach':
          topology.attach(m.nodeId);
          void health.round();
          break;
        case 'shutdown':
          shutdownAll(current.shutdown.timeout_ms);
          break;
        case 'reply':
          requests.settle(m.id, m.ok, m.value, m.error);
          break;
        case 'request': {
          const answer = m.what === 'reload' ? reloadAll() : askAll<AdminTable | null>('collect', m.cmd).then((ts) => withOwnRows(m.cmd, ts.filter((t): t is AdminTable => t !== null)));
          answer.then(
            (value) => w.send({ type: 'reply', id: m.id, ok: true, value } satisfies ToWorker),
            (err: Error) => w.send({ type: 'reply', id: m.id, ok: false, error: err.message } satisfies ToWorker),
          );
          break;
        }
      }
    });
    w.on('exit', (code, signal) => {
      live.delete(index);
      if (stopping) return;
      log.error({ worker: index, code, signal }, 'worker exited; starting a new one');
      fork(index);
    });
  };
  for (let i = 1; i <= workers; i++) fork(i);

  let metricsServer: http.Server | null = null;
  if (config.metrics.port > 0) {
    metricsServer = http.createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (url === '/metrics') {
        askAll<object[]>('metrics')
          .then((all) => AggregatorRegistry.aggregate(all as never).metrics())
          .then(
            (text) => res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
            (err: Error) => res.writeHead(500).end(err.message),
          );
      } else if (url === '/health') res.writeHead(200).end('ok');
      else if (url === '/ready') res.writeHead(topology.primary() && !stopping ? 200 : 503).end(topology.primary() ? 'ready' : 'no primary available');
      else res.writeHead(404).end();
    });
    metricsServer.listen(config.metrics.port, config.metrics.host);
  }

  process.on('SIGHUP', () => void reloadAll().catch(() => {}));
  process.once('SIGTERM', () => shutdownAll(current.shutdown.timeout_ms));
  process.once('SIGINT', () => shutdownAll(Math.min(2_000, current.shutdown.timeout_ms)));

  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (stopping && live.size === 0) {
        clearInterval(check);
        resolve();
      }
    }, 100);
  });
  metricsServer?.close();
  await health.stop();
  log.warn('stopped');
  return 0;
}

export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}
