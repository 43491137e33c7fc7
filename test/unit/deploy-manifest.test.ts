// deploy/kubernetes.yaml: the ConfigMap's pgproxy.yaml passes pgproxy's own validation, and the Deployment's ports and
// probes and the Service's ports agree with it. The probe paths are asked of pgproxy's real admin HTTP server.
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type MetricsServer, startMetricsServer } from '../../src/admin/http.js';
import { type Config, parseConfigText } from '../../src/config/load.js';
import type { ProxyContext } from '../../src/context.js';
import { staticSecretProblems } from '../../src/pool/login-check.js';

const FILE = new URL('../../deploy/kubernetes.yaml', import.meta.url);

interface Port {
  name?: string;
  containerPort?: number;
  port?: number;
  targetPort?: number | string;
}
interface Probe {
  httpGet?: { path: string; port: number | string };
}
interface Container {
  name: string;
  args?: string[];
  ports?: Port[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    selector?: { matchLabels?: Record<string, string> } & Record<string, unknown>;
    ports?: Port[];
    template?: {
      metadata: { labels: Record<string, string> };
      spec: { terminationGracePeriodSeconds?: number; containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] };
    };
  };
}

const docs = parseAllDocuments(readFileSync(FILE, 'utf8'));
const objects = docs.map((d) => {
  expect(d.errors).toEqual([]);
  return d.toJS() as K8sObject;
});
const one = (kind: string): K8sObject => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};
const configMap = one('ConfigMap');
const deployment = one('Deployment');
const service = one('Service');
const pod = deployment.spec!.template!;
const container = pod.spec.containers.find((c) => c.name === 'pgproxy')!;

/** The file named by `--config`, found through the container's volume mounts in the ConfigMap. */
function mountedConfig(): { key: string; text: string } {
  const args = container.args ?? [];
  expect(args[0]).toBe('start');
  const file = args[args.indexOf('--config') + 1]!;
  const mount = container.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`))!;
  expect(mount, `a volume mounted above ${file}`).toBeDefined();
  const volume = pod.spec.volumes!.find((v) => v.name === mount.name)!;
  expect(volume.configMap?.name).toBe(configMap.metadata.name);
  const key = file.slice(mount.mountPath.length + 1);
  return { key, text: configMap.data![key]! };
}

/** The config as pgproxy reads it, with every ${VAR} it uses given by the container's env. */
function loadConfig(): Config {
  const { key, text } = mountedConfig();
  expect(text, `ConfigMap key ${key}`).toBeTypeOf('string');
  const used = [...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(:-[^}]*)?\}/g)].filter((m) => m[2] === undefined).map((m) => m[1]!);
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, `value-of-${e.name}`]));
  for (const name of used) expect(Object.keys(env), `env var ${name} used by the config`).toContain(name);
  return parseConfigText(text, `${FILE.pathname} (ConfigMap ${key})`, env);
}

const config = loadConfig();

/** A container port by name or number. */
function containerPort(ref: number | string | undefined): number | undefined {
  return typeof ref === 'number' ? container.ports?.find((p) => p.containerPort === ref)?.containerPort : container.ports?.find((p) => p.name === ref)?.containerPort;
}

describe('deploy/kubernetes.yaml', () => {
  it('holds a ConfigMap, a Deployment and a Service', () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}`).sort()).toEqual(['apps/v1 Deployment', 'v1 ConfigMap', 'v1 Service']);
  });

  it("the ConfigMap's pgproxy.yaml is valid for pgproxy and fit for several instances behind a Service", () => {
    // What `pgproxy check` adds to the schema: secrets that can log in where they are used.
    expect(staticSecretProblems(config)).toEqual([]);
    expect(config.listen.host).toBe('0.0.0.0');
    expect(config.metrics.host).toBe('0.0.0.0');
    expect(config.metrics.port).toBeGreaterThan(0);
    // Several instances must not promote on their own.
    expect(config.failover.auto_promote).toBe(false);
    expect(config.backends.filter((b) => b.weight > 0).length).toBeGreaterThan(0);
    // Transactions in flight get shutdown.timeout_ms after SIGTERM: the pod must not be killed before.
    expect((pod.spec.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(config.shutdown.timeout_ms);
  });

  it("container ports are the config's listen port and admin HTTP port", () => {
    expect(containerPort('postgres')).toBe(config.listen.port);
    expect(containerPort('admin-http')).toBe(config.metrics.port);
    expect(container.ports!.map((p) => p.containerPort).sort()).toEqual([config.listen.port, config.metrics.port].sort());
  });

  it('the probes ask the admin HTTP port: readiness /ready, liveness /health', () => {
    const ready = container.readinessProbe!.httpGet!;
    const live = container.livenessProbe!.httpGet!;
    expect(containerPort(ready.port)).toBe(config.metrics.port);
    expect(containerPort(live.port)).toBe(config.metrics.port);
    expect(ready.path).toBe('/ready');
    expect(live.path).toBe('/health');
  });

  it("the Service selects the Deployment's pods and forwards to the listen and admin ports", () => {
    expect(deployment.spec!.selector!.matchLabels).toEqual(service.spec!.selector);
    for (const [k, v] of Object.entries(service.spec!.selector as Record<string, string>)) expect(pod.metadata.labels[k]).toBe(v);
    const targets = service.spec!.ports!.map((p) => containerPort(p.targetPort ?? p.port));
    expect(targets.sort()).toEqual([config.listen.port, config.metrics.port].sort());
  });

  describe("the probe paths, asked of pgproxy's admin HTTP server", () => {
    let server: MetricsServer;
    let primary: object | null = {};
    beforeAll(async () => {
      // The admin server reads the topology when asked for /ready; metrics are only read when scraped.
      const ctx = { topology: { primary: () => primary, primaryCount: () => (primary ? 1 : 0) }, log: pino({ level: 'silent' }) } as unknown as ProxyContext;
      server = await startMetricsServer(ctx, '127.0.0.1', 0);
    });
    afterAll(() => server?.close());

    const get = async (path: string): Promise<number> => (await fetch(`http://127.0.0.1:${server.port}${path}`)).status;

    it('readiness: 200 with a primary, 503 without; liveness: 200 either way', async () => {
      const ready = container.readinessProbe!.httpGet!.path;
      const live = container.livenessProbe!.httpGet!.path;
      primary = {};
      expect([await get(ready), await get(live)]).toEqual([200, 200]);
      primary = null;
      expect([await get(ready), await get(live)]).toEqual([503, 200]);
      expect(await get('/no-such-path')).toBe(404);
    });
  });
});
