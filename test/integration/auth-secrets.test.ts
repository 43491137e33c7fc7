// Which stored secrets can log in to which backends: md5 hashes answer md5 backends; SCRAM verifiers check
// clients and log in to SCRAM backends by pass-through of the client's proof; auth.query finds secrets in
// PostgreSQL itself. pgproxy refuses, at startup, a secret that cannot answer its backend.
import { describe, expect, it } from 'vitest';
import { StartupError } from '../../src/server.js';
import { md5PasswordHash } from '../../src/wire/auth/md5.js';
import { makeScramVerifier } from '../../src/wire/auth/scram.js';
import { sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { proxyClient, startTestProxy, withProxyClient } from './helpers/proxy.js';

const info = sharedCluster();

async function storedSecret(user: string): Promise<string> {
  const cluster = await sharedClusterHandle();
  const rows = await cluster.query<{ p: string }>(0, 'SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [user]);
  return rows[0]!.p;
}

describe('stored secrets', () => {
  it('an md5 hash logs in to an md5 backend, and clients authenticate against it', async () => {
    const app = info.users.app;
    const proxy = await startTestProxy(info, { auth: { users: [{ name: app.name, password: md5PasswordHash(app.name, app.password) }] } });
    try {
      await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: app.name }]));
    } finally {
      await proxy.close();
    }
  });

  it('an md5 hash for a user whose backend asks for SCRAM is refused at startup', async () => {
    const u = info.users.scram;
    await expect(startTestProxy(info, { auth: { users: [{ name: u.name, password: md5PasswordHash(u.name, u.password) }] } })).rejects.toThrow(StartupError);
  });

  it("SCRAM pass-through: with the backend's own verifier, the client's proof logs in to the backend", async () => {
    const u = info.users.scram;
    const verifier = await storedSecret(u.name);
    expect(verifier).toMatch(/^SCRAM-SHA-256\$/);
    const proxy = await startTestProxy(info, { auth: { users: [{ name: u.name, password: verifier }] } });
    try {
      await withProxyClient(proxy, info, async (c) => {
        expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: u.name }]);
        // Both a standby and the primary were logged in to with the client's proof.
        expect((await c.query('/*NO LOAD BALANCE*/ SELECT current_user AS u')).rows).toEqual([{ u: u.name }]);
      }, u);
      await expect(proxyClient(proxy, info, { name: u.name, password: 'wrong' }).connect()).rejects.toMatchObject({ code: '28P01' });
    } finally {
      await proxy.close();
    }
  });

  it('a SCRAM verifier that is not the backend\'s (another salt) checks the client but the backend refuses the login', async () => {
    const u = info.users.scram;
    const proxy = await startTestProxy(info, { auth: { users: [{ name: u.name, password: makeScramVerifier(u.password) }] } });
    try {
      await expect(proxyClient(proxy, info, u).connect()).rejects.toMatchObject({ code: '28P01' });
    } finally {
      await proxy.close();
    }
  });

  it('auth.query finds md5 and SCRAM secrets in PostgreSQL for users not in the config', async () => {
    const su = info.users.superuser;
    const proxy = await startTestProxy(info, {
      auth: { users: [], query: 'SELECT usename, passwd FROM pg_shadow WHERE usename = $1', query_user: su.name, query_password: su.password },
      health_check: { user: info.users.monitor.name, password: info.users.monitor.password },
    });
    try {
      await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: info.users.app.name }]));
      await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: info.users.scram.name }]), info.users.scram);
      await expect(proxyClient(proxy, info, { name: info.users.app.name, password: 'wrong' }).connect()).rejects.toMatchObject({ code: '28P01' });
      await expect(proxyClient(proxy, info, { name: 'no_such_role', password: 'x' }).connect()).rejects.toMatchObject({ code: '28P01' });
    } finally {
      await proxy.close();
    }
  });
});
