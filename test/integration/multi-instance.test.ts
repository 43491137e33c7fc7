// Several pgproxy instances in front of one cluster, behind a TCP round-robin (issue 14). The instances share
// nothing: each learns the topology from the databases, so routing is right through either, a failover is
// followed by both, and a client reads its own write through the other instance by carrying the LSN token
// (SHOW pgproxy.last_commit_lsn on A, SET pgproxy.min_lsn on B). A throwaway cluster: its primary is stopped and a
// standby promoted here.
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/devcluster/cluster.js';
import type { RunningProxy } from '../../src/server.js';
import { throwawayCluster } from './helpers/cluster.js';
import { eventually, startTestProxy } from './helpers/proxy.js';

/** A tiny TCP load balancer: each new connection goes to the next upstream in turn, bytes piped both ways. */
class RoundRobin {
  /** The upstream index each accepted connection went to, in order of arrival. */
  readonly picks: number[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  constructor(private readonly upstreams: readonly { host: string; port: number }[]) {
    this.server = net.createServer((client) => {
      const i = this.picks.length % this.upstreams.length;
      this.picks.push(i);
      const upstream = net.connect(this.upstreams[i]!);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(from);
        from.pipe(to);
        from.on('error', () => to.destroy());
        from.on('close', () => {
          this.sockets.delete(from);
          to.destroy();
        });
      }
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let cluster: DevCluster;
let balancer: RoundRobin;
const instances: RunningProxy[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => {
  cluster = await throwawayCluster();
  await cluster.query(0, 'CREATE TABLE multi (id int PRIMARY KEY, v text)', [], cluster.info.users.app);
  await cluster.waitForReplay();
  for (let i = 0; i < 2; i++) instances.push(await startTestProxy(cluster.info));
  balancer = new RoundRobin(instances.map((p) => ({ host: p.host, port: p.port })));
  await balancer.listen();
  // Each instance has found the primary and both standbys on its own.
  for (const [i, p] of instances.entries()) {
    await eventually(() => p.context.topology.primary()?.id === 0 && p.context.topology.nodes.every((n) => n.up), 20_000, 50, `instance ${i} sees node0 primary and every node up`);
  }
}, 180_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await balancer?.close();
  for (const p of instances) await p.close().catch(() => undefined);
  await cluster?.down({ purge: true });
});

/** A client connected through the balancer, and the instance it reached (connections are made one at a time). */
async function throughBalancer(): Promise<{ client: pg.Client; instance: number }> {
  const before = balancer.picks.length;
  const app = cluster.info.users.app;
  const client = new pg.Client({ host: '127.0.0.1', port: balancer.port, user: app.name, password: app.password, database: cluster.info.database, connectionTimeoutMillis: 10_000 });
  clients.push(client);
  client.on('error', () => undefined); // a connection that breaks fails the statement that uses it
  await client.connect();
  expect(balancer.picks.length).toBe(before + 1);
  return { client, instance: balancer.picks[before]! };
}

const port = (i: number): number => cluster.info.nodes[i]!.port;
const serverPort = async (c: pg.Client, sql: string, params: unknown[] = []): Promise<number> => (await c.query<{ p: number }>(sql, params)).rows[0]!.p;

describe('two pgproxy instances behind a TCP round-robin', () => {
  it('routes right through either instance: reads on the standbys, writes on the primary', async () => {
    const seen: { instance: number; read: number; write: number }[] = [];
    for (let k = 0; k < 6; k++) {
      const { client, instance } = await throughBalancer();
      // The read first: after the session's own write, read-your-writes could send it to the primary.
      const read = await serverPort(client, 'SELECT inet_server_port() AS p');
      const write = await serverPort(client, 'INSERT INTO multi VALUES ($1, $2) RETURNING inet_server_port() AS p', [k, 'routing']);
      seen.push({ instance, read, write });
      await client.end();
    }
    expect(seen.map((s) => s.instance)).toEqual([0, 1, 0, 1, 0, 1]);
    for (const s of seen) {
      expect(s.write, `write through instance ${s.instance}`).toBe(port(0));
      expect([port(1), port(2)], `read through instance ${s.instance}`).toContain(s.read);
    }
  });

  it('the LSN token carried from a write on one instance to a read on the other reads the write; without it the read is stale', async () => {
    for (const i of [1, 2]) await cluster.query(i, 'SELECT pg_wal_replay_pause()');
    try {
      const writer = await throughBalancer();
      const reader = await throughBalancer();
      expect(reader.instance).not.toBe(writer.instance);
      await writer.client.query(`INSERT INTO multi VALUES (1000, 'token')`);
      const lsn = (await writer.client.query<{ 'pgproxy.last_commit_lsn': string }>('SHOW pgproxy.last_commit_lsn')).rows[0]!['pgproxy.last_commit_lsn'];
      expect(lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      const readBack = 'SELECT count(*)::int AS n, inet_server_port() AS p FROM multi WHERE id = 1000';

      // Without the token the other instance knows nothing of the write: a standby, whose replay is paused, answers.
      const stale = (await reader.client.query<{ n: number; p: number }>(readBack)).rows[0]!;
      expect(stale.n).toBe(0);
      expect([port(1), port(2)]).toContain(stale.p);

      // With it, no standby has replayed that far: after the bounded wait the read goes to the primary and sees the row.
      const notices: string[] = [];
      reader.client.on('notice', (n) => notices.push(n.message ?? ''));
      await reader.client.query(`SET pgproxy.min_lsn = '${lsn}'`);
      await reader.client.query('SET pgproxy.explain = on');
      expect((await reader.client.query<{ n: number; p: number }>(readBack)).rows[0]).toEqual({ n: 1, p: port(0) });
      expect(notices.some((m) => m.startsWith('pgproxy: node0 (primary)') && m.includes(`to replay ${lsn}`) && m.includes('read-your-writes')), notices.join('\n')).toBe(true);
      await writer.client.end();
      await reader.client.end();
    } finally {
      for (const i of [1, 2]) await cluster.query(i, 'SELECT pg_wal_replay_resume()');
    }
    // Once a standby has replayed the write (and the reader's instance has seen it), the token lets reads go back there.
    const again = await throughBalancer();
    const lsnOf = (await cluster.query<{ l: string }>(0, 'SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    await again.client.query(`SET pgproxy.min_lsn = '${lsnOf}'`);
    let last = { n: -1, p: 0 };
    await eventually(async () => {
      last = (await again.client.query<{ n: number; p: number }>('SELECT count(*)::int AS n, inet_server_port() AS p FROM multi WHERE id = 1000')).rows[0]!;
      return last.p !== port(0);
    }, 20_000, 100, 'a read with the token served by a standby').catch(() => undefined);
    await again.client.end();
    expect(last.n).toBe(1);
    expect([port(1), port(2)]).toContain(last.p);
  });

  it('a failover (primary stopped, a standby promoted) is followed by both instances', async () => {
    await cluster.stopNode(0, 'fast');
    await cluster.promote(1);
    for (const [i, p] of instances.entries()) {
      await eventually(() => p.context.topology.primary()?.id === 1 && p.context.topology.nodes[0]!.up === false, 20_000, 50, `instance ${i} follows the promotion of node1`);
    }
    const seen: { instance: number; write: number; read: number }[] = [];
    for (let k = 0; k < 2; k++) {
      const { client, instance } = await throughBalancer();
      const read = await serverPort(client, 'SELECT inet_server_port() AS p');
      const write = await serverPort(client, 'INSERT INTO multi VALUES ($1, $2) RETURNING inet_server_port() AS p', [2000 + k, 'after failover']);
      seen.push({ instance, write, read });
      await client.end();
    }
    expect(new Set(seen.map((s) => s.instance))).toEqual(new Set([0, 1]));
    for (const s of seen) {
      expect(s.write, `write through instance ${s.instance}`).toBe(port(1));
      expect(s.read, `read through instance ${s.instance}`).not.toBe(port(0));
    }
    expect((await cluster.query<{ n: number }>(1, `SELECT count(*)::int AS n FROM multi WHERE v = 'after failover'`))[0]!.n).toBe(2);
  });
});
