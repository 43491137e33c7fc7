// The real command line as a child process (`node dist/src/cli/main.js`, built by `npm test` / `npm run build`)
// against the shared cluster: graceful stop on SIGTERM, reload on SIGHUP, and the md5 / scram / check commands.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterInfo } from '../../src/devcluster/cluster.js';
import { md5PasswordHash } from '../../src/wire/auth/md5.js';
import { connectNode, sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { seenError, tally, withDeadline, type SeenError } from './helpers/load.js';
import { eventually, run, sleep, startTestProxy } from './helpers/proxy.js';
import { clusterYaml } from './helpers/config-file.js';

const info = sharedCluster();
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const portOf = (i: number): number => info.nodes[i]!.port;

let dir: string;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-cli-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------ the CLI as a child

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A running `pgproxy start`: its JSON log lines (stdout and stderr), exit, and the port it listens on. */
class CliProxy {
  readonly logs: LogLine[] = [];
  stdout = '';
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  port = 0;

  private constructor(readonly child: ChildProcess) {
    const collect = (stream: 'stdout' | 'stderr') => {
      let partial = '';
      return (d: Buffer): void => {
        const text = d.toString();
        this[stream] += text;
        partial += text;
        const lines = partial.split('\n');
        partial = lines.pop()!;
        for (const l of lines) {
          if (!l.startsWith('{')) continue;
          try {
            this.logs.push(JSON.parse(l) as LogLine);
          } catch {
            /* not a log line */
          }
        }
      };
    };
    child.stdout!.on('data', collect('stdout'));
    child.stderr!.on('data', collect('stderr'));
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  static async start(configFile: string): Promise<CliProxy> {
    const child = spawn(process.execPath, [CLI, 'start', '--config', configFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new CliProxy(child);
    live.add(p);
    try {
      const line = await p.waitForLog((l) => l.msg === 'pgproxy listening', 30_000);
      p.port = Number(line.port);
    } catch (err) {
      throw new Error(`pgproxy did not start: ${(err as Error).message}\nstdout: ${p.stdout}\nstderr: ${p.stderr}`);
    }
    return p;
  }

  async waitForLog(match: (l: LogLine) => boolean, timeoutMs = 10_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.slice(from).find(match);
      if (found) return found;
      if (this.exit) throw new Error(`pgproxy exited (${JSON.stringify(this.exit)}) before the expected log line`);
      if (Date.now() > deadline) throw new Error('expected log line not seen in time');
      await sleep(25);
    }
  }

  client(extra: Partial<pg.ClientConfig> = {}): pg.Client {
    return new pg.Client({ host: '127.0.0.1', port: this.port, user: info.users.app.name, password: info.users.app.password, database: info.database, connectionTimeoutMillis: 5_000, ...extra });
  }

  /** SIGKILL if still running (cleanup after a failed test). */
  async kill(): Promise<void> {
    if (this.exit === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

const live = new Set<CliProxy>();
afterEach(async () => {
  for (const p of live) await p.kill();
  live.clear();
});

/** A client whose unsolicited errors (a FATAL while idle) are collected. */
async function watched(p: CliProxy): Promise<{ c: pg.Client; errors: SeenError[] }> {
  const c = p.client();
  const errors: SeenError[] = [];
  c.on('error', (e) => errors.push(seenError(e)));
  await c.connect();
  return { c, errors };
}

function destroy(c: pg.Client): void {
  (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}

/** The shared cluster's pgproxy.yaml for these tests (see helpers/config-file.ts). */
function yamlFor(cluster: ClusterInfo, opts: { weights: [number, number, number]; shutdownMs?: number; extraRoutingLine?: string; breakSyntax?: boolean }): { text: string; lineOf: (needle: string) => number } {
  return clusterYaml(cluster, { ...opts, tail: ['shutdown:', `  timeout_ms: ${opts.shutdownMs ?? 15_000}`], logLevel: 'info' });
}

let fileSeq = 0;
function writeConfig(text: string): string {
  const file = path.join(dir, `pgproxy-${++fileSeq}.yaml`);
  writeFileSync(file, text);
  return file;
}

async function onPrimary<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connectNode(info, 0, info.users.superuser);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

// ------------------------------------------------------------------------------------------------ SIGTERM

describe('SIGTERM: graceful stop', () => {
  it('an idle client is closed with 57P01 at once, new connections are refused, a transaction in flight commits, then it is closed and the process exits 0', async () => {
    const table = `cli_term_${process.pid}`;
    await onPrimary((c) => c.query(`CREATE TABLE ${table} (id int)`));
    const timeoutMs = 15_000;
    const p = await CliProxy.start(writeConfig(yamlFor(info, { weights: [0, 1, 1], shutdownMs: timeoutMs }).text));
    const a = await watched(p);
    const b = await watched(p);
    try {
      await a.c.query('BEGIN');
      await a.c.query(`INSERT INTO ${table} VALUES (1)`);
      expect((await b.c.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);

      const t0 = Date.now();
      p.child.kill('SIGTERM');
      // The idle client: FATAL 57P01 right away.
      await eventually(() => b.errors.length > 0, 3_000, 20);
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(b.errors[0]).toMatchObject({ code: '57P01', severity: 'FATAL' });
      // No new clients.
      const late = p.client();
      late.on('error', () => undefined);
      const lateErr = await late.connect().then(
        () => null,
        (e: unknown) => seenError(e),
      );
      expect(lateErr, 'a new connection was accepted after SIGTERM').not.toBeNull();
      expect(lateErr!.message).toMatch(/ECONNREFUSED|terminat|shut/i);
      expect(p.exit, 'exited with a transaction in flight').toBeNull();

      // The transaction in flight finishes a little later.
      await sleep(500);
      expect(a.errors).toEqual([]);
      await withDeadline(a.c.query(`INSERT INTO ${table} VALUES (2)`), 5_000, 'INSERT after SIGTERM in the open transaction');
      await withDeadline(a.c.query('COMMIT'), 5_000, 'COMMIT after SIGTERM');
      // Then it is closed, and the process ends.
      await eventually(() => a.errors.length > 0, 3_000, 20);
      expect(a.errors[0]).toMatchObject({ code: '57P01', severity: 'FATAL' });
      const exit = await withDeadline(p.exited, timeoutMs, 'process exit after SIGTERM');
      expect(exit, p.stderr.slice(-2000)).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeLessThan(timeoutMs);
      const rows = await onPrimary((c) => c.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`));
      expect(rows.rows).toEqual([{ id: 1 }, { id: 2 }]);
      expect(p.logs.some((l) => /shutting down/.test(l.msg))).toBe(true);
      expect(p.logs.some((l) => l.msg === 'stopped')).toBe(true);
    } finally {
      destroy(a.c);
      destroy(b.c);
      await onPrimary((c) => c.query(`DROP TABLE IF EXISTS ${table}`));
    }
  });

  it('a transaction that does not finish within shutdown.timeout_ms is closed with 57P01 and rolled back; exit 0', async () => {
    const table = `cli_term2_${process.pid}`;
    await onPrimary((c) => c.query(`CREATE TABLE ${table} (id int)`));
    const timeoutMs = 1_500;
    const p = await CliProxy.start(writeConfig(yamlFor(info, { weights: [0, 1, 1], shutdownMs: timeoutMs }).text));
    const a = await watched(p);
    try {
      await a.c.query('BEGIN');
      await a.c.query(`INSERT INTO ${table} VALUES (1)`);
      const t0 = Date.now();
      p.child.kill('SIGTERM');
      await eventually(() => a.errors.length > 0, timeoutMs + 3_000, 20);
      const waited = Date.now() - t0;
      expect(a.errors[0]).toMatchObject({ code: '57P01', severity: 'FATAL' });
      expect(waited).toBeGreaterThanOrEqual(timeoutMs - 100);
      expect(waited).toBeLessThan(timeoutMs + 2_000);
      const exit = await withDeadline(p.exited, 5_000, 'process exit after the shutdown timeout');
      expect(exit, p.stderr.slice(-2000)).toEqual({ code: 0, signal: null });
      // The unfinished transaction did not commit (its backend connection was rolled back or closed).
      await eventually(async () => (await onPrimary((c) => c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))).rows[0]!.n === 0, 5_000);
      await eventually(
        async () => (await onPrimary((c) => c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE $1`, [`%${table}%`]))).rows[0]!.n === 0,
        5_000,
      );
    } finally {
      destroy(a.c);
      await onPrimary((c) => c.query(`DROP TABLE IF EXISTS ${table}`));
    }
  });
});

// ------------------------------------------------------------------------------------------------ SIGHUP

describe('SIGHUP: reload', () => {
  it('an edited file is applied (weights 0/1/1 -> 0/0/1); a broken one is logged with its line and the old config stays', async () => {
    const file = writeConfig(yamlFor(info, { weights: [0, 1, 1] }).text);
    const p = await CliProxy.start(file);
    const { c } = await watched(p);
    const reads = async (n: number): Promise<Record<string, number>> => {
      const ports: number[] = [];
      for (let i = 0; i < n; i++) ports.push((await withDeadline(c.query<{ port: number }>('SELECT inet_server_port() AS port'), 5_000, 'read')).rows[0]!.port);
      return tally(ports, String);
    };
    try {
      const before = await reads(40);
      expect(before[portOf(1)] ?? 0, JSON.stringify(before)).toBeGreaterThan(0);
      expect(before[portOf(2)] ?? 0, JSON.stringify(before)).toBeGreaterThan(0);
      expect(before[portOf(0)]).toBeUndefined();

      // An edited file.
      writeFileSync(file, yamlFor(info, { weights: [0, 0, 1] }).text);
      let mark = p.logs.length;
      p.child.kill('SIGHUP');
      const reloaded = await p.waitForLog((l) => l.msg.startsWith(`reloaded ${file}`), 10_000, mark);
      expect(reloaded.level).toBeGreaterThanOrEqual(30);
      expect(await reads(30)).toEqual({ [portOf(2)]: 30 });

      // An unknown key: logged at error level naming the file, the line and the key; nothing applied.
      const unknown = yamlFor(info, { weights: [0, 1, 0], extraRoutingLine: 'load_balancing_mode: statement' });
      writeFileSync(file, unknown.text);
      mark = p.logs.length;
      p.child.kill('SIGHUP');
      const e1 = await p.waitForLog((l) => l.level >= 50 && /reload refused/.test(l.msg), 10_000, mark);
      expect(String(e1.err)).toContain(`${file}:${unknown.lineOf('load_balancing_mode')}: routing.load_balancing_mode`);
      expect(p.exit).toBeNull();
      expect(await reads(20)).toEqual({ [portOf(2)]: 20 });

      // A YAML syntax error.
      const broken = yamlFor(info, { weights: [0, 1, 0], breakSyntax: true });
      writeFileSync(file, broken.text);
      mark = p.logs.length;
      p.child.kill('SIGHUP');
      const e2 = await p.waitForLog((l) => l.level >= 50 && /reload refused/.test(l.msg), 10_000, mark);
      const m = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+): `).exec(String(e2.err));
      expect(m, String(e2.err)).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(broken.lineOf('database: [postgres'));
      expect(Number(m![1])).toBeLessThanOrEqual(broken.lineOf('database: [postgres') + 1);
      expect(p.exit).toBeNull();
      // Still serving, with the last good configuration; new clients too.
      expect(await reads(20)).toEqual({ [portOf(2)]: 20 });
      const fresh = await watched(p);
      expect((await fresh.c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]!.port).toBe(portOf(2));
      await fresh.c.end();
    } finally {
      destroy(c);
    }
    // SIGINT stops it too (at most 2 s for work in flight); exit 0.
    p.child.kill('SIGINT');
    expect(await withDeadline(p.exited, 10_000, 'exit after SIGINT')).toEqual({ code: 0, signal: null });
  });
});

// ------------------------------------------------------------------------------------------------ md5, scram, check

describe('pgproxy md5 | scram | check', () => {
  it("md5 USER PASSWORD prints pgpool's pg_md5 hash: 'md5' + md5(password || user), as PostgreSQL stores it", async () => {
    const r = await run(process.execPath, [CLI, 'md5', info.users.app.name, info.users.app.password], {}, 30_000);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const expected = 'md5' + createHash('md5').update(info.users.app.password + info.users.app.name).digest('hex');
    expect(r.stdout).toBe(expected + '\n');
    expect(md5PasswordHash(info.users.app.name, info.users.app.password)).toBe(expected);
    // The dev cluster stores app's password as md5: the same string.
    const stored = await onPrimary((c) => c.query<{ p: string }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [info.users.app.name]));
    expect(stored.rows[0]!.p).toBe(expected);
    const usage = await run(process.execPath, [CLI, 'md5', 'onlyuser'], {}, 30_000);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/usage: pgproxy md5 USER PASSWORD/);
  });

  it('scram PASSWORD prints a verifier that authenticates that password (at PostgreSQL and through pgproxy)', async () => {
    const password = `cli-scram-${process.pid}-pw`;
    const r = await run(process.execPath, [CLI, 'scram', password], {}, 30_000);
    expect(r.code).toBe(0);
    const verifier = r.stdout.trim();
    expect(verifier).toMatch(/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    // Two runs, two salts.
    const again = await run(process.execPath, [CLI, 'scram', password], {}, 30_000);
    expect(again.stdout.trim()).not.toBe(verifier);

    // PostgreSQL takes it as a verifier (stored as is), so the role's password is `password`; pgproxy checks clients
    // against the same verifier and logs in to the backends by SCRAM pass-through.
    const role = `cli_scram_${process.pid}`;
    await onPrimary(async (c) => {
      await c.query(`DROP ROLE IF EXISTS ${role}`);
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${verifier}'`);
      const stored = await c.query<{ p: string }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role]);
      expect(stored.rows[0]!.p).toBe(verifier);
    });
    try {
      await (await sharedClusterHandle()).waitForReplay();
      const proxy = await startTestProxy(info, { auth: { users: [info.users.app, { name: role, password: verifier }] } });
      try {
        const connect = async (pw: string): Promise<pg.Client> => {
          const c = new pg.Client({ host: proxy.host, port: proxy.port, user: role, password: pw, database: info.database, connectionTimeoutMillis: 10_000 });
          c.on('error', () => undefined);
          await c.connect();
          return c;
        };
        const c = await connect(password);
        try {
          const read = await c.query<{ u: string; port: number }>('SELECT current_user AS u, inet_server_port() AS port');
          expect(read.rows[0]!.u).toBe(role);
          expect(read.rows[0]!.port).not.toBe(portOf(0));
          await c.query('BEGIN');
          const onPrim = await c.query<{ port: number }>('SELECT inet_server_port() AS port');
          await c.query('COMMIT');
          expect(onPrim.rows[0]!.port).toBe(portOf(0));
        } finally {
          await c.end();
        }
        const wrong = await connect('not-the-password').then(
          async (c2) => {
            await c2.end();
            return null;
          },
          (e: unknown) => seenError(e),
        );
        expect(wrong?.code).toBe('28P01');
      } finally {
        await proxy.close();
      }
    } finally {
      await onPrimary((c) => c.query(`DROP ROLE IF EXISTS ${role}`));
    }
  });

  it('check --config exits 0 on the sample pgproxy.yaml and 1 with file:line: key on a broken one', async () => {
    const sample = path.join(ROOT, 'pgproxy.yaml');
    const ok2 = await run(process.execPath, [CLI, 'check', '--config', sample], {}, 30_000);
    expect(ok2.stderr).toBe('');
    expect(ok2.code).toBe(0);
    expect(ok2.stdout).toMatch(/: ok\n$/);

    const lines = readFileSync(sample, 'utf8').split('\n');
    const i = lines.findIndex((l) => /^\s+load_balance:\s/.test(l));
    expect(i).toBeGreaterThan(0);
    lines[i] = lines[i]!.replace('load_balance:', 'load_balanse:');
    const bad = path.join(dir, 'broken.yaml');
    writeFileSync(bad, lines.join('\n'));
    const r = await run(process.execPath, [CLI, 'check', '--config', bad], {}, 30_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${bad}:${i + 1}: routing.load_balanse`);

    const syntax = path.join(dir, 'syntax.yaml');
    writeFileSync(syntax, 'listen:\n  port: 9999\nbackends: [\n');
    const r2 = await run(process.execPath, [CLI, 'check', '--config', syntax], {}, 30_000);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(new RegExp(`${syntax.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: `));

    const missing = await run(process.execPath, [CLI, 'check', '--config', path.join(dir, 'nope.yaml')], {}, 30_000);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.yaml');
  });
});
