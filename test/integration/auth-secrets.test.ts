// Which stored secrets can log in to which backends: pgproxy refuses, at startup, users it could authenticate
// but then not log in to a backend as.
import { describe, expect, it } from 'vitest';
import { StartupError } from '../../src/server.js';
import { md5PasswordHash } from '../../src/wire/auth/md5.js';
import { makeScramVerifier } from '../../src/wire/auth/scram.js';
import { sharedCluster } from './helpers/cluster.js';
import { startTestProxy, withProxyClient } from './helpers/proxy.js';

const info = sharedCluster();

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

  it('a SCRAM verifier is refused at startup: it cannot log in to a backend', async () => {
    const u = info.users.scram;
    await expect(startTestProxy(info, { auth: { users: [{ name: u.name, password: makeScramVerifier(u.password) }] } })).rejects.toThrow(/cannot log in to a backend/);
  });
});
