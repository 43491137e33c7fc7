// TLS for clients and to backends, client authentication methods, hba rules, the login-failure limit and the
// authentication timeout, through the real proxy.
import { execFileSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../src/devcluster/cluster.js';
import { makeCert, type TestCert } from './helpers/certs.js';
import { sharedCluster, throwawayCluster } from './helpers/cluster.js';
import { eventually, proxyClient, run, startTestProxy, withProxyClient } from './helpers/proxy.js';

const info = sharedCluster();
const app = info.users.app;
let cert: TestCert;

beforeAll(() => {
  cert = makeCert();
});

afterAll(() => {
  rmSync(cert.dir, { recursive: true, force: true });
});

function connectRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

function readUntilClose(s: net.Socket, timeoutMs = 5000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const t = setTimeout(() => resolve({ data: Buffer.concat(chunks), closed: false }), timeoutMs);
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

describe('client TLS', () => {
  it('tls.mode allow: psql sslmode=require and node-postgres ssl get an encrypted session; plaintext still works', async () => {
    const proxy = await startTestProxy(info, { tls: { cert_file: cert.certFile, key_file: cert.keyFile } });
    try {
      const r = await run('psql', [`host=127.0.0.1 port=${proxy.port} user=${app.name} dbname=${info.database} sslmode=require`, '-X', '-c', '\\conninfo', '-c', 'SELECT 1'], { PGPASSWORD: app.password });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
      const c = proxyClient(proxy, info, app, { ssl: { ca: cert.cert } });
      await c.connect();
      try {
        expect((c as unknown as { connection: { stream: tls.TLSSocket } }).connection.stream.encrypted).toBe(true);
        expect((await c.query('SELECT 41 + 1 AS x')).rows).toEqual([{ x: 42 }]);
      } finally {
        await c.end();
      }
      await withProxyClient(proxy, info, async (plain) => expect((await plain.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]));
    } finally {
      await proxy.close();
    }
  });

  it('tls.mode require refuses plaintext clients with a clear error', async () => {
    const proxy = await startTestProxy(info, { tls: { mode: 'require', cert_file: cert.certFile, key_file: cert.keyFile } });
    try {
      const plain = proxyClient(proxy, info);
      await expect(plain.connect()).rejects.toMatchObject({ code: '28000', message: expect.stringMatching(/requires TLS/) });
      const r = await run('psql', [`host=127.0.0.1 port=${proxy.port} user=${app.name} dbname=${info.database} sslmode=require`, '-X', '-A', '-t', '-c', 'SELECT 7'], { PGPASSWORD: app.password });
      expect(r.stdout.trim()).toBe('7');
    } finally {
      await proxy.close();
    }
  });

  it('bytes sent after SSLRequest, before the answer, are refused (CVE-2021-23214 class)', async () => {
    const proxy = await startTestProxy(info, { tls: { cert_file: cert.certFile, key_file: cert.keyFile } });
    try {
      const s = await connectRaw(proxy.port);
      const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
      const injected = Buffer.from([0, 0, 0, 13, 0x51, ...Buffer.from('SELECT 1\0')]);
      s.write(Buffer.concat([sslRequest, injected]));
      const { data, closed } = await readUntilClose(s);
      expect(closed).toBe(true);
      expect(data[0]).toBe(0x45); // an ErrorResponse ('E'), never the 'S' that would agree to TLS
      expect(data.toString('latin1')).toMatch(/08P01/);
    } finally {
      await proxy.close();
    }
  });
});

describe('client authentication methods', () => {
  it('scram-sha-256 with a plaintext or verifier secret; wrong password 28P01', async () => {
    const proxy = await startTestProxy(info, { auth: { method: 'scram-sha-256' } });
    try {
      await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: app.name }]));
      await expect(proxyClient(proxy, info, { name: app.name, password: 'wrong' }).connect()).rejects.toMatchObject({ code: '28P01' });
      await expect(proxyClient(proxy, info, { name: 'nobody', password: 'x' }).connect()).rejects.toMatchObject({ code: '28P01' });
    } finally {
      await proxy.close();
    }
  });

  it('password (cleartext) works over TLS and is refused without it', async () => {
    const proxy = await startTestProxy(info, { auth: { method: 'password' }, tls: { cert_file: cert.certFile, key_file: cert.keyFile } });
    try {
      const secure = proxyClient(proxy, info, app, { ssl: { ca: cert.cert } });
      await secure.connect();
      expect((await secure.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
      await secure.end();
      await expect(proxyClient(proxy, info).connect()).rejects.toMatchObject({ code: '28000', message: expect.stringMatching(/only over TLS/) });
    } finally {
      await proxy.close();
    }
  });

  it('hba rules: first match wins, reject, hostssl, and no match gives 28000', async () => {
    const proxy = await startTestProxy(info, {
      tls: { cert_file: cert.certFile, key_file: cert.keyFile },
      auth: {
        hba: [
          { type: 'host', database: ['app'], user: [info.users.scram.name], address: '127.0.0.1/32', method: 'reject' },
          { type: 'hostssl', database: ['postgres'], user: ['all'], address: 'all', method: 'md5' },
          { type: 'host', database: ['app'], user: [app.name], address: '10.0.0.0/8', method: 'trust' },
          { type: 'host', database: ['app'], user: [app.name], address: '127.0.0.0/8', method: 'scram-sha-256' },
        ],
      },
    });
    try {
      await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]));
      await expect(proxyClient(proxy, info, info.users.scram).connect()).rejects.toMatchObject({ code: '28000', message: expect.stringMatching(/rejects/) });
      const plainToPostgres = new pg.Client({ host: proxy.host, port: proxy.port, user: app.name, password: app.password, database: 'postgres' });
      await expect(plainToPostgres.connect()).rejects.toMatchObject({ code: '28000', message: expect.stringMatching(/no pgproxy hba rule/) });
      const sslToPostgres = new pg.Client({ host: proxy.host, port: proxy.port, user: app.name, password: app.password, database: 'postgres', ssl: { ca: cert.cert } });
      await sslToPostgres.connect();
      await sslToPostgres.end();
    } finally {
      await proxy.close();
    }
  });

  it('too many failed logins from one address are refused for a while, even with the right password', async () => {
    const proxy = await startTestProxy(info, { auth: { max_failures_per_minute: 3 } });
    try {
      for (let i = 0; i < 3; i++) await expect(proxyClient(proxy, info, { name: app.name, password: 'nope' }).connect()).rejects.toMatchObject({ code: '28P01' });
      await expect(proxyClient(proxy, info).connect()).rejects.toMatchObject({ code: '28000', message: expect.stringMatching(/too many failed login attempts/) });
    } finally {
      await proxy.close();
    }
  });

  it('a client that does not finish authentication is closed at listen.auth_timeout_ms', async () => {
    const proxy = await startTestProxy(info, { listen: { auth_timeout_ms: 500 } });
    try {
      const s = await connectRaw(proxy.port);
      s.write(Buffer.from([0, 0, 0, 40])); // a startup packet that never completes
      const { data, closed } = await readUntilClose(s, 5000);
      expect(closed).toBe(true);
      expect(data.toString('latin1')).toMatch(/authentication timeout/);
      await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]));
    } finally {
      await proxy.close();
    }
  });
});

describe('backend TLS', () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    // Writes certificates into the data directories: local binaries only.
    cluster = await throwawayCluster({ provider: 'local' });
    for (let i = 0; i < cluster.info.nodes.length; i++) {
      const dataDir = cluster.info.nodes[i]!.dataDir;
      for (const [from, to] of [[cert.certFile, 'server.crt'], [cert.keyFile, 'server.key']] as const) {
        const target = path.join(dataDir, to);
        copyFileSync(from, target);
        if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', target]);
        execFileSync('chmod', ['0600', target]);
      }
      await cluster.query(i === 0 ? 0 : i, i === 0 ? 'ALTER SYSTEM SET ssl = on' : 'SELECT 1');
    }
    // Standbys take ssl from their own postgresql.auto.conf, which pg_basebackup copied before the change.
    for (let i = 1; i < cluster.info.nodes.length; i++) {
      execFileSync('bash', ['-c', `echo "ssl = on" >> ${path.join(cluster.info.nodes[i]!.dataDir, 'postgresql.conf')}`]);
    }
    for (let i = 0; i < cluster.info.nodes.length; i++) await cluster.query(i, 'SELECT pg_reload_conf()');
    // pg_reload_conf() only signals the postmaster: wait until new sessions (forked after the reload) see ssl on.
    await eventually(async () => {
      for (let i = 0; i < cluster.info.nodes.length; i++) if ((await cluster.query<{ ssl: string }>(i, 'SHOW ssl'))[0]!.ssl !== 'on') return false;
      return true;
    }, 20_000, 50, 'ssl on at every node');
  }, 180_000);

  afterAll(async () => {
    await cluster?.down({ purge: true });
  });

  async function sslUsed(mode: string, ca: Buffer | null): Promise<boolean[]> {
    const proxy = await startTestProxy(cluster.info, { backend_tls: { mode, ...(ca ? { ca_file: cert.certFile } : {}) } as never });
    try {
      return await withProxyClient(proxy, cluster.info, async (c) => {
        const onPrimary = (await c.query(`/*NO LOAD BALANCE*/ SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`)).rows[0].ssl as boolean;
        const onStandby = (await c.query(`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`)).rows[0].ssl as boolean;
        return [onPrimary, onStandby];
      });
    } finally {
      await proxy.close();
    }
  }

  it('disable, prefer, require and verify-full (with the right CA) behave like libpq sslmode', async () => {
    expect(await sslUsed('disable', null)).toEqual([false, false]);
    expect(await sslUsed('prefer', null)).toEqual([true, true]);
    expect(await sslUsed('require', null)).toEqual([true, true]);
    expect(await sslUsed('verify-full', cert.cert)).toEqual([true, true]);
  });

  it('verify-full with a CA that did not sign the server certificate does not log in', async () => {
    const other = makeCert();
    try {
      await expect(startTestProxy(cluster.info, { backend_tls: { mode: 'verify-full', ca_file: other.certFile } as never, pool: { connect_timeout_ms: 3000 } }).then(async (p) => {
        try {
          await withProxyClient(p, cluster.info, (c) => c.query('SELECT 1'));
        } finally {
          await p.close();
        }
      })).rejects.toThrow();
    } finally {
      rmSync(other.dir, { recursive: true, force: true });
    }
  });
});
