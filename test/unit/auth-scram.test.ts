import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { md5PasswordHash } from '../../src/wire/auth/md5.js';
import {
  SCRAM_MECHANISM,
  ScramClient,
  ScramError,
  ScramServer,
  type ScramVerifier,
  formatScramVerifier,
  makeScramVerifier,
  mockScramVerifier,
  parseScramVerifier,
  saslprep,
  scramVerifierFromSecret,
  secretKind,
} from '../../src/wire/auth/scram.js';

// node-postgres' own SASL client (what every `pg` user runs), driven in memory.
interface PgSaslSession {
  mechanism: string;
  response: string;
}
const require = createRequire(import.meta.url);
const pgSasl = require('pg/lib/crypto/sasl') as {
  startSession(mechanisms: string[], stream?: unknown): PgSaslSession;
  continueSession(session: PgSaslSession, password: string, serverData: string, stream?: unknown): Promise<void>;
  finalizeSession(session: PgSaslSession, serverData: string): void;
};

/** SASLInitialResponse: 'p', int32 length, mechanism cstring, int32 data length, data. */
function decodeSaslInitialResponse(frame: Buffer): { mechanism: string; data: Buffer } {
  expect(frame[0]).toBe(0x70);
  expect(frame.readInt32BE(1)).toBe(frame.length - 1);
  const nul = frame.indexOf(0, 5);
  const mechanism = frame.subarray(5, nul).toString('utf8');
  const len = frame.readInt32BE(nul + 1);
  const data = frame.subarray(nul + 5);
  expect(data.length).toBe(len);
  return { mechanism, data };
}

/** SASLResponse: 'p', int32 length, data. */
function decodeSaslResponse(frame: Buffer): Buffer {
  expect(frame[0]).toBe(0x70);
  expect(frame.readInt32BE(1)).toBe(frame.length - 1);
  return frame.subarray(5);
}

/** Runs node-postgres' client against our server over real protocol frames; returns the server's verdict. */
async function pgClientLogin(server: ScramServer, password: string) {
  const session = pgSasl.startSession([SCRAM_MECHANISM]);
  const first = decodeSaslInitialResponse(serialize.sendSASLInitialResponseMessage(session.mechanism, session.response));
  expect(first.data.toString()).toMatch(/^n,,n=\*,r=/); // node-postgres sends the user name as '*'
  const sf = server.handleClientFirst(first.mechanism, first.data);
  if (!sf.ok) throw new Error(`client-first refused: ${sf.reason}`);
  await pgSasl.continueSession(session, password, sf.serverFirst.toString('utf8'));
  const result = server.handleClientFinal(decodeSaslResponse(serialize.sendSCRAMClientFinalMessage(session.response)));
  if (result.ok) pgSasl.finalizeSession(session, result.serverFinal.toString('utf8')); // throws on a bad signature
  return result;
}

/** Our client against our server; returns the server's verdict on the final message. */
function ourLogin(server: ScramServer, client: ScramClient) {
  const sf = server.handleClientFirst(SCRAM_MECHANISM, client.clientFirstMessage());
  if (!sf.ok) throw new Error(`client-first refused: ${sf.reason}`);
  const result = server.handleClientFinal(client.handleServerFirst(sf.serverFirst));
  if (result.ok) client.verifyServerFinal(result.serverFinal);
  return result;
}

function verifierOf(s: string): ScramVerifier {
  const v = parseScramVerifier(s);
  if (!v) throw new Error('not a verifier');
  return v;
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

function expectScramError(fn: () => unknown, code: ScramError['code']): ScramError {
  const e = catchError(fn);
  expect(e).toBeInstanceOf(ScramError);
  expect((e as ScramError).code).toBe(code);
  return e as ScramError;
}

/**
 * Verifiers made by real PostgreSQL code: libpq 15.18's PQencryptPasswordConn(conn,
 * password, user, "scram-sha-256") (the same scram-common.c and saslprep.c the
 * server uses), called through the installed libpq.so.5.15 without any server.
 * Passwords are chosen to hit each SASLprep branch.
 */
const LIBPQ_VERIFIERS: Array<[string, string, string]> = [
  ['ascii', 'secret', 'SCRAM-SHA-256$4096:4wcQfPuoe7w8DWTIwZ0ZuA==$j4s1OcQ1epJysvu4fEc/5UC1810GXExjTSEqxugdt/w=:jt2f/4fN56TsGF3amlzvlpQoAh96W7nQiqhT8JHzXzk='],
  ['ASCII controls are kept', '\u0001\u007f ascii', 'SCRAM-SHA-256$4096:6wam4NyCBw1aPd1HfsZ6YQ==$XYxjcr7TIaViek0EBqVOHSg1hRc/lFqKwVQnm6DJWBQ=:rRy1ZXAZiSYApOUzgcguGMvmvS5LZArj61irrFMC9LI='],
  ['precomposed', 'P\u00e4ssw\u00f6rd', 'SCRAM-SHA-256$4096:8dwjopJi+xgNAGxzTRVUcg==$/VHZ4QHnhUn/wa1wmS4VvH6TmVEDfN6U6pDCjRZHa8Y=:wb8x9hhko3NtPhPzPvdnt4lJjczxRY7LPe5a+6tk+vs='],
  ['decomposed (NFKC composes)', 'Pa\u0308sswo\u0308rd', 'SCRAM-SHA-256$4096:ScxLaGN5/JZ5IfgzMvPNUQ==$d8SvDXy/1OHembk5f2HBRAj94DiffIODT/UTj/ayD/0=:OT/moGnCgfYpc/Kom3E8SSi1TvFgCUjgdyi/EaCiNi0='],
  ['fullwidth (NFKC folds)', '\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44', 'SCRAM-SHA-256$4096:O9RObmq2eveUQ9ALAJhNVg==$Fb30I7alw4WhCKg1PdzLh5m7skgm1Po3QsI8g+5tftU=:1W4ItoABVFwRxkpmLV26wZvEecaLL3yvFdjr7Ye+ogE='],
  ['fullwidth + emoji (unassigned in 3.2: raw)', '\uff50\uff41\uff53\uff53\u{1F600}', 'SCRAM-SHA-256$4096:/+G25sCiafGZ6bBAhdJ8DA==$KnDGa/P4kRFuQqa8+PnoF4KHhdFK2LUTQVQdwjco854=:oMUL2t4l0d4sveOST6m+2uASVzQ3az1bB/2Ykt1r0Ns='],
  ['non-ASCII space mapped', '\u00e9\u00a0x', 'SCRAM-SHA-256$4096:Yl9WChiAjfmSHZCtPPUoMw==$ZXhD6uQHFbE6fBJp5HNla4TF3/0Z6jXKwnxJ3abykyw=:0LtW7H+0arhYFr8AIdrmOxTRaCYOZrTpHodFtTAmves='],
  ['only mapped-to-nothing (empty: raw)', '\u00ad', 'SCRAM-SHA-256$4096:fulLqMnT0uuS1mBAGGAvqA==$jsnVK9nmaj42DOU6GHbiu0ax+QbFtXKgg3BF7e3In74=:63N5FnIsyq/omSgZdk/jXX3VtmI3pwPIxP4EWgr2UQM='],
  ['soft hyphen dropped, em space mapped', 'x\u00ady\u2003z\u20ac', 'SCRAM-SHA-256$4096:uTADnBFm7EmyL74/tObCBg==$9/Pf+NQkbuhOHfN3prCFbfO9fI14dWmi6iBNPPI1J9U=:2igHuAvNLQtffaDKqaI5zTyQ9Tbyy4T+uLbX89+xZjQ='],
  ['ligature', '\ufb01', 'SCRAM-SHA-256$4096:SyOUDtgiwl5tpkKBQs+Jyg==$IwAjiGK9Wg5GL62kVUJzHduYGfPQ8hZ86kRP5zcYJFE=:HAxhAgKy+usLR8LwDg5tnayXRqySdQrM/q8C4KJb488='],
  ['RTL only', '\u05d0\ufb2a', 'SCRAM-SHA-256$4096:G7y9fdY5OgfLYdgJ3gD2dw==$Et3TQerwgg364PsQTHohxPG0DrLc+unHZbjtZWgc/R4=:J9Uwx6ZZDd3duawSubX9Excr8JCd6TymH10/M0NQv5o='],
  ['RTL mixed with LTR (bidi: raw)', '\u05d0a\u05d1', 'SCRAM-SHA-256$4096:IY/Pc5aGDDDuTy7gpTLXtA==$5upaysQOXbMfXBLDhoLn68s1IUg2xVwVs2dZVApZuC0=:tG3EFLfBIRFcsIJPrHz1AsqAfc+yQmmbS4DIlDHhtLg='],
  ['RTL not first (bidi: raw)', '\uff11\u05d0', 'SCRAM-SHA-256$4096:keEnW/gwDeGn1Ay6FPMsLQ==$fZpeLVSdx1Vnh7dFrhiI52Tz8ix78qhgyclKa1NSG1s=:HrsFuxdhAppIwV99lN87SOvphXoKTXr7CeKZhbBFkD4='],
  ['tab makes a non-ASCII password prohibited (raw)', '\t\uff41', 'SCRAM-SHA-256$4096:jF6yVdQ5lh1Fs7jM8/KeYw==$tjGsx0mlKpYGyfKuHVohu0adjvlGTb4uszenchfYviU=:IdtzQlZkouuscQYTeVF6FpOSVyYnTtUE4Npz9c749jk='],
  ['private use (raw)', '\ue000\uff41', 'SCRAM-SHA-256$4096:H0l/yl4WuftwwF63VfaEXQ==$LW8Oegpw4pbYZIV4l2SJNAo/vjgNOKIvJRV3ADn0lT8=:8ebgGaMwQgQWTC76kKJfWdfh766+3/Jb5O+yjouWar0='],
  ['zero-width space becomes a space', '\uff41\u200b', 'SCRAM-SHA-256$4096:y5MWIQxxgCiedUd3HRRqEA==$byLKPccNNXOo673TV4bbgMAEqI8KH2LkG8u/QThe760=:R3i+EPr8wBJp5XtLOR4clPckLF+1+NcF1yxu87r643k='],
  ['assigned after Unicode 3.2 (raw)', '\u0221\uff41', 'SCRAM-SHA-256$4096:yeCYbt3/9/qiYTuvhQhUWw==$5endk1fN8ecKzHiyAoerrBdV/Vz/yWz6vyfSlANkB0U=:eEx2FZq1INm1F2Xh4Royg7rJ7LqeSk65M4iKL9/p4ZU='],
  ['Hangul jamo compose', '\u1100\u1161', 'SCRAM-SHA-256$4096:UFGG0HqoZTErhdioyU8o7Q==$Pv7ZNMSB9Ruhb7y7vuyV0R4RLE44bLuFGf4U7mBVHtk=:PgXDfq1CPAlifHfDcQ54YajwLIpcbGTGScbOo/ACOlk='],
  ['roman numeral', 'caf\u00e9 \u2160', 'SCRAM-SHA-256$4096:A3K9u061N+0HtY+eE1KuxA==$3OQNtYlqBqaRUTd9DQk51CyoUzL6cbcmjb6VPLwpDpQ=:rUzTBbCJtxI1L3nmnUqyFFmbFp7vRfAEGxA/8GJTiXw='],
];

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

describe('failures', () => {
  const verifier = verifierOf(makeScramVerifier('right', { iterations: 16 }));

  it('wrong password: 28P01 from the server, and nothing leaks into the reason', () => {
    const result = ourLogin(new ScramServer(verifier), new ScramClient('wrong'));
    expect(result).toEqual({ ok: false, reason: 'password authentication failed', sqlstate: '28P01' });
  });

  it('a tampered proof fails, every bit of it', () => {
    const client = new ScramClient('right', 'CLIENTNONCE');
    const server = new ScramServer(verifier, 'SERVERNONCE');
    const sf = server.handleClientFirst(SCRAM_MECHANISM, client.clientFirstMessage());
    if (!sf.ok) throw new Error('unexpected');
    const final = client.handleServerFirst(sf.serverFirst).toString();
    const [head, proofB64] = final.split(',p=') as [string, string];
    const proof = Buffer.from(proofB64, 'base64');
    for (let bit = 0; bit < 256; bit += 7) {
      const tampered = Buffer.from(proof);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      const s = new ScramServer(verifier, 'SERVERNONCE');
      s.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=CLIENTNONCE'));
      expect(s.handleClientFinal(Buffer.from(`${head},p=${tampered.toString('base64')}`))).toMatchObject({ ok: false, sqlstate: '28P01' });
    }
    // The untampered one still works on a fresh exchange with the same nonces.
    const s = new ScramServer(verifier, 'SERVERNONCE');
    s.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=CLIENTNONCE'));
    expect(s.handleClientFinal(Buffer.from(final)).ok).toBe(true);
  });

  it('a proof replayed into another exchange (other server nonce) fails', () => {
    const client = new ScramClient('right', 'CLIENTNONCE');
    const server = new ScramServer(verifier, 'NONCE1');
    const sf = server.handleClientFirst(SCRAM_MECHANISM, client.clientFirstMessage());
    if (!sf.ok) throw new Error('unexpected');
    const final = client.handleServerFirst(sf.serverFirst).toString();
    const other = new ScramServer(verifier, 'NONCE2');
    other.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=CLIENTNONCE'));
    expect(other.handleClientFinal(Buffer.from(final))).toMatchObject({ ok: false, sqlstate: '08P01' }); // nonce mismatch
  });

  it('client-final with another nonce: 08P01', () => {
    const server = new ScramServer(verifier, 'SRV');
    server.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=CLI'));
    const result = server.handleClientFinal(Buffer.from(`c=biws,r=CLISRVX,p=${Buffer.alloc(32).toString('base64')}`));
    expect(result).toEqual({ ok: false, reason: 'SCRAM nonce does not match', sqlstate: '08P01' });
  });

  it('the client refuses a server nonce that does not extend its own', () => {
    for (const r of ['OTHERxyz', 'CLI', 'CL', 'xCLIabc']) {
      const client = new ScramClient('right', 'CLI');
      client.clientFirstMessage();
      expectScramError(() => client.handleServerFirst(Buffer.from(`r=${r},s=c2FsdA==,i=4096`)), 'SCRAM_PROTOCOL');
    }
  });

  it('the client refuses bad iteration counts quickly (no PBKDF2 of 2^31 rounds)', () => {
    for (const i of ['0', '-1', '01', '1.5', '', 'x', '4096 ', '99999999999', '2147483647', '100001']) {
      const client = new ScramClient('right', 'CLI');
      client.clientFirstMessage();
      const started = Date.now();
      expectScramError(() => client.handleServerFirst(Buffer.from(`r=CLISRV,s=c2FsdA==,i=${i}`)), 'SCRAM_PROTOCOL');
      expect(Date.now() - started).toBeLessThan(100);
    }
    const client = new ScramClient('right', 'CLI', { maxIterations: 10 });
    client.clientFirstMessage();
    expectScramError(() => client.handleServerFirst(Buffer.from('r=CLISRV,s=c2FsdA==,i=11')), 'SCRAM_PROTOCOL');
  });

  it.each([
    [''],
    ['r=CLISRV'],
    ['r=CLISRV,s=c2FsdA=='],
    ['s=c2FsdA==,r=CLISRV,i=4096'],
    ['r=CLISRV,s=,i=4096'],
    ['r=CLISRV,s=not base64!,i=4096'],
    ['r=CLISRV,s=c2FsdA,i=4096'],
    ['r=CLISRV,s=c2FsdA==,i=4096,'],
    ['r=CLISRV,s=c2FsdA==,i=4096,x=extra'],
    ['m=mandatory-ext,r=CLISRV,s=c2FsdA==,i=4096'],
    ['r=CLI SRV,s=c2FsdA==,i=4096'],
    ['r=CLISRV\0,s=c2FsdA==,i=4096'],
    ['e=other-error'],
  ])('the client refuses server-first %j with ScramError', (serverFirst) => {
    const client = new ScramClient('right', 'CLI');
    client.clientFirstMessage();
    expectScramError(() => client.handleServerFirst(Buffer.from(serverFirst)), 'SCRAM_PROTOCOL');
    // Spent after a failure.
    expectScramError(() => client.handleServerFirst(Buffer.from('r=CLISRV,s=c2FsdA==,i=1')), 'SCRAM_PROTOCOL');
  });

  it('server-final: wrong signature, e= error, malformed', () => {
    const run = (serverFinal: string, code: ScramError['code']) => {
      const client = new ScramClient('right', 'CLI');
      client.clientFirstMessage();
      client.handleServerFirst(Buffer.from('r=CLISRV,s=c2FsdA==,i=1'));
      return expectScramError(() => client.verifyServerFinal(Buffer.from(serverFinal)), code);
    };
    run(`v=${Buffer.alloc(32).toString('base64')}`, 'SCRAM_SERVER_SIGNATURE');
    run(`v=${Buffer.alloc(31).toString('base64')}`, 'SCRAM_SERVER_SIGNATURE');
    run('v=', 'SCRAM_SERVER_SIGNATURE');
    run('v=%%%', 'SCRAM_SERVER_SIGNATURE');
    expect(run('e=invalid-proof', 'SCRAM_PROTOCOL').message).toContain('invalid-proof');
    run('', 'SCRAM_PROTOCOL');
    run('x=1', 'SCRAM_PROTOCOL');
    run(`v=${Buffer.alloc(32).toString('base64')},x=1`, 'SCRAM_PROTOCOL');
  });

  it('a server that does not know the verifier cannot fake the final signature', () => {
    const real = verifierOf(makeScramVerifier('right', { iterations: 16 }));
    // An impostor that learned StoredKey (enough to check proofs) but not ServerKey.
    const impostor = new ScramServer({ ...real, serverKey: randomBytes(32) });
    const client = new ScramClient('right');
    const sf = impostor.handleClientFirst(SCRAM_MECHANISM, client.clientFirstMessage());
    if (!sf.ok) throw new Error('unexpected');
    const result = impostor.handleClientFinal(client.handleServerFirst(sf.serverFirst));
    if (!result.ok) throw new Error('unexpected');
    expectScramError(() => client.verifyServerFinal(result.serverFinal), 'SCRAM_SERVER_SIGNATURE');
  });

  it('client calls out of order throw ScramError', () => {
    expectScramError(() => new ScramClient('x').handleServerFirst(Buffer.from('r=a,s=c2FsdA==,i=1')), 'SCRAM_PROTOCOL');
    expectScramError(() => new ScramClient('x').verifyServerFinal(Buffer.from('v=')), 'SCRAM_PROTOCOL');
    const c = new ScramClient('x', 'CLI');
    c.clientFirstMessage();
    expectScramError(() => c.verifyServerFinal(Buffer.from('v=')), 'SCRAM_PROTOCOL');
  });

  it.each([
    ['SCRAM-SHA-256-PLUS', 'p=tls-server-end-point,,n=,r=abc'],
    ['SCRAM-SHA-256-PLUS', 'n,,n=,r=abc'],
    ['PLAIN', 'n,,n=,r=abc'],
    ['', 'n,,n=,r=abc'],
    [SCRAM_MECHANISM, 'p=tls-server-end-point,,n=,r=abc'],
    [SCRAM_MECHANISM, ''],
    [SCRAM_MECHANISM, 'n'],
    [SCRAM_MECHANISM, 'n,'],
    [SCRAM_MECHANISM, 'n,,'],
    [SCRAM_MECHANISM, 'x,,n=,r=abc'],
    [SCRAM_MECHANISM, 'nn,,n=,r=abc'],
    [SCRAM_MECHANISM, 'n,a=admin,n=,r=abc'],
    [SCRAM_MECHANISM, 'n,x,n=,r=abc'],
    [SCRAM_MECHANISM, 'n,,m=ext,n=,r=abc'],
    [SCRAM_MECHANISM, 'n,,r=abc'],
    [SCRAM_MECHANISM, 'n,,n=,r='],
    [SCRAM_MECHANISM, 'n,,n=,r=a b'],
    [SCRAM_MECHANISM, 'n,,n=,r=abc\0'],
    [SCRAM_MECHANISM, 'n,,n=,x=abc'],
    [SCRAM_MECHANISM, 'n,,n=,r=abc,'],
    [SCRAM_MECHANISM, 'n,,n=,r=abc,=x'],
  ])('the server refuses client-first %j %j with 08P01', (mechanism, data) => {
    const server = new ScramServer(verifier);
    expect(server.handleClientFirst(mechanism, Buffer.from(data))).toMatchObject({ ok: false, sqlstate: '08P01' });
    // Spent after a failure, even for a good message.
    expect(server.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=abc')).ok).toBe(false);
  });

  it('the server ignores the user name and client-first extensions, as PostgreSQL does', () => {
    for (const data of ['n,,n=someone,r=abc', 'n,,n=*,r=abc', 'n,,n=a=2Cb,r=abc', 'n,,n=,r=abc,x=ext']) {
      expect(new ScramServer(verifier).handleClientFirst(SCRAM_MECHANISM, Buffer.from(data)).ok).toBe(true);
    }
  });

  it.each([
    [''],
    ['c=biws'],
    ['c=biws,r=CLISRV'],
    ['c=biws,r=CLISRV,p='],
    ['c=biws,r=CLISRV,p=AAAA'],
    ['c=biws,r=CLISRV,p=%PROOF%,x=1'],
    ['c=biws,r=CLISRV,p=%PROOF%\0'],
    ['c=eSws,r=CLISRV,p=%PROOF%'],
    ['c=biws=,r=CLISRV,p=%PROOF%'],
    ['c=,r=CLISRV,p=%PROOF%'],
    ['r=CLISRV,c=biws,p=%PROOF%'],
    ['c=biws,p=%PROOF%'],
    ['c=biws,r=CLI,p=%PROOF%'],
    ['c=biws,r=CLISRV,p=%PROOF%='],
    ['c=biws,r=CLISRV,p=!!!!'],
  ])('the server refuses client-final %j with 08P01', (template) => {
    const server = new ScramServer(verifier, 'SRV');
    server.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=CLI'));
    const data = template.replace('%PROOF%', Buffer.alloc(32, 7).toString('base64'));
    expect(server.handleClientFinal(Buffer.from(data))).toMatchObject({ ok: false, sqlstate: '08P01' });
  });

  it('the server accepts client-final extensions before the proof, as PostgreSQL does', () => {
    const client = new ScramClient('right', 'CLI');
    const server = new ScramServer(verifier, 'SRV');
    const sf = server.handleClientFirst(SCRAM_MECHANISM, client.clientFirstMessage());
    if (!sf.ok) throw new Error('unexpected');
    const final = client.handleServerFirst(sf.serverFirst).toString();
    // A proof over a different client-final-without-proof must fail: the extension is part of AuthMessage.
    const withExt = final.replace(',p=', ',x=ext,p=');
    expect(server.handleClientFinal(Buffer.from(withExt))).toMatchObject({ ok: false, sqlstate: '28P01' });
  });

  it('server calls out of order return ok:false', () => {
    const server = new ScramServer(verifier);
    expect(server.handleClientFinal(Buffer.from('c=biws,r=x,p=AAAA'))).toMatchObject({ ok: false, sqlstate: '08P01' });
    const s2 = new ScramServer(verifier);
    expect(s2.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=abc')).ok).toBe(true);
    expect(s2.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=abc')).ok).toBe(false);
    // and a finished exchange stays finished
    const client = new ScramClient('right');
    const s3 = new ScramServer(verifier);
    expect(ourLogin(s3, client).ok).toBe(true);
    expect(s3.handleClientFinal(Buffer.from('c=biws,r=x,p=AAAA')).ok).toBe(false);
  });

  it('random garbage never throws anything but ScramError, and never hangs', () => {
    const started = Date.now();
    const samples: Buffer[] = [];
    for (let n = 0; n < 300; n++) samples.push(randomBytes(n % 70));
    // Structured garbage: shuffles of SCRAM pieces.
    const pieces = ['n', 'y', 'p', ',', '=', 'r=', 's=', 'i=', 'c=', 'p=', 'v=', 'e=', 'CLI', 'SRV', 'biws', '1', 'AAAA', '\0', 'é'];
    for (let n = 0; n < 700; n++) {
      let s = '';
      for (let k = 0; k < (n % 12) + 1; k++) s += pieces[(n * 7 + k * 13 + ((n * k) % 5)) % pieces.length];
      samples.push(Buffer.from(s));
    }
    for (const data of samples) {
      const s1 = new ScramServer(verifier, 'SRV');
      const r1 = s1.handleClientFirst(SCRAM_MECHANISM, data);
      expect(typeof r1.ok).toBe('boolean');
      const s2 = new ScramServer(verifier, 'SRV');
      s2.handleClientFirst(SCRAM_MECHANISM, Buffer.from('n,,n=,r=CLI'));
      expect(s2.handleClientFinal(data).ok).toBe(false);

      const c1 = new ScramClient('right', 'CLI', { maxIterations: 64 });
      c1.clientFirstMessage();
      const e1 = catchError(() => c1.handleServerFirst(data));
      if (e1 !== undefined) expect(e1).toBeInstanceOf(ScramError);
      const c2 = new ScramClient('right', 'CLI');
      c2.clientFirstMessage();
      c2.handleServerFirst(Buffer.from('r=CLISRV,s=c2FsdA==,i=1'));
      expect(catchError(() => c2.verifyServerFinal(data))).toBeInstanceOf(ScramError);
    }
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('no error message contains the password', () => {
    const password = 'Pa55-unique-7c1f';
    const messages: string[] = [];
    const client = new ScramClient(password, 'CLI');
    client.clientFirstMessage();
    client.handleServerFirst(Buffer.from('r=CLISRV,s=c2FsdA==,i=1'));
    messages.push((catchError(() => client.verifyServerFinal(Buffer.from('v=AAAA'))) as Error).message);
    const server = new ScramServer(verifierOf(makeScramVerifier(password, { iterations: 1 })));
    const r = ourLogin(server, new ScramClient('not-' + password));
    if (!r.ok) messages.push(r.reason);
    expect(messages).toHaveLength(2);
    for (const m of messages) expect(m).not.toContain(password);
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
    expect(secretKind('secret')).toBe('plaintext');
    expect(secretKind(md5PasswordHash('u', 'p'))).toBe('md5');
    expect(secretKind(LIBPQ_VERIFIERS[0]![2])).toBe('scram-sha-256');
    expect(secretKind('SCRAM-SHA-256$garbage')).toBe('plaintext');
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

describe('saslprep', () => {
  it.each([
    ['secret', 'secret'],
    ['\u0001\t\u007f', '\u0001\t\u007f'], // ASCII is never touched
    ['', ''],
    ['Pa\u0308ss', 'P\u00e4ss'], // NFKC composes
    ['\uff41\uff42', 'ab'], // fullwidth folds
    ['\u00e9\u00a0x', '\u00e9 x'], // C.1.2 -> space
    ['\u00e9\u3000x', '\u00e9 x'],
    ['x\u00ady\u200dz\u00e9', 'xyz\u00e9'], // B.1 dropped
    ['\u00e9\u200b', '\u00e9 '], // U+200B is in C.1.2 and B.1; PostgreSQL maps it to a space
    ['\u2168', 'IX'],
    ['\u00ad', '\u00ad'], // nothing left: raw
    ['\uff41\u{1F600}', '\uff41\u{1F600}'], // unassigned in Unicode 3.2: raw
    ['\uff41\t', '\uff41\t'], // control character in a non-ASCII password: raw
    ['\uff41\ue000', '\uff41\ue000'], // private use: raw
    ['\u05d0\ufb2a', '\u05d0\u05e9\u05c1'], // RTL string normalised
    ['\u05d0a\u05d1', '\u05d0a\u05d1'], // RandALCat with LCat: raw
    ['\u05d01', '\u05d01'], // must end with RandALCat: raw
    ['\ud800\uff41', '\ud800\uff41'], // lone surrogate: raw
  ])('%j -> %j', (input, expected) => {
    expect(saslprep(input)).toBe(expected);
  });
});
