// Explained routing: SET pgproxy.explain = on (or -c pgproxy.explain=on at startup) gives one NOTICE per routed
// unit naming the node, its role and the reason; SHOW pgproxy.last_route gives the last decision. Notices go to
// the asking client only, and arrive whole, at a frame boundary just before their unit's first reply, also in a
// pipeline of large rows. The node a notice names is checked against the server that answered.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../src/admin/metrics.js';
import type { RunningProxy } from '../../src/server.js';
import { REASON_LABELS } from '../../src/router/reasons.js';
import { sharedCluster } from './helpers/cluster.js';
import { pbdes, setUpOnPrimary } from './helpers/exchange.js';
import { proxyClient, startTestProxy } from './helpers/proxy.js';
import { commandTag, dataRow, errorFields, type Msg, ProtoClient, readyStatus, serialize } from './helpers/proto-client.js';

const info = sharedCluster();
const nodeByPort = new Map(info.nodes.map((n, i) => [n.port, { name: n.name, role: i === 0 ? 'primary' : 'standby' }]));
const T = `xpl_${process.pid}`;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
  await setUpOnPrimary(info, [
    `CREATE TABLE ${T} (id serial primary key, v text)`,
    `CREATE FUNCTION ${T}_touch() RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT inet_server_port() $$`,
  ]);
});

afterAll(async () => {
  await proxy?.close();
});

/** The text of a read's notice: a read after the session's own write may first wait for a standby to replay it. */
function readNotice(where: string, reason = "read, the session's load-balance node"): RegExp {
  const esc = (s: string): string => s.replace(/[()]/g, '\\$&');
  return new RegExp(`^pgproxy: ${esc(where)}: (waited \\d+ ms for ${esc(where.split(' ')[0]!)} to replay [0-9A-F]+/[0-9A-F]+; )?${esc(reason)}$`);
}

async function client(extra: Partial<pg.ClientConfig> = {}): Promise<{ c: pg.Client; notices: string[] }> {
  const c = proxyClient(proxy, info, info.users.app, extra);
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  await c.connect();
  return { c, notices };
}

/** Runs `sql` (its result has a column p: the server's port) and returns the notices it brought and where it ran. */
async function explained(c: pg.Client, notices: string[], sql: string, values: unknown[] = []): Promise<{ notices: string[]; where: string }> {
  const from = notices.length;
  const r = await c.query<{ p: number }>(sql, values);
  const n = nodeByPort.get(r.rows[0]!.p)!;
  return { notices: notices.slice(from), where: `${n.name} (${n.role})` };
}

function lines(msgs: readonly Msg[]): string[] {
  return msgs.map((m) => {
    switch (m.type) {
      case 'C':
        return `C ${commandTag(m.body)}`;
      case 'Z':
        return `Z ${readyStatus(m)}`;
      case 'N':
      case 'E':
        return `${m.type} ${errorFields(m.body).M}`;
      default:
        return m.type;
    }
  });
}

describe('explain notices', () => {
  it('one NOTICE per routed statement, naming the node that ran it, its role and the reason', async () => {
    const { c, notices } = await client();
    try {
      await c.query('SET pgproxy.explain = on');
      expect(notices).toEqual([]);
      const read = await explained(c, notices, 'SELECT inet_server_port() AS p');
      expect(read.where).toMatch(/\(standby\)$/);
      expect(read.notices).toEqual([`pgproxy: ${read.where}: read, the session's load-balance node`]);
      const write = await explained(c, notices, `INSERT INTO ${T} (v) VALUES ('x') RETURNING inet_server_port() AS p`);
      expect(write.notices).toEqual(['pgproxy: node0 (primary): write']);
      const fn = await explained(c, notices, `SELECT ${T}_touch() AS p`);
      expect(fn.notices).toEqual([`pgproxy: node0 (primary): volatile function ${T}_touch()`]);
      const hinted = await explained(c, notices, '/* pgproxy: route=primary */ SELECT inet_server_port() AS p');
      expect(hinted.notices).toEqual(['pgproxy: node0 (primary): hint']);
      const extended = await explained(c, notices, 'SELECT inet_server_port() AS p, $1::int AS one', [1]);
      expect(extended.where).toMatch(/\(standby\)$/);
      expect(extended.notices).toHaveLength(1);
      expect(extended.notices[0]).toMatch(readNotice(extended.where));
      // A transaction: its BEGIN is answered by pgproxy (no notice), then one notice per statement.
      const from = notices.length;
      await c.query('BEGIN');
      expect(notices.length).toBe(from);
      const first = await explained(c, notices, 'SELECT inet_server_port() AS p');
      expect(first.notices).toEqual(['pgproxy: node0 (primary): in read-write transaction']);
      const second = await explained(c, notices, `INSERT INTO ${T} (v) VALUES ('y') RETURNING inet_server_port() AS p`);
      expect(second.notices).toEqual(['pgproxy: node0 (primary): write']);
      await c.query('COMMIT');
      expect(notices.length).toBe(from + 3);
      await c.query('BEGIN READ ONLY');
      const ro = await explained(c, notices, 'SELECT inet_server_port() AS p');
      expect(ro.where).toMatch(/\(standby\)$/);
      expect(ro.notices).toHaveLength(1);
      expect(ro.notices[0]).toMatch(readNotice(ro.where));
      await c.query('COMMIT');
      // pgproxy's own statements are not routed: no notice.
      const before = notices.length;
      await c.query('SHOW pgproxy.explain');
      await c.query('SET pgproxy.max_lag_ms = 1000');
      expect(notices.length).toBe(before);
      await c.query('SET pgproxy.explain = off');
      await c.query('SELECT 1');
      expect(notices.length).toBe(before);
    } finally {
      await c.end();
    }
  });

  it('-c pgproxy.explain=on in the startup options explains from the first statement', async () => {
    const { c, notices } = await client({ options: '-c pgproxy.explain=on' });
    try {
      const r = await explained(c, notices, 'SELECT inet_server_port() AS p');
      expect(r.notices).toEqual([`pgproxy: ${r.where}: read, the session's load-balance node`]);
    } finally {
      await c.end();
    }
  });

  it('notices go only to the client that asked: another client of the same proxy gets none', async () => {
    const asking = await client();
    const other = await client();
    try {
      await asking.c.query('SET pgproxy.explain = on');
      for (let i = 0; i < 5; i++) {
        await Promise.all([asking.c.query('SELECT inet_server_port() AS p'), other.c.query('SELECT inet_server_port() AS p')]);
        await Promise.all([asking.c.query(`INSERT INTO ${T} (v) VALUES ('a')`), other.c.query(`INSERT INTO ${T} (v) VALUES ('o')`)]);
      }
      expect(asking.notices).toHaveLength(10);
      expect(other.notices).toEqual([]);
    } finally {
      await asking.c.end();
      await other.c.end();
    }
  });

  it('SHOW pgproxy.last_route says where the last statement went and why (explain on or off)', async () => {
    const { c } = await client();
    const last = async (): Promise<string> => (await c.query('SHOW pgproxy.last_route')).rows[0]['pgproxy.last_route'];
    try {
      const p = (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p;
      const n = nodeByPort.get(p)!;
      expect(await last()).toBe(`${n.name} (${n.role}): read, the session's load-balance node`);
      await c.query(`INSERT INTO ${T} (v) VALUES ('z')`);
      expect(await last()).toBe('node0 (primary): write');
      await c.query(`SELECT ${T}_touch()`);
      expect(await last()).toBe(`node0 (primary): volatile function ${T}_touch()`);
    } finally {
      await c.end();
    }
  });

  it('the routed-units metric carries reason codes only (no function names, LSNs or other detail)', async () => {
    const { c } = await client();
    try {
      await c.query(`SELECT ${T}_touch()`);
      await c.query(`SET pgproxy.min_lsn = '0/1'`);
      await c.query('SELECT 1');
    } finally {
      await c.end();
    }
    const text = await createMetricsRegistry(proxy.context).metrics();
    const labels = [...text.matchAll(/^pgproxy_routed_total\{reason="([^"]*)"\} (\d+)/gm)].map((m) => m[1]!);
    expect(labels.length).toBeGreaterThan(0);
    for (const l of labels) expect(REASON_LABELS).toContain(l);
    expect(text).not.toContain(`${T}_touch`);
    expect(Number(/^pgproxy_routed_total\{reason="volatile_function"\} (\d+)/m.exec(text)![1])).toBeGreaterThan(0);
  });
});

describe('explain notices in a pipeline', () => {
  const BIG = 100_000;
  const ROWS = 5;

  const unit = pbdes;


  it('each notice arrives whole, just before its unit’s first reply, among large rows from several nodes', async () => {
    const c = await ProtoClient.connect({ host: proxy.host, port: proxy.port, user: info.users.app.name, password: info.users.app.password, database: info.database, params: { options: '-c pgproxy.explain=on' } });
    try {
      const big = `SELECT repeat('x', ${BIG}) AS big, inet_server_port() AS p FROM generate_series(1, ${ROWS})`;
      const write = `INSERT INTO ${T} (v) SELECT repeat('w', 10) FROM generate_series(1, 3) RETURNING repeat('y', ${BIG}) AS big, inet_server_port() AS p`;
      const units = [big, big, write, big, `/* pgproxy: route=primary */ ${big}`, big];
      c.send(Buffer.concat(units.map(unit)));
      // The proto client frames every message by its length: a notice written inside another message would break
      // the framing (or a row's length) and fail here.
      const msgs = await c.readReady(units.length, 30_000);
      const got = lines(msgs);
      let at = 0;
      for (const sql of units) {
        const n = sql === write ? 3 : ROWS;
        const mine = got.slice(at, at + n + 6);
        expect(mine[0]).toMatch(/^N pgproxy: node\d \((primary|standby)\): /);
        expect(mine.slice(1)).toEqual(['1', '2', 'T', ...Array<string>(n).fill('D'), `C ${sql === write ? 'INSERT 0 3' : `SELECT ${ROWS}`}`, 'Z I']);
        // The node named is the one that sent the rows.
        const rowsOfUnit = msgs.slice(at + 4, at + 4 + n).map((m) => dataRow(m.body));
        for (const [value, port] of rowsOfUnit) {
          expect(value!.length).toBe(BIG);
          const node = nodeByPort.get(Number(port))!;
          expect(mine[0]).toContain(`: ${node.name} (${node.role}): `);
        }
        at += mine.length;
      }
      expect(at).toBe(msgs.length);
      // The same with simple Queries, several in one write.
      c.send(Buffer.concat(units.map((sql) => serialize.query(sql))));
      const simple = lines(await c.readReady(units.length, 30_000));
      expect(simple.filter((l) => l.startsWith('N'))).toHaveLength(units.length);
      let unitStart = 0;
      for (let i = 0; i < simple.length; i++) {
        if (simple[i]!.startsWith('Z')) {
          expect(simple[unitStart]).toMatch(/^N pgproxy: /);
          expect(simple[unitStart + 1]).toBe('T');
          unitStart = i + 1;
        }
      }
    } finally {
      await c.end();
    }
  });
});
