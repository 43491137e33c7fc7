/**
 * --compare: the suites against PostgreSQL directly and through pgproxy, on a scratch cluster started here and
 * removed at the end (also on error and Ctrl-C).
 *
 * - A local primary + 2 streaming standbys (src/devcluster), TLS on (a self-signed certificate), the SCRAM test
 *   roles and the database `ci_db_test`, as node-postgres' CI prepares its server.
 * - pgproxy as users run it: its own process from dist/, the sample pgproxy.yaml with only what must change
 *   edited in (the backends' ports with weights 0/1/1 as in the sample, a free listen port, TLS for clients with
 *   that certificate, the test roles as auth.users, SCRAM offered to the SCRAM roles by an hba rule, md5 to the
 *   others as the sample's auth.method says).
 * - Where the SELECTs ran, from each node's pg_stat_statements (the tests' own statements: pgproxy's health
 *   checks, catalog reads and WAL-position queries left out) and from SHOW POOL_NODES.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parseDocument } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import { LocalCluster } from '../../src/devcluster/cluster.js';
import { findFreePorts } from '../../src/devcluster/ports.js';
import { chownToServer } from '../../src/devcluster/runas.js';
import { type Endpoint, type NodeSelects, poolNodeSelects, selectShareLine, shareLine } from './endpoint.js';
import type { Options } from './options.js';
import { differences, report } from './report.js';
import { runSuites } from './run.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SAMPLE_CONFIG = path.join(ROOT, 'pgproxy.yaml');

const DATABASE = 'ci_db_test';
const SCRAM = { user: 'scram_test', password: 'test4scram' };
/** U+2168 ROMAN NUMERAL IX: SASLprep (NFKC) turns it into "IX", so the raw and prepared forms differ. */
const SCRAM_UNICODE = { user: 'scram_unicode_test', password: 'IX-\u2168' };

export async function runCompare(opts: Options): Promise<number> {
  const dir = path.join(opts.out, 'compare');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(opts.out, 0o755); // the postgres OS user must reach the cluster directory below it
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: unknown) => process.stderr.write(`cleanup: ${(err as Error).message}\n`));
  };
  const onSignal = (): void => {
    process.stderr.write('interrupted: stopping pgproxy and the cluster\n');
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.stderr.write(`starting a primary + 2 standbys in ${dir}/cluster\n`);
    const cluster = await LocalCluster.up({ dir: path.join(dir, 'cluster'), standbys: 2, basePort: 0 });
    cleanups.push(() => cluster.down({ purge: true }));
    const cert = makeCert(path.join(dir, 'tls'));
    await prepareCluster(cluster, cert);

    const su = cluster.info.users.superuser;
    const scram = { scramUser: SCRAM.user, scramPassword: SCRAM.password, scramUnicodeUser: SCRAM_UNICODE.user, scramUnicodePassword: SCRAM_UNICODE.password };
    const primary = cluster.info.nodes[0]!;
    const direct: Endpoint = { host: primary.host, port: primary.port, user: su.name, password: su.password, database: DATABASE, ...scram };
    const directRuns = await runSuites(opts, direct, true, 'direct');

    const proxy = await startPgproxy(cluster, cert, dir);
    cleanups.push(() => proxy.stop());
    const through: Endpoint = { ...direct, host: '127.0.0.1', port: proxy.port };
    await resetStatements(cluster);
    const before = await poolNodeSelects(through);
    const proxyRuns = await runSuites(opts, through, true, 'pgproxy');
    const after = await poolNodeSelects(through);
    const statements = await selectsPerNode(cluster);

    const out: string[] = [
      report(`PostgreSQL directly (primary ${primary.host}:${primary.port}, TLS on)`, directRuns),
      '',
      report(`pgproxy ${through.host}:${through.port} (sample pgproxy.yaml settings, weights 0/1/1, TLS on, SCRAM for the SCRAM roles; log ${proxy.logFile})`, proxyRuns),
      '',
      shareLine('SELECTs of the pgproxy run per node (pg_stat_statements)', statements),
    ];
    if (before && after) out.push(selectShareLine('SHOW POOL_NODES select_cnt during the pgproxy run', before, after));
    const diff = differences(directRuns, proxyRuns);
    out.push('', `differences, direct -> pgproxy (${diff.filter((d) => d.counted).length}, and ${diff.filter((d) => !d.counted).length} not counted):`, ...(diff.length > 0 ? diff.map((d) => `  ${d.line}`) : ['  none']));
    process.stdout.write(out.join('\n') + '\n');
    if (opts.json) writeFileSync(opts.json, JSON.stringify({ direct: directRuns, pgproxy: proxyRuns, selects: statements }, null, 2));
    return diff.some((d) => d.counted) ? 1 : 0;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

interface Cert {
  certFile: string;
  keyFile: string;
}

/** A self-signed certificate for 127.0.0.1 (its own CA), made with the openssl command line. */
function makeCert(dir: string): Cert {
  mkdirSync(dir, { recursive: true });
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { certFile, keyFile };
}

/** TLS on every node; the SCRAM roles, the database and pg_stat_statements in it on the primary, replayed everywhere. */
async function prepareCluster(cluster: LocalCluster, cert: Cert): Promise<void> {
  for (const [i, node] of cluster.info.nodes.entries()) {
    const crt = path.join(node.dataDir, 'server.crt');
    const key = path.join(node.dataDir, 'server.key');
    copyFileSync(cert.certFile, crt);
    copyFileSync(cert.keyFile, key);
    chmodSync(key, 0o600);
    await chownToServer(crt);
    await chownToServer(key);
    await cluster.query(i, 'ALTER SYSTEM SET ssl = on', [], undefined, 'postgres');
    await cluster.query(i, 'SELECT pg_reload_conf()', [], undefined, 'postgres');
  }
  for (const i of cluster.info.nodes.keys()) {
    const deadline = Date.now() + 10_000;
    while ((await cluster.query<{ ssl: string }>(i, 'SHOW ssl', [], undefined, 'postgres'))[0]?.ssl !== 'on') {
      if (Date.now() > deadline) throw new Error(`${cluster.info.nodes[i]!.name}: ssl is not on 10 s after the reload`);
      await sleep(50);
    }
  }
  const quote = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  for (const role of [SCRAM, SCRAM_UNICODE]) {
    // One simple Query: the SET applies to the connection that creates the role.
    await cluster.query(0, `SET password_encryption = 'scram-sha-256'; CREATE ROLE ${role.user} LOGIN PASSWORD ${quote(role.password)}`, [], undefined, 'postgres');
  }
  await cluster.query(0, `CREATE DATABASE ${DATABASE}`, [], undefined, 'postgres');
  await cluster.query(0, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements', [], undefined, DATABASE);
  await cluster.waitForReplay();
}

interface RunningPgproxy {
  port: number;
  logFile: string;
  stop(): Promise<void>;
}

/** pgproxy with the sample configuration, edited only where this cluster needs it. */
async function startPgproxy(cluster: LocalCluster, cert: Cert, dir: string): Promise<RunningPgproxy> {
  const [port] = await findFreePorts(1);
  if (port === undefined) throw new Error('no free port for pgproxy');
  const doc = parseDocument(readFileSync(SAMPLE_CONFIG, 'utf8'));
  const sampleBackends = (doc.toJS() as { backends: { weight?: number }[] }).backends;
  if (sampleBackends.length !== cluster.info.nodes.length) throw new Error(`the sample pgproxy.yaml lists ${sampleBackends.length} backends, the cluster has ${cluster.info.nodes.length} nodes`);
  cluster.info.nodes.forEach((n, i) => {
    doc.setIn(['backends', i, 'host'], n.host);
    doc.setIn(['backends', i, 'port'], n.port);
  });
  doc.setIn(['listen', 'port'], port);
  doc.setIn(['tls', 'mode'], 'allow');
  doc.setIn(['tls', 'cert_file'], cert.certFile);
  doc.setIn(['tls', 'key_file'], cert.keyFile);
  const su = cluster.info.users.superuser;
  doc.setIn(['auth', 'users'], doc.createNode([{ name: su.name, password: su.password }, { name: SCRAM.user, password: SCRAM.password }, { name: SCRAM_UNICODE.user, password: SCRAM_UNICODE.password }]));
  doc.setIn(['auth', 'hba'], doc.createNode([{ user: [SCRAM.user, SCRAM_UNICODE.user], method: 'scram-sha-256' }, { method: doc.getIn(['auth', 'method']) ?? 'md5' }]));
  const configFile = path.join(dir, 'pgproxy.yaml');
  const logFile = path.join(dir, 'pgproxy.log');
  writeFileSync(configFile, `# The sample pgproxy.yaml with the ports, TLS and users of the node-postgres comparison.\n${doc.toString()}`, { mode: 0o600 });
  loadConfigFile(configFile); // a ConfigError names the key and the line
  const weights = (loadConfigFile(configFile).backends as readonly { weight: number }[]).map((b) => b.weight).join('/');
  process.stderr.write(`starting pgproxy on 127.0.0.1:${port} (weights ${weights}), config ${configFile}\n`);

  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, [CLI, 'start', '--config', configFile], { cwd: dir, stdio: ['ignore', log, log], detached: true });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const killed = await Promise.race([exit.then(() => false), sleep(10_000).then(() => true)]);
    if (killed) {
      child.kill('SIGKILL');
      await exit;
    }
  };
  const probe: Endpoint = { host: '127.0.0.1', port, user: su.name, password: su.password, database: DATABASE, scramUser: null, scramPassword: null, scramUnicodeUser: null, scramUnicodePassword: null };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`pgproxy exited at start; see ${logFile}:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    const nodes = await poolNodeSelects(probe);
    if (nodes && nodes.length === cluster.info.nodes.length && nodes.filter((n) => n.role === 'standby').length === nodes.length - 1) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`pgproxy did not see a primary and ${cluster.info.nodes.length - 1} standbys within 30 s; see ${logFile}`);
    }
    await sleep(200);
  }
  return { port, logFile, stop };
}

async function resetStatements(cluster: LocalCluster): Promise<void> {
  for (const i of cluster.info.nodes.keys()) await cluster.query(i, 'SELECT pg_stat_statements_reset()', [], undefined, DATABASE);
}

/**
 * The tests' SELECTs per node: top-level statements in the test database by anyone but pgproxy's monitor role,
 * without pgproxy's own WAL-position query (it runs as the client's user on the client's primary connection).
 */
async function selectsPerNode(cluster: LocalCluster): Promise<NodeSelects[]> {
  const monitor = cluster.info.users.monitor.name;
  const out: NodeSelects[] = [];
  for (const [i, node] of cluster.info.nodes.entries()) {
    const client = new pg.Client(cluster.connectionConfig(i, cluster.info.users.superuser, DATABASE));
    await client.connect();
    try {
      const role = (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r ? 'standby' : 'primary';
      const r = await client.query<{ n: string }>(
        `SELECT coalesce(sum(s.calls), 0)::text AS n
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles u ON u.oid = s.userid
          WHERE s.toplevel AND d.datname = $1 AND u.rolname <> $2
            AND s.query ~* '^\\s*select\\M' AND s.query NOT LIKE '%pg_current_wal_insert_lsn()::text%'`,
        [DATABASE, monitor],
      );
      out.push({ name: `${node.name} ${node.host}:${node.port}`, role, selects: Number(r.rows[0]?.n ?? 0) });
    } finally {
      await client.end();
    }
  }
  return out;
}
