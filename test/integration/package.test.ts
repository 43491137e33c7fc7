// pgproxy as an installed package is used: `npm pack` of the built project (dist/, as `npm test` builds it), the
// tarball installed into a scratch project with `npm install --offline`, then `import { startProxy } from
// 'pgproxy'` in a program of that project against the shared cluster, and its types checked with tsc.
//
// No registry is reached. The scratch project gets a package-lock.json made from this project's own: its
// production entries, so every dependency is the version this project installed, each with its tarball URL and
// integrity, so that npm needs no registry metadata, only the tarballs. --offline makes npm take them from the
// npm cache, found by integrity, where this project's `npm install` put them. When the cache lacks one (e.g.
// after `npm cache clean`), npm fails at once with ENOTCACHED and so does this test.
import { execFile, type ExecFileException } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedCluster } from './helpers/cluster.js';
import { REPO_ROOT } from './helpers/proto-child.js';

const info = sharedCluster();
const scratchRoot = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-package-'));
const project = path.join(scratchRoot, 'project');

interface Ran {
  stdout: string;
  stderr: string;
}

/** Runs a command to its end within `timeoutMs` (then SIGKILL); rejects with its output on failure. */
function sh(cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err: ExecFileException | null, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      const why = err.killed ? `did not finish within ${timeoutMs / 1000} s` : `exited with ${err.code ?? err.signal}`;
      reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}) ${why}\n${stderr.slice(-3000)}${stdout.slice(-1000)}`));
    });
  });
}

/** npm with everything that could reach a registry or print noise switched off. */
const NPM_ENV = { npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' };

interface LockEntry {
  version?: string;
  resolved?: string;
  link?: boolean;
  dev?: boolean;
  [key: string]: unknown;
}

/** A scratch project depending on the tarball only, locked to this project's production dependency tree. */
function writeScratchProject(tarball: string, registry: string): void {
  const own = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; license: string; dependencies: Record<string, string>; bin: Record<string, string>; engines: Record<string, string> };
  const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const spec = `file:../${path.basename(tarball)}`;
  const packages: Record<string, unknown> = {
    '': { name: 'pgproxy-package-test', dependencies: { pgproxy: spec } },
    'node_modules/pgproxy': { version: own.version, resolved: spec, license: own.license, dependencies: own.dependencies, bin: own.bin, engines: own.engines },
  };
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || entry.dev) continue;
    // This project's lockfile leaves out registry URLs; with one, npm fetches by integrity and needs no metadata.
    const name = key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const resolved = entry.resolved ?? (entry.link ? undefined : `${registry}/${name}/-/${name.split('/').pop()}-${String(entry.version)}.tgz`);
    packages[key] = { ...entry, ...(resolved ? { resolved } : {}) };
  }
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'pgproxy-package-test', private: true, type: 'module', dependencies: { pgproxy: spec } }, null, 2));
  writeFileSync(path.join(project, 'package-lock.json'), JSON.stringify({ name: 'pgproxy-package-test', lockfileVersion: 3, requires: true, packages }, null, 2));
}

/** The program a user would write: start pgproxy from the package, query through it, close it. */
const PROGRAM = `import net from 'node:net';
import pg from 'pg';
import { ConfigError, startProxy } from 'pgproxy';

const out = {};
try {
  await startProxy({ listen: { port: 'not a port' } });
  out.invalid = 'accepted';
} catch (err) {
  out.invalid = { configError: err instanceof ConfigError, message: err.message };
}
const { config, user } = JSON.parse(process.env.PACKAGE_TEST_INPUT);
const proxy = await startProxy(config);
out.address = { host: proxy.host, port: proxy.port };
out.nodes = proxy.topology.nodes.map((n) => ({ name: n.name, role: n.role, up: n.up }));
out.primary = proxy.topology.primary()?.name ?? null;
out.standbys = proxy.topology.standbys().map((n) => n.name);
const client = new pg.Client({ host: proxy.host, port: proxy.port, ...user });
await client.connect();
out.autocommitRead = (await client.query('SHOW transaction_read_only')).rows[0].transaction_read_only;
await client.query('BEGIN');
out.transactionRead = (await client.query('SHOW transaction_read_only')).rows[0].transaction_read_only;
await client.query('COMMIT');
await client.end();
out.selectsSeen = proxy.topology.nodes.reduce((s, n) => s + n.selectCount, 0);
await proxy.close();
out.refusedAfterClose = await new Promise((resolve) => {
  const s = net.connect(proxy.port, proxy.host);
  s.once('connect', () => (s.destroy(), resolve(false)));
  s.once('error', () => resolve(true));
});
console.log(JSON.stringify(out));
`;

/** What a TypeScript user writes; the @ts-expect-error lines fail the check if the types were missing (any). */
const TYPED = `import { startProxy, type NodeInfo, type Proxy } from 'pgproxy';

export async function typed(): Promise<string[]> {
  const proxy: Proxy = await startProxy({ listen: { port: 0 }, backends: [{ port: 5432 }] });
  const nodes: readonly NodeInfo[] = proxy.topology.nodes;
  // @ts-expect-error listen.port is a number
  await startProxy({ listen: { port: true } });
  // @ts-expect-error the topology is read-only
  proxy.topology.nodes[0].up = false;
  await proxy.close();
  return nodes.map((n) => n.name);
}
`;

beforeAll(async () => {
  for (const f of ['dist/src/index.js', 'dist/src/index.d.ts']) {
    if (!existsSync(path.join(REPO_ROOT, f))) throw new Error(`${f} is missing: the package test packs the built project (npm run build)`);
  }
  const packed = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratchRoot], REPO_ROOT, 60_000, NPM_ENV);
  const tarball = path.join(scratchRoot, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  mkdirSync(project);
  const registry = (await sh('npm', ['config', 'get', 'registry'], scratchRoot, 30_000, NPM_ENV)).stdout.trim().replace(/\/+$/, '');
  writeScratchProject(tarball, registry);
  // Install scripts belong to optional native helpers of dependencies (see allowScripts); the package needs none.
  await sh('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], project, 150_000, NPM_ENV).catch((err: Error) => {
    throw new Error(`npm install --offline of the packed tarball failed. It installs from the npm cache that this project's own \`npm install\` filled; run that first.\n${err.message}`);
  });
}, 180_000);

afterAll(() => {
  rmSync(scratchRoot, { recursive: true, force: true });
});

describe('the installed package', () => {
  it('ships the API and the CLI, not the tests, benchmarks or scripts', () => {
    const installed = path.join(project, 'node_modules', 'pgproxy');
    expect(existsSync(path.join(installed, 'dist/src/index.js'))).toBe(true);
    expect(existsSync(path.join(installed, 'dist/src/index.d.ts'))).toBe(true);
    expect(existsSync(path.join(installed, 'bin/pgproxy.js'))).toBe(true);
    expect(existsSync(path.join(installed, 'pgproxy.yaml'))).toBe(true);
    expect(existsSync(path.join(installed, 'dist/bench'))).toBe(false);
    expect(existsSync(path.join(installed, 'dist/scripts'))).toBe(false);
    expect(existsSync(path.join(installed, 'test'))).toBe(false);
  });

  it('import { startProxy } from "pgproxy": validates the config, serves queries with reads on a standby, reports the topology, closes', async () => {
    writeFileSync(path.join(project, 'program.mjs'), PROGRAM);
    const config = {
      listen: { host: '127.0.0.1', port: 0 },
      backends: info.nodes.map((n, i) => ({ name: n.name, host: n.host, port: n.port, weight: i === 0 ? 0 : 1 })),
      auth: { users: [{ name: info.users.app.name, password: info.users.app.password }] },
      health_check: { user: info.users.monitor.name, password: info.users.monitor.password },
      log: { level: 'silent' },
    };
    const user = { user: info.users.app.name, password: info.users.app.password, database: info.database };
    const r = await sh(process.execPath, ['program.mjs'], project, 60_000, { PACKAGE_TEST_INPUT: JSON.stringify({ config, user }) });
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(out.invalid).toMatchObject({ configError: true, message: expect.stringContaining('listen.port') });
    expect(out.address).toMatchObject({ host: '127.0.0.1', port: expect.any(Number) });
    expect(out.nodes).toEqual(info.nodes.map((n, i) => ({ name: n.name, role: i === 0 ? 'primary' : 'standby', up: true })));
    expect(out.primary).toBe(info.nodes[0]!.name);
    expect(out.standbys).toEqual(info.nodes.slice(1).map((n) => n.name));
    // Weights 0/1/1: an autocommit read runs on a standby (read-only there), a read-write transaction on the primary.
    expect(out.autocommitRead).toBe('on');
    expect(out.transactionRead).toBe('off');
    expect(out.selectsSeen).toBeGreaterThan(0);
    expect(out.refusedAfterClose).toBe(true);
  });

  it('its type declarations resolve through the package exports', async () => {
    writeFileSync(path.join(project, 'typed.ts'), TYPED);
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(REPO_ROOT, 'node_modules/@types')] },
        files: ['typed.ts'],
      }),
    );
    await sh(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project, 60_000);
  });
});
