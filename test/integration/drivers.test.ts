// Real drivers through pgproxy: psycopg2 (libpq, simple protocol) and asyncpg (extended protocol throughout),
// each running a script from test/fixtures that writes, reads, uses transactions, executemany, COPY, cursors,
// notifications and cancellation, and checks every result itself.
//
// The scripts need the Debian packages python3-psycopg2 and python3-asyncpg, which install into the system
// interpreter (/usr/bin/python3), not into a pyenv or virtualenv python that may come first on PATH.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { sharedCluster } from './helpers/cluster.js';
import { REPO_ROOT } from './helpers/proto-child.js';
import { run, startTestProxy } from './helpers/proxy.js';

const info = sharedCluster();
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
});

afterAll(async () => {
  await proxy?.close();
});

async function runScript(script: string, table: string): Promise<{ code: number | null; stdout: string; stderr: string; summary: Record<string, unknown> | null }> {
  const r = await run(
    PYTHON,
    [path.join(REPO_ROOT, 'test/fixtures', script)],
    {
      PGHOST: proxy.host,
      PGPORT: String(proxy.port),
      PGUSER: info.users.app.name,
      PGPASSWORD: info.users.app.password,
      PGDATABASE: info.database,
      PRIMARY_PORT: String(info.nodes[0]!.port),
      STANDBY_PORTS: info.nodes.slice(1).map((n) => n.port).join(','),
      TABLE: table,
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
    },
    100_000,
  );
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let summary: Record<string, unknown> | null = null;
  try {
    summary = JSON.parse(last) as Record<string, unknown>;
  } catch {
    summary = null;
  }
  return { ...r, summary };
}

describe('Python drivers through the proxy', () => {
  it('psycopg2: write then standby reads, transactions, executemany, COPY, named cursor, notices, NOTIFY, cancel', async () => {
    const r = await runScript('driver_psycopg2.py', `px_psycopg2_${process.pid}`);
    expect(r.stderr, `${PYTHON} driver_psycopg2.py failed`).toBe('');
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ok: true });
    expect(info.nodes.slice(1).map((n) => n.port)).toContain(r.summary!.read_port);
  }, 110_000);

  it('asyncpg: prepared statements, executemany, fetch, transactions, cursors, binary COPY, cancel of a running statement, pool', async () => {
    const r = await runScript('driver_asyncpg.py', `px_asyncpg_${process.pid}`);
    expect(r.stderr, `${PYTHON} driver_asyncpg.py failed`).toBe('');
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ok: true });
    expect(info.nodes.slice(1).map((n) => n.port)).toContain(r.summary!.read_port);
  }, 110_000);
});
