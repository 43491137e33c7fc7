// pgproxy.yaml text for a cluster, written line by line so that tests know the line of each key.
import type { ClusterInfo } from '../../../src/devcluster/cluster.js';
import { proxyConfigForCluster } from '../../../src/devcluster/proxy-config.js';

export interface YamlOptions {
  weights: [number, number, number];
  /** One more line under routing:, e.g. an unknown key to make a reload fail. */
  extraRoutingLine?: string;
  /** Ends health_check with a YAML syntax error. */
  breakSyntax?: boolean;
  /** Sections after health_check (admin:, shutdown:, ...), as lines. */
  tail?: string[];
  logLevel?: string;
}

export function clusterYaml(cluster: ClusterInfo, opts: YamlOptions): { text: string; lineOf: (needle: string) => number } {
  const base = proxyConfigForCluster(cluster, { listenPort: 0 });
  const lines = [
    '# written by a pgproxy test',
    'listen:',
    '  host: 127.0.0.1',
    '  port: 0',
    'backends:',
    ...base.backends.flatMap((b, i) => [`  - name: ${b.name}`, `    host: ${b.host}`, `    port: ${b.port}`, `    weight: ${opts.weights[i]}`]),
    'auth:',
    '  users:',
    ...base.auth.users.flatMap((u) => [`    - name: ${u.name}`, `      password: ${JSON.stringify(u.password)}`]),
    'routing:',
    '  load_balance: statement',
    ...(opts.extraRoutingLine ? [`  ${opts.extraRoutingLine}`] : []),
    'health_check:',
    `  user: ${base.health_check.user}`,
    `  password: ${JSON.stringify(base.health_check.password)}`,
    '  period_ms: 300',
    '  timeout_ms: 1000',
    '  retry_delay_ms: 200',
    ...(opts.breakSyntax ? ['  database: [postgres'] : []),
    ...(opts.tail ?? []),
    'log:',
    `  level: ${opts.logLevel ?? 'silent'}`,
  ];
  return {
    text: lines.join('\n') + '\n',
    lineOf: (needle) => {
      const i = lines.findIndex((l) => l.includes(needle));
      if (i < 0) throw new Error(`no line with ${needle}`);
      return i + 1;
    },
  };
}
