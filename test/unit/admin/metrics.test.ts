// The Prometheus text pgproxy's plain-count histograms become at scrape time: cumulative buckets with `le` in
// seconds, `_sum` in seconds, `_count`; and the whole registry built from a proxy context.
import type { Logger } from 'pino';
import { Registry, type Metric } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Histogram, LATENCY_BUCKETS_MS } from '../../../src/lib/histogram.js';
import { createMetricsRegistry, histogramMetric, LATENCY_BUCKETS_LE } from '../../../src/admin/metrics.js';
import type { ClientInfo, ProxyContext, SessionView } from '../../../src/context.js';
import { Topology } from '../../../src/nodes/topology.js';
import { REASON_LABELS } from '../../../src/router/reasons.js';

interface Line {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format 0.0.4 sample lines strictly; throws on a line it cannot read. */
function parseProm(text: string): { samples: Line[]; help: Map<string, string>; type: Map<string, string> } {
  const samples: Line[] = [];
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(raw);
    if (m) {
      help.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(raw);
    if (m) {
      type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(raw);
    if (!m) throw new Error(`unparsable line: ${raw}`);
    const labels: Record<string, string> = {};
    if (m[2] !== undefined && m[2] !== '') {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let pos = 0;
      while (pos < m[2].length) {
        re.lastIndex = pos;
        const l = re.exec(m[2]);
        if (!l) throw new Error(`unparsable labels: ${raw}`);
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        pos = re.lastIndex;
      }
    }
    const v = m[3]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : /^nan$/i.test(v) ? NaN : Number(v);
    if (Number.isNaN(value) && !/^nan$/i.test(v)) throw new Error(`bad value: ${raw}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, help, type };
}

async function textOf(metric: ReturnType<typeof histogramMetric>): Promise<string> {
  const r = new Registry();
  r.registerMetric(metric as unknown as Metric);
  return r.metrics();
}

describe('Histogram as Prometheus text', () => {
  it('bucket bounds are the millisecond buckets in seconds, then +Inf', () => {
    expect(LATENCY_BUCKETS_LE).toEqual(['0.0005', '0.001', '0.002', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
    expect(LATENCY_BUCKETS_LE.length).toBe(LATENCY_BUCKETS_MS.length + 1);
  });

  it('known observations give cumulative buckets, sum in seconds and the count', async () => {
    const h = new Histogram();
    for (const ms of [0.3, 0.5, 0.7, 3, 3, 120, 20_000]) h.observe(ms);
    const text = await textOf(histogramMetric('pgproxy_test_seconds', 'A test histogram.', () => [{ labels: { node: 'node1' }, histogram: h }]));
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('# HELP pgproxy_test_seconds A test histogram.');
    expect(lines[1]).toBe('# TYPE pgproxy_test_seconds histogram');
    expect(lines.slice(2, 17)).toEqual([
      'pgproxy_test_seconds_bucket{node="node1",le="0.0005"} 2',
      'pgproxy_test_seconds_bucket{node="node1",le="0.001"} 3',
      'pgproxy_test_seconds_bucket{node="node1",le="0.002"} 3',
      'pgproxy_test_seconds_bucket{node="node1",le="0.005"} 5',
      'pgproxy_test_seconds_bucket{node="node1",le="0.01"} 5',
      'pgproxy_test_seconds_bucket{node="node1",le="0.025"} 5',
      'pgproxy_test_seconds_bucket{node="node1",le="0.05"} 5',
      'pgproxy_test_seconds_bucket{node="node1",le="0.1"} 5',
      'pgproxy_test_seconds_bucket{node="node1",le="0.25"} 6',
      'pgproxy_test_seconds_bucket{node="node1",le="0.5"} 6',
      'pgproxy_test_seconds_bucket{node="node1",le="1"} 6',
      'pgproxy_test_seconds_bucket{node="node1",le="2.5"} 6',
      'pgproxy_test_seconds_bucket{node="node1",le="5"} 6',
      'pgproxy_test_seconds_bucket{node="node1",le="10"} 6',
      'pgproxy_test_seconds_bucket{node="node1",le="+Inf"} 7',
    ]);
    expect(lines.length).toBe(19);
    const { samples } = parseProm(text);
    const sum = samples.find((s) => s.name === 'pgproxy_test_seconds_sum')!;
    const count = samples.find((s) => s.name === 'pgproxy_test_seconds_count')!;
    expect(sum.labels).toEqual({ node: 'node1' });
    expect(sum.value).toBeCloseTo((0.3 + 0.5 + 0.7 + 3 + 3 + 120 + 20_000) / 1000, 9);
    expect(count).toEqual({ name: 'pgproxy_test_seconds_count', labels: { node: 'node1' }, value: 7 });
    // +Inf equals the count; buckets never decrease.
    const buckets = samples.filter((s) => s.name === 'pgproxy_test_seconds_bucket').map((s) => s.value);
    expect(buckets.at(-1)).toBe(count.value);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!).toBeGreaterThanOrEqual(buckets[i - 1]!);
  });

  it('an empty histogram is all zeros; several series keep their own labels', async () => {
    const a = new Histogram();
    const b = new Histogram();
    b.observe(10); // exactly on a bound: counts in that bucket (le is inclusive)
    const text = await textOf(
      histogramMetric('pgproxy_t_seconds', 'h', () => [
        { labels: { node: 'a' }, histogram: a },
        { labels: { node: 'b' }, histogram: b },
      ]),
    );
    const { samples } = parseProm(text);
    const of = (node: string, name: string, le?: string): number =>
      samples.find((s) => s.name === name && s.labels.node === node && (le === undefined || s.labels.le === le))!.value;
    for (const le of LATENCY_BUCKETS_LE) expect(of('a', 'pgproxy_t_seconds_bucket', le)).toBe(0);
    expect(of('a', 'pgproxy_t_seconds_sum')).toBe(0);
    expect(of('a', 'pgproxy_t_seconds_count')).toBe(0);
    expect(of('b', 'pgproxy_t_seconds_bucket', '0.005')).toBe(0);
    expect(of('b', 'pgproxy_t_seconds_bucket', '0.01')).toBe(1);
    expect(of('b', 'pgproxy_t_seconds_bucket', '+Inf')).toBe(1);
    expect(of('b', 'pgproxy_t_seconds_sum')).toBeCloseTo(0.01, 12);
    expect(samples.filter((s) => s.name === 'pgproxy_t_seconds_bucket').length).toBe(2 * LATENCY_BUCKETS_LE.length);
  });

  it('values are read at scrape time, not copied at registration', async () => {
    const h = new Histogram();
    const metric = histogramMetric('pgproxy_live_seconds', 'h', () => [{ labels: {}, histogram: h }]);
    const r = new Registry();
    r.registerMetric(metric as unknown as Metric);
    expect(parseProm(await r.metrics()).samples.find((s) => s.name === 'pgproxy_live_seconds_count')!.value).toBe(0);
    h.observe(1);
    h.observe(2);
    const after = parseProm(await r.metrics()).samples;
    expect(after.find((s) => s.name === 'pgproxy_live_seconds_count')!.value).toBe(2);
    expect(after.find((s) => s.name === 'pgproxy_live_seconds_bucket' && s.labels.le === '0.001')!.value).toBe(1);
  });
});

describe('createMetricsRegistry', () => {
  function fakeContext(): { ctx: ProxyContext; topology: Topology } {
    const topology = new Topology([
      { name: 'node0', host: '127.0.0.1', port: 1, weight: 0 },
      { name: 'node1', host: '127.0.0.1', port: 2, weight: 1 },
    ]);
    topology.setNodeState(0, true, 'primary', null);
    topology.setNodeState(1, true, 'standby', null);
    const n1 = topology.nodes[1]!;
    n1.queries = 5;
    n1.selectCount = 4;
    n1.bytesToNode = 100;
    n1.bytesFromNode = 2000;
    n1.lagBytes = 16;
    n1.lagMs = 1500;
    n1.checkDurationMs = 3;
    n1.latency.observe(0.7);
    n1.latency.observe(30);
    topology.nodes[0]!.writes = 2;
    const session = (state: string): SessionView => ({
      describe: () => ({ state }) as ClientInfo,
      terminate: () => undefined,
      idle: true,
    });
    const poolWait = new Histogram();
    poolWait.observe(0.2);
    const ctx = {
      sessions: new Set([session('idle'), session('idle'), session('active')]),
      topology,
      pools: {
        all: () => [
          { node: topology.nodes[1]!, activeCount: 1, idleCount: 2, waitingCount: 0, maxWaitMs: 0 },
          { node: topology.nodes[1]!, activeCount: 1, idleCount: 0, waitingCount: 3, maxWaitMs: 250 },
        ],
      },
      stats: {
        notUnderstood: 7,
        parsed: 0,
        replayWaits: { standby: 0, primary: 0 },
        replayWait: new Histogram(),
        routed: Float64Array.from(REASON_LABELS, (l) => (l === 'read' ? 4 : l === 'write' ? 2 : l === 'locking_read' ? 1 : 0)),
        errorsByClass: new Map([['42', 3]]),
        poolWait,
        clientsAccepted: 9,
      },
      controls: { paused: false },
      log: { error: () => undefined } as unknown as Logger,
    } as unknown as ProxyContext;
    return { ctx, topology };
  }

  it('every line parses, every metric has HELP and TYPE, and the values come from the context', async () => {
    const { ctx, topology } = fakeContext();
    const registry = createMetricsRegistry(ctx);
    const text = await registry.metrics();
    const { samples, help, type } = parseProm(text);
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

    for (const s of samples) {
      expect(s.name.startsWith('pgproxy_'), s.name).toBe(true);
      const family = type.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
      expect(type.has(family), `TYPE for ${s.name}`).toBe(true);
      expect(help.get(family), `HELP for ${s.name}`).toBeTruthy();
    }
    for (const [name, t] of type) if (t === 'counter') expect(name.endsWith('_total'), name).toBe(true);

    expect(value('pgproxy_client_connections')).toBe(3);
    expect(value('pgproxy_client_connections_by_state', { state: 'idle' })).toBe(2);
    expect(value('pgproxy_client_connections_by_state', { state: 'active' })).toBe(1);
    expect(value('pgproxy_client_connections_by_state', { state: 'idle in transaction' })).toBe(0);
    expect(value('pgproxy_clients_accepted_total')).toBe(9);
    expect(value('pgproxy_backend_connections', { node: 'node1', state: 'active' })).toBe(2);
    expect(value('pgproxy_backend_connections', { node: 'node1', state: 'idle' })).toBe(2);
    expect(value('pgproxy_backend_connections', { node: 'node0', state: 'active' })).toBe(0);
    expect(value('pgproxy_pool_waiting_clients', { node: 'node1' })).toBe(3);
    expect(value('pgproxy_pool_max_wait_seconds', { node: 'node1' })).toBe(0.25);
    expect(value('pgproxy_queries_total', { node: 'node1' })).toBe(5);
    expect(value('pgproxy_reads_total', { node: 'node1' })).toBe(4);
    expect(value('pgproxy_writes_total', { node: 'node0' })).toBe(2);
    expect(value('pgproxy_node_sent_bytes_total', { node: 'node1' })).toBe(100);
    expect(value('pgproxy_node_received_bytes_total', { node: 'node1' })).toBe(2000);
    expect(value('pgproxy_routed_total', { reason: 'locking_read' })).toBe(1);
    expect(value('pgproxy_routed_total', { reason: 'read' })).toBe(4);
    expect(value('pgproxy_client_errors_total', { class: '42' })).toBe(3);
    expect(value('pgproxy_statements_not_understood_total')).toBe(7);
    expect(value('pgproxy_query_duration_seconds_bucket', { node: 'node1', le: '0.001' })).toBe(1);
    expect(value('pgproxy_query_duration_seconds_bucket', { node: 'node1', le: '0.05' })).toBe(2);
    expect(value('pgproxy_query_duration_seconds_count', { node: 'node1' })).toBe(2);
    expect(value('pgproxy_query_duration_seconds_sum', { node: 'node1' })).toBeCloseTo(0.0307, 9);
    expect(value('pgproxy_query_duration_seconds_count', { node: 'node0' })).toBe(0);
    expect(value('pgproxy_pool_wait_seconds_bucket', { le: '0.0005' })).toBe(1);
    expect(value('pgproxy_node_up', { node: 'node0' })).toBe(1);
    expect(value('pgproxy_node_primary', { node: 'node0' })).toBe(1);
    expect(value('pgproxy_node_primary', { node: 'node1' })).toBe(0);
    expect(value('pgproxy_node_role', { node: 'node1', role: 'standby' })).toBe(1);
    expect(value('pgproxy_node_role', { node: 'node1', role: 'primary' })).toBe(0);
    expect(value('pgproxy_node_replication_lag_bytes', { node: 'node1' })).toBe(16);
    expect(value('pgproxy_node_replication_lag_seconds', { node: 'node1' })).toBe(1.5);
    expect(value('pgproxy_node_replication_lag_bytes', { node: 'node0' })).toBeUndefined(); // never measured
    expect(value('pgproxy_health_check_duration_seconds', { node: 'node1' })).toBe(0.003);
    expect(value('pgproxy_node_detached', { node: 'node1' })).toBe(0);
    expect(value('pgproxy_node_weight', { node: 'node1' })).toBe(1);
    expect(value('pgproxy_paused')).toBe(0);
    // Node's default process metrics, with our prefix (prom-client counts CPU from the registry's creation,
    // so right after it the counter may still read 0).
    expect(type.get('pgproxy_process_cpu_user_seconds_total')).toBe('counter');
    expect(value('pgproxy_process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(value('pgproxy_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(type.get('pgproxy_nodejs_heap_size_used_bytes')).toBe('gauge');

    // Read at scrape time: later changes show on the next scrape.
    topology.detach(1);
    topology.nodes[1]!.queries = 6;
    const again = parseProm(await registry.metrics()).samples;
    expect(again.find((s) => s.name === 'pgproxy_node_up' && s.labels.node === 'node1')!.value).toBe(0);
    expect(again.find((s) => s.name === 'pgproxy_node_detached' && s.labels.node === 'node1')!.value).toBe(1);
    expect(again.find((s) => s.name === 'pgproxy_queries_total' && s.labels.node === 'node1')!.value).toBe(6);
  });
});
