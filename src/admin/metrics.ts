/**
 * Prometheus metrics, computed at scrape time from the plain counters the proxy already keeps (ProxyStats,
 * NodeState, pools, sessions): nothing here runs on the per-query path. Each metric is a small object that
 * prom-client's Registry formats like its own (name, help, type, get()), so our histograms keep their plain
 * counts and are only converted to Prometheus' cumulative `_bucket{le}` / `_sum` / `_count` series, in seconds,
 * when scraped.
 */
import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';
import type { ProxyContext } from '../context.js';
import { REASON_LABELS } from '../router/reasons.js';
import type { NodeState } from '../nodes/topology.js';
import { LATENCY_BUCKETS_MS, type Histogram } from '../lib/histogram.js';

type Labels = Record<string, string | number>;

/** One line of a metric: its value, its labels, and for histograms the series name (`..._bucket`, `_sum`, `_count`). */
export interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}

export type MetricKind = 'counter' | 'gauge' | 'histogram';

/** A metric whose samples are read when scraped. Registered into a prom-client Registry, which formats it. */
export class ScrapeMetric {
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricKind,
    private readonly read: () => Sample[],
  ) {}

  get(): Promise<{ name: string; help: string; type: MetricKind; aggregator: string; values: Sample[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.read() });
  }

  /** Registry.resetMetrics(): our values belong to the proxy, not to the registry. */
  reset(): void {}
}

/** `le` label values of LATENCY_BUCKETS_MS, in seconds ('0.0005', '0.001', ... '10'), and '+Inf'. */
export const LATENCY_BUCKETS_LE: readonly string[] = [...LATENCY_BUCKETS_MS.map((ms) => String(ms / 1000)), '+Inf'];

/** Prometheus histogram samples (seconds) of a millisecond Histogram: cumulative buckets, then sum and count. */
export function histogramSamples(name: string, h: Histogram, labels: Labels = {}): Sample[] {
  const out: Sample[] = [];
  const cumulative = h.cumulative();
  for (let i = 0; i < cumulative.length; i++) {
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: LATENCY_BUCKETS_LE[i]! }, value: cumulative[i]! });
  }
  out.push({ metricName: `${name}_sum`, labels, value: h.sum / 1000 });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
  return out;
}

/** A histogram metric (seconds) over the millisecond Histograms `read` returns, one series per label set. */
export function histogramMetric(name: string, help: string, read: () => { labels: Labels; histogram: Histogram }[]): ScrapeMetric {
  return new ScrapeMetric(name, help, 'histogram', () => read().flatMap((s) => histogramSamples(name, s.histogram, s.labels)));
}

/** Client session states as SessionView.describe() reports them: always exported, 0 when none. */
const CLIENT_STATES = ['startup', 'auth', 'idle', 'active', 'idle in transaction', 'waiting'] as const;
const ROLES = ['primary', 'standby', 'unknown'] as const;

/**
 * A Registry with pgproxy's metrics (read from `ctx` at each scrape) and Node's default process metrics, all
 * named pgproxy_*. The context is read through `ctx` each time, so reloads (new config, new nodes) show at once.
 */
export function createMetricsRegistry(ctx: ProxyContext): Registry {
  const registry = new Registry();
  const add = (m: ScrapeMetric): void => registry.registerMetric(m as unknown as Metric);
  const nodes = (): readonly NodeState[] => ctx.topology.nodes;
  const perNode = (value: (n: NodeState) => number | null): (() => Sample[]) => () => {
    const out: Sample[] = [];
    for (const n of nodes()) {
      const v = value(n);
      if (v !== null) out.push({ labels: { node: n.name }, value: v });
    }
    return out;
  };
  const byKey = (label: string, map: () => ReadonlyMap<string, number>): (() => Sample[]) => () =>
    [...map()].map(([key, value]) => ({ labels: { [label]: key }, value }));

  // Clients.
  add(new ScrapeMetric('pgproxy_client_connections', 'Client connections open now.', 'gauge', () => [{ labels: {}, value: ctx.sessions.size }]));
  add(
    new ScrapeMetric('pgproxy_client_connections_by_state', 'Client connections open now, by state (startup, auth, idle, active, idle in transaction, waiting).', 'gauge', () => {
      const counts = new Map<string, number>(CLIENT_STATES.map((s) => [s, 0]));
      for (const s of ctx.sessions) {
        const state = s.describe().state;
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      return [...counts].map(([state, value]) => ({ labels: { state }, value }));
    }),
  );
  add(new ScrapeMetric('pgproxy_clients_accepted_total', 'Client connections accepted since start.', 'counter', () => [{ labels: {}, value: ctx.stats.clientsAccepted }]));

  // Backend connections and pools (a pool per node, database and user; summed per node).
  const poolSums = (): Map<string, { active: number; idle: number; waiting: number; maxWaitMs: number }> => {
    const sums = new Map(nodes().map((n) => [n.name, { active: 0, idle: 0, waiting: 0, maxWaitMs: 0 }]));
    for (const p of ctx.pools.all()) {
      let s = sums.get(p.node.name);
      if (s === undefined) sums.set(p.node.name, (s = { active: 0, idle: 0, waiting: 0, maxWaitMs: 0 }));
      s.active += p.activeCount;
      s.idle += p.idleCount;
      s.waiting += p.waitingCount;
      s.maxWaitMs = Math.max(s.maxWaitMs, p.maxWaitMs);
    }
    return sums;
  };
  add(
    new ScrapeMetric('pgproxy_backend_connections', 'Backend connections by node and state: active (leased, opening or resetting) or idle (pooled).', 'gauge', () => {
      const out: Sample[] = [];
      for (const [node, s] of poolSums()) {
        out.push({ labels: { node, state: 'active' }, value: s.active });
        out.push({ labels: { node, state: 'idle' }, value: s.idle });
      }
      return out;
    }),
  );
  add(
    new ScrapeMetric('pgproxy_pool_waiting_clients', 'Sessions waiting for a backend connection from a full pool, by node.', 'gauge', () =>
      [...poolSums()].map(([node, s]) => ({ labels: { node }, value: s.waiting })),
    ),
  );
  add(
    new ScrapeMetric('pgproxy_pool_max_wait_seconds', 'How long the oldest session waiting for a backend connection has waited, by node.', 'gauge', () =>
      [...poolSums()].map(([node, s]) => ({ labels: { node }, value: s.maxWaitMs / 1000 })),
    ),
  );
  add(histogramMetric('pgproxy_pool_wait_seconds', 'Time sessions waited for a backend connection from a pool.', () => [{ labels: {}, histogram: ctx.stats.poolWait }]));

  // Work per node.
  add(new ScrapeMetric('pgproxy_queries_total', 'Units of work (simple Queries, or extended batches up to Sync) completed by node.', 'counter', perNode((n) => n.queries)));
  add(new ScrapeMetric('pgproxy_reads_total', 'Statements classified as reads served by node.', 'counter', perNode((n) => n.selectCount)));
  add(new ScrapeMetric('pgproxy_writes_total', 'Units routed to node because they write or must run on the primary.', 'counter', perNode((n) => n.writes)));
  add(new ScrapeMetric('pgproxy_node_sent_bytes_total', 'Bytes forwarded from clients to node.', 'counter', perNode((n) => n.bytesToNode)));
  add(new ScrapeMetric('pgproxy_node_received_bytes_total', 'Bytes forwarded from node to clients.', 'counter', perNode((n) => n.bytesFromNode)));
  add(
    histogramMetric('pgproxy_query_duration_seconds', 'Duration of units of work by node, from sending to the ReadyForQuery.', () =>
      nodes().map((n) => ({ labels: { node: n.name }, histogram: n.latency })),
    ),
  );

  // Routing and errors.
  add(
    new ScrapeMetric('pgproxy_routed_total', "Units routed, by reason: 'read' (load-balanced reads), 'any' (statements any node can run), else why the unit went where it did ('write', 'ddl', 'in_transaction', 'lag', ...).", 'counter', () =>
      REASON_LABELS.map((reason, i) => ({ labels: { reason }, value: ctx.stats.routed[i] ?? 0 })),
    ),
  );
  add(new ScrapeMetric('pgproxy_client_errors_total', 'ErrorResponses sent to clients, by SQLSTATE class (first two characters).', 'counter', byKey('class', () => ctx.stats.errorsByClass)));
  add(new ScrapeMetric('pgproxy_statements_not_understood_total', 'Statements neither the classifier nor PostgreSQL\'s parser could read (sent to the primary).', 'counter', () => [{ labels: {}, value: ctx.stats.notUnderstood }]));
  add(new ScrapeMetric('pgproxy_statements_parsed_total', 'Statements the classifier could not read, routed on the tree of PostgreSQL\'s own parser.', 'counter', () => [{ labels: {}, value: ctx.stats.parsed }]));
  add(new ScrapeMetric('pgproxy_replay_waits_total', 'Reads that waited for a standby to replay what they must see, by where they ran then.', 'counter', () => [
    { labels: { node: 'standby' }, value: ctx.stats.replayWaits.standby },
    { labels: { node: 'primary' }, value: ctx.stats.replayWaits.primary },
  ]));
  add(histogramMetric('pgproxy_replay_wait_seconds', 'How long reads waited for a standby to catch up.', () => [{ labels: {}, histogram: ctx.stats.replayWait }]));

  // Nodes, as the health checker sees them.
  add(new ScrapeMetric('pgproxy_node_up', 'Whether the node is up and in service (1) or down or detached (0).', 'gauge', perNode((n) => (n.up ? 1 : 0))));
  add(new ScrapeMetric('pgproxy_node_primary', 'Whether the node is up as the primary (1) or not (0).', 'gauge', perNode((n) => (n.up && n.role === 'primary' ? 1 : 0))));
  add(
    new ScrapeMetric('pgproxy_node_role', 'The role last reported by the node: 1 for its current role (primary, standby, unknown), 0 for the others.', 'gauge', () =>
      nodes().flatMap((n) => ROLES.map((role) => ({ labels: { node: n.name, role }, value: n.role === role ? 1 : 0 }))),
    ),
  );
  add(new ScrapeMetric('pgproxy_node_detached', 'Whether an operator detached the node (DETACH NODE) or a reload removed it (1), else 0.', 'gauge', perNode((n) => (n.detached ? 1 : 0))));
  add(new ScrapeMetric('pgproxy_node_weight', 'Load-balancing weight of the node, as configured.', 'gauge', perNode((n) => n.weight)));
  add(new ScrapeMetric('pgproxy_node_replication_lag_bytes', "Bytes the standby's replay is behind the primary's WAL position (absent until measured).", 'gauge', perNode((n) => n.lagBytes)));
  add(new ScrapeMetric('pgproxy_node_replication_lag_seconds', 'Replay lag of the standby in time: 0 once caught up, else the age of its last replayed transaction (absent until measured).', 'gauge', perNode((n) => (n.lagMs === null ? null : n.lagMs / 1000))));
  add(new ScrapeMetric('pgproxy_health_check_duration_seconds', 'Duration of the last health check of the node (absent until checked).', 'gauge', perNode((n) => (n.checkDurationMs === null ? null : n.checkDurationMs / 1000))));
  add(new ScrapeMetric('pgproxy_node_errors_total', 'Failed health checks and connection errors seen on the node.', 'counter', perNode((n) => n.errorCount)));
  add(new ScrapeMetric('pgproxy_paused', 'Whether the proxy is paused by PAUSE (1) or not (0).', 'gauge', () => [{ labels: {}, value: ctx.controls.paused ? 1 : 0 }]));

  collectDefaultMetrics({ register: registry, prefix: 'pgproxy_' });
  return registry;
}
