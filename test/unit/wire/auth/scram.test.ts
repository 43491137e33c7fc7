// SCRAM-SHA-256 exchanges that succeed: RFC 7677's vector, verifiers made by libpq, node-postgres' client, our
// client, pass-through keys, and the verifier helpers. Refusals are in scram-failures.test.ts.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { md5PasswordHash } from '../../../../src/wire/auth/md5.js';
import {
  SCRAM_MECHANISM,
  ScramClient,
  ScramServer,
  formatScramVerifier,
  makeScramVerifier,
  mockScramVerifier,
  parseScramVerifier,
  scramVerifierFromSecret,
  secretKind,
} from '../../../../src/wire/auth/scram.js';
import { expectScramError, LIBPQ_VERIFIERS, ourLogin, pgClientLogin, verifierOf } from './scram-helpers.js';

describe('RFC 7677 test vector (user "user", password "pencil")', () => {
  const clientNonce = 'rOprNGfwEbeRWgbNEkqO';
  const serverNonce = '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const clientFirst = 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO';
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  const clientFinal = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
  const serverFinal = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

  it('the client reproduces the RFC messages byte for byte', () => {
    const client = new ScramClient('pencil', clientNonce, { username: 'user' });
    expect(client.clientFirstMessage().toString()).toBe(clientFirst);
    expect(client.handleServerFirst(Buffer.from(serverFirst)).toString()).toBe(clientFinal);
    expect(() => client.verifyServerFinal(Buffer.from(serverFinal))).not.toThrow();
  });

  it('the server reproduces the RFC messages and accepts the RFC proof', () => {
    const server = new ScramServer(verifierOf(makeScramVerifier('pencil', { salt, iterations: 4096 })), serverNonce);
    const first = server.handleClientFirst(SCRAM_MECHANISM, Buffer.from(clientFirst));
    expect(first.ok && first.serverFirst.toString()).toBe(serverFirst);
    const final = server.handleClientFinal(Buffer.from(clientFinal));
    expect(final.ok && final.serverFinal.toString()).toBe(serverFinal);
  });

  it('the verifier equals the RFC 5802 definitions computed by hand', () => {
    const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    expect(makeScramVerifier('pencil', { salt, iterations: 4096 })).toBe(
      `SCRAM-SHA-256$4096:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`,
    );
    // And the server hands back exactly that ClientKey.
    const server = new ScramServer(verifierOf(makeScramVerifier('pencil', { salt, iterations: 4096 })), serverNonce);
    server.handleClientFirst(SCRAM_MECHANISM, Buffer.from(clientFirst));
    const final = server.handleClientFinal(Buffer.from(clientFinal));
    expect(final.ok && final.clientKey.equals(clientKey)).toBe(true);
  });
});

describe('verifiers made by PostgreSQL (libpq 15)', () => {
  it.each(LIBPQ_VERIFIERS)('%s: same verifier from the same salt, and our client logs in', (_label, password, pgVerifier) => {
    const v = verifierOf(pgVerifier);
    expect(makeScramVerifier(password, { salt: v.salt, iterations: v.iterations })).toBe(pgVerifier);
    expect(formatScramVerifier(v)).toBe(pgVerifier);
    expect(ourLogin(new ScramServer(v), new ScramClient(password)).ok).toBe(true);
    expect(ourLogin(new ScramServer(v), new ScramClient(password + 'x')).ok).toBe(false);
  });
});

describe('node-postgres client against ScramServer', () => {
  it('logs in with a verifier derived from a plaintext secret', async () => {
    const result = await pgClientLogin(new ScramServer(scramVerifierFromSecret('secret')!), 'secret');
    expect(result.ok).toBe(true);
  });

  it('logs in with a verifier string from makeScramVerifier', async () => {
    const v = verifierOf(makeScramVerifier('s3cr3t, with=commas'));
    expect((await pgClientLogin(new ScramServer(v), 's3cr3t, with=commas')).ok).toBe(true);
  });

  it('logs in with verifiers made by libpq (PostgreSQL format)', async () => {
    for (const [, password, pgVerifier] of LIBPQ_VERIFIERS.slice(0, 5)) {
      expect((await pgClientLogin(new ScramServer(verifierOf(pgVerifier)), password)).ok).toBe(true);
    }
  });

  it('is refused with 28P01 for a wrong password', async () => {
    const result = await pgClientLogin(new ScramServer(scramVerifierFromSecret('secret')!), 'Secret');
    expect(result).toEqual({ ok: false, reason: 'password authentication failed', sqlstate: '28P01' });
  });

  it('the ClientKey recovered from its proof is the real one', async () => {
    const salt = randomBytes(16);
    const v = verifierOf(makeScramVerifier('pw', { salt, iterations: 4096 }));
    const result = await pgClientLogin(new ScramServer(v), 'pw');
    const salted = pbkdf2Sync('pw', salt, 4096, 32, 'sha256');
    expect(result.ok && result.clientKey.equals(createHmac('sha256', salted).update('Client Key').digest())).toBe(true);
  });
});

describe('ScramClient against ScramServer', () => {
  it('logs in with plaintext-derived and string verifiers, any iteration count', () => {
    expect(ourLogin(new ScramServer(scramVerifierFromSecret('hunter2')!), new ScramClient('hunter2')).ok).toBe(true);
    for (const iterations of [1, 4096, 10000]) {
      const v = verifierOf(makeScramVerifier('hunter2', { iterations }));
      expect(ourLogin(new ScramServer(v), new ScramClient('hunter2')).ok).toBe(true);
    }
  });

  it('sends an empty user name and no channel binding, like libpq', () => {
    const first = new ScramClient('x').clientFirstMessage().toString();
    expect(first).toMatch(/^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    expect(new ScramClient('x', 'abc', { username: 'a,b=c' }).clientFirstMessage().toString()).toBe('n,,n=a=2Cb=3Dc,r=abc');
  });

  it('uses fresh nonces', () => {
    const a = new ScramClient('x').clientFirstMessage().toString();
    const b = new ScramClient('x').clientFirstMessage().toString();
    expect(a).not.toBe(b);
  });

  it('accepts the y flag (client could bind, server offers no -PLUS)', () => {
    const server = new ScramServer(verifierOf(makeScramVerifier('pw', { iterations: 1 })), 'SRV');
    const first = server.handleClientFirst(SCRAM_MECHANISM, Buffer.from('y,,n=,r=CLI'));
    expect(first.ok).toBe(true);
    // c= must then carry 'y,,'; 'n,,' (biws) is a binding mismatch.
    const server2 = new ScramServer(verifierOf(makeScramVerifier('pw', { iterations: 1 })), 'SRV');
    server2.handleClientFirst(SCRAM_MECHANISM, Buffer.from('y,,n=,r=CLI'));
    const final = server2.handleClientFinal(Buffer.from(`c=biws,r=CLISRV,p=${Buffer.alloc(32).toString('base64')}`));
    expect(final).toMatchObject({ ok: false, sqlstate: '08P01' });
  });
});

describe('SCRAM pass-through (ScramClient.fromKeys)', () => {
  const backendVerifier = makeScramVerifier('backend-pw', { iterations: 4096 });

  it('a client key recovered by the proxy logs in to a backend with the same verifier', async () => {
    // Client -> pgproxy (node-postgres as the client), pgproxy configured with the backend's verifier string.
    const proxySide = new ScramServer(verifierOf(backendVerifier));
    const fromClient = await pgClientLogin(proxySide, 'backend-pw');
    if (!fromClient.ok) throw new Error('client login failed');
    // pgproxy -> backend (the backend modelled by a ScramServer over the same stored verifier).
    const v = verifierOf(backendVerifier);
    const backend = new ScramServer(v);
    const client = ScramClient.fromKeys({ clientKey: fromClient.clientKey, serverKey: v.serverKey, salt: v.salt, iterations: v.iterations });
    expect(ourLogin(backend, client).ok).toBe(true); // also checked the backend's signature
  });

  it('works with keys only (salt and iterations come from the backend)', () => {
    const v = verifierOf(backendVerifier);
    const first = ourLogin(new ScramServer(v), new ScramClient('backend-pw'));
    if (!first.ok) throw new Error('unexpected');
    expect(ourLogin(new ScramServer(v), ScramClient.fromKeys({ clientKey: first.clientKey, serverKey: v.serverKey })).ok).toBe(true);
  });

  it('fails at the backend when its verifier has another salt (same password)', () => {
    const v = verifierOf(backendVerifier);
    const first = ourLogin(new ScramServer(v), new ScramClient('backend-pw'));
    if (!first.ok) throw new Error('unexpected');
    const otherBackend = new ScramServer(verifierOf(makeScramVerifier('backend-pw')));
    expect(ourLogin(otherBackend, ScramClient.fromKeys({ clientKey: first.clientKey, serverKey: v.serverKey }))).toMatchObject({
      ok: false,
      sqlstate: '28P01',
    });
    // With salt/iterations given, the mismatch is caught before sending a proof.
    const client = ScramClient.fromKeys({ clientKey: first.clientKey, serverKey: v.serverKey, salt: v.salt, iterations: v.iterations });
    const sf = new ScramServer(verifierOf(makeScramVerifier('backend-pw'))).handleClientFirst(SCRAM_MECHANISM, client.clientFirstMessage());
    if (!sf.ok) throw new Error('unexpected');
    expectScramError(() => client.handleServerFirst(sf.serverFirst), 'SCRAM_PROTOCOL');
  });

  it('rejects keys of the wrong size', () => {
    expect(() => ScramClient.fromKeys({ clientKey: Buffer.alloc(31), serverKey: Buffer.alloc(32) })).toThrow(TypeError);
  });
});

describe('verifiers and secrets', () => {
  it('parseScramVerifier reads PostgreSQL format and refuses anything else', () => {
    const [, , pg] = LIBPQ_VERIFIERS[0]!;
    const v = verifierOf(pg);
    expect(v.iterations).toBe(4096);
    expect(v.salt.length).toBe(16);
    expect(v.storedKey.length).toBe(32);
    expect(v.serverKey.length).toBe(32);
    const key = Buffer.alloc(32, 1).toString('base64');
    for (const bad of [
      '',
      'secret',
      md5PasswordHash('u', 'p'),
      `SCRAM-SHA-256$0:c2FsdA==$${key}:${key}`,
      `SCRAM-SHA-256$-1:c2FsdA==$${key}:${key}`,
      `SCRAM-SHA-256$x:c2FsdA==$${key}:${key}`,
      `SCRAM-SHA-256$4096:$${key}:${key}`,
      `SCRAM-SHA-256$4096:c2FsdA$${key}:${key}`,
      `SCRAM-SHA-256$4096:c2FsdA==$${key}`,
      `SCRAM-SHA-256$4096:c2FsdA==$${key}:${Buffer.alloc(31).toString('base64')}`,
      `SCRAM-SHA-1$4096:c2FsdA==$${key}:${key}`,
      `SCRAM-SHA-256$4096:c2FsdA==$${key}:${key}$`,
      ` SCRAM-SHA-256$4096:c2FsdA==$${key}:${key}`,
    ]) {
      expect(parseScramVerifier(bad)).toBeNull();
    }
  });

  it('makeScramVerifier defaults to 4096 iterations and a fresh 16-byte salt', () => {
    const a = verifierOf(makeScramVerifier('pw'));
    const b = verifierOf(makeScramVerifier('pw'));
    expect(a.iterations).toBe(4096);
    expect(a.salt.length).toBe(16);
    expect(a.salt.equals(b.salt)).toBe(false);
    expect(a.storedKey.equals(b.storedKey)).toBe(false);
    expect(() => makeScramVerifier('pw', { iterations: 0 })).toThrow(TypeError);
    expect(() => makeScramVerifier('pw', { iterations: 1.5 })).toThrow(TypeError);
    expect(() => makeScramVerifier('pw', { salt: Buffer.alloc(0) })).toThrow(TypeError);
  });

  it('scramVerifierFromSecret: plaintext derived once and cached, SCRAM parsed, md5 impossible', () => {
    const a = scramVerifierFromSecret('cached-secret');
    const b = scramVerifierFromSecret('cached-secret');
    expect(a).not.toBeNull();
    expect(a).toBe(b); // same object: no PBKDF2 per login, stable salt for the client
    expect(scramVerifierFromSecret('other-secret')!.salt.equals(a!.salt)).toBe(false);
    const [, , pg] = LIBPQ_VERIFIERS[0]!;
    expect(scramVerifierFromSecret(pg)).toEqual(verifierOf(pg));
    expect(scramVerifierFromSecret(md5PasswordHash('u', 'p'))).toBeNull();
  });

  it('secretKind follows PostgreSQL', () => {
    expect(secretKind('secret')).toBe('plain');
    expect(secretKind(md5PasswordHash('u', 'p'))).toBe('md5');
    expect(secretKind(LIBPQ_VERIFIERS[0]![2])).toBe('scram');
    expect(secretKind('SCRAM-SHA-256$garbage')).toBe('plain');
  });

  it('mockScramVerifier runs a full exchange that always fails with 28P01, salt stable per user', () => {
    const m1 = mockScramVerifier('nobody');
    const m2 = mockScramVerifier('nobody');
    expect(m1.salt.equals(m2.salt)).toBe(true);
    expect(mockScramVerifier('someone').salt.equals(m1.salt)).toBe(false);
    expect(m1.salt.length).toBe(16);
    expect(ourLogin(new ScramServer(m1), new ScramClient(''))).toMatchObject({ ok: false, sqlstate: '28P01' });
  });

  it('ScramServer and ScramClient reject invalid constructor arguments with TypeError', () => {
    const v = verifierOf(makeScramVerifier('pw', { iterations: 1 }));
    expect(() => new ScramServer({ ...v, storedKey: Buffer.alloc(3) })).toThrow(TypeError);
    expect(() => new ScramServer({ ...v, iterations: 0 })).toThrow(TypeError);
    expect(() => new ScramServer(v, 'has,comma')).toThrow(TypeError);
    expect(() => new ScramClient('pw', '')).toThrow(TypeError);
    expect(() => new ScramClient('pw', undefined, { maxIterations: 0 })).toThrow(TypeError);
  });
});
