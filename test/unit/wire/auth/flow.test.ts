// The auth flows driven as a real client drives them: our frames are read by pg-protocol's parser, the client's
// messages are built by pg-protocol's serializer, and the SCRAM and md5 client math is node-postgres' own.
import { createHmac, pbkdf2Sync } from 'node:crypto';
import { createRequire } from 'node:module';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import { describe, expect, it } from 'vitest';
import { parseScramVerifier } from '../../../../src/config/secrets.js';
import { MessageError } from '../../../../src/wire/frontend.js';
import { createAuthFlow } from '../../../../src/wire/auth/create-flow.js';
import type { AuthFlow, AuthStep } from '../../../../src/wire/auth/flow.js';
import { md5PasswordHash } from '../../../../src/wire/auth/md5.js';
import { makeScramVerifier, ScramClient, ScramServer } from '../../../../src/wire/auth/scram.js';

const require = createRequire(import.meta.url);
const pgCrypto = require('pg/lib/crypto/utils') as {
  postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string>;
};
interface PgSaslSession {
  mechanism: string;
  response: string;
}
const pgSasl = require('pg/lib/crypto/sasl') as {
  startSession(mechanisms: string[]): PgSaslSession;
  continueSession(session: PgSaslSession, password: string, serverData: string): Promise<void>;
  finalizeSession(session: PgSaslSession, serverData: string): void;
};

/** What node-postgres' parser reads from one of our frames. */
interface AuthMessage {
  name: string;
  length: number;
  salt?: Buffer;
  mechanisms?: string[];
  data?: string;
}

/** Exactly one backend message, read by pg-protocol's parser (which also checks the frame length). */
function readFrame(frame: Buffer): AuthMessage {
  const out: AuthMessage[] = [];
  new Parser().parse(frame, (m) => out.push(m as unknown as AuthMessage));
  expect(out).toHaveLength(1);
  expect(out[0]!.length).toBe(frame.length - 1);
  return out[0]!;
}

/** The body of a frontend frame (what the flow receives): after the type byte 'p' and the length. */
function body(frame: Buffer): Buffer {
  expect(frame[0]).toBe(0x70);
  expect(frame.readInt32BE(1)).toBe(frame.length - 1);
  return frame.subarray(5);
}

function reply(step: AuthStep): AuthMessage {
  if (step.kind !== 'reply') throw new Error(`expected a reply, got ${step.kind}`);
  return readFrame(step.message);
}

/** A client answering the md5 or cleartext request `flow` starts with, as node-postgres does. */
async function passwordLogin(flow: AuthFlow, user: string, password: string): Promise<AuthStep> {
  const request = readFrame(flow.start());
  if (request.name === 'authenticationMD5Password') {
    return flow.next(body(serialize.password(await pgCrypto.postgresMd5PasswordHash(user, password, request.salt!))));
  }
  expect(request.name).toBe('authenticationCleartextPassword');
  return flow.next(body(serialize.password(password)));
}

/** node-postgres' SASL client through the whole exchange; returns the final step, having checked the server's signature on 'done'. */
async function scramLogin(flow: AuthFlow, password: string): Promise<{ step: AuthStep; serverFirst: string }> {
  const request = readFrame(flow.start());
  expect(request.name).toBe('authenticationSASL');
  expect(request.mechanisms).toEqual(['SCRAM-SHA-256']);
  const session = pgSasl.startSession(request.mechanisms!);
  const cont = reply(flow.next(body(serialize.sendSASLInitialResponseMessage(session.mechanism, session.response))));
  expect(cont.name).toBe('authenticationSASLContinue');
  await pgSasl.continueSession(session, password, cont.data!);
  const step = flow.next(body(serialize.sendSCRAMClientFinalMessage(session.response)));
  if (step.kind === 'done') {
    expect(step.message).not.toBeNull();
    const final = readFrame(step.message!);
    expect(final.name).toBe('authenticationSASLFinal');
    pgSasl.finalizeSession(session, final.data!); // throws when the signature is wrong
  }
  return { step, serverFirst: cont.data! };
}

function saltOf(serverFirst: string): string {
  return /,s=([^,]+),/.exec(serverFirst)![1]!;
}

const USER = 'alice';
const PASSWORD = 'correct horse';
const VERIFIER = makeScramVerifier(PASSWORD, { iterations: 4096 });
// Made by libpq 15 (PQencryptPasswordConn) for 'P\u00e4ssw\u00f6rd' (precomposed).
const LIBPQ_VERIFIER = 'SCRAM-SHA-256$4096:8dwjopJi+xgNAGxzTRVUcg==$/VHZ4QHnhUn/wa1wmS4VvH6TmVEDfN6U6pDCjRZHa8Y=:wb8x9hhko3NtPhPzPvdnt4lJjczxRY7LPe5a+6tk+vs=';

describe('createAuthFlow picks the exchange', () => {
  it.each([
    ['md5', PASSWORD, 'md5', 'authenticationMD5Password'],
    ['md5', md5PasswordHash(USER, PASSWORD), 'md5', 'authenticationMD5Password'],
    ['md5', null, 'md5', 'authenticationMD5Password'],
    // Like PostgreSQL: md5 with a stored SCRAM verifier authenticates with SCRAM.
    ['md5', VERIFIER, 'scram-sha-256', 'authenticationSASL'],
    // A malformed verifier is plaintext (as PostgreSQL reads it), so md5 it is.
    ['md5', 'SCRAM-SHA-256$garbage', 'md5', 'authenticationMD5Password'],
    ['scram-sha-256', PASSWORD, 'scram-sha-256', 'authenticationSASL'],
    ['scram-sha-256', md5PasswordHash(USER, PASSWORD), 'scram-sha-256', 'authenticationSASL'],
    ['scram-sha-256', VERIFIER, 'scram-sha-256', 'authenticationSASL'],
    ['scram-sha-256', null, 'scram-sha-256', 'authenticationSASL'],
    ['password', PASSWORD, 'password', 'authenticationCleartextPassword'],
    ['password', VERIFIER, 'password', 'authenticationCleartextPassword'],
    ['password', null, 'password', 'authenticationCleartextPassword'],
  ] as const)('%s with secret %j runs %s', (method, secret, runs, request) => {
    const flow = createAuthFlow(method, USER, secret);
    expect(flow.method).toBe(runs);
    expect(readFrame(flow.start()).name).toBe(request);
  });
});

describe('md5 flow', () => {
  it('accepts the right password against a plaintext or an md5-hash secret', async () => {
    for (const secret of [PASSWORD, md5PasswordHash(USER, PASSWORD)]) {
      expect(await passwordLogin(createAuthFlow('md5', USER, secret), USER, PASSWORD)).toEqual({ kind: 'done', message: null, scramKeys: null });
    }
  });

  it('fails a wrong password, and the right password hashed for another user', async () => {
    expect(await passwordLogin(createAuthFlow('md5', USER, PASSWORD), USER, 'wrong')).toEqual({ kind: 'fail' });
    expect(await passwordLogin(createAuthFlow('md5', USER, PASSWORD), 'bob', PASSWORD)).toEqual({ kind: 'fail' });
  });

  it('an unknown user gets a salt like anyone else and fails only after answering', async () => {
    const flow = createAuthFlow('md5', 'nobody', null);
    const request = readFrame(flow.start());
    expect(request.name).toBe('authenticationMD5Password');
    expect(request.salt).toHaveLength(4);
    expect(flow.next(body(serialize.password(await pgCrypto.postgresMd5PasswordHash('nobody', '', request.salt!))))).toEqual({ kind: 'fail' });
  });

  it('an empty stored secret is no secret: even the md5 of an empty password fails', async () => {
    expect(await passwordLogin(createAuthFlow('md5', USER, ''), USER, '')).toEqual({ kind: 'fail' });
  });

  it('uses a fresh salt per flow, and the same flow keeps its salt', () => {
    const salts = new Set<string>();
    for (let i = 0; i < 32; i++) {
      const flow = createAuthFlow('md5', USER, PASSWORD);
      const a = readFrame(flow.start()).salt!.toString('hex');
      expect(readFrame(flow.start()).salt!.toString('hex')).toBe(a);
      salts.add(a);
    }
    expect(salts.size).toBeGreaterThan(28);
  });

  it('an answer for another salt fails', async () => {
    const flow = createAuthFlow('md5', USER, PASSWORD);
    const salt = Buffer.from(readFrame(flow.start()).salt!.map((b) => b ^ 0xff));
    expect(flow.next(body(serialize.password(await pgCrypto.postgresMd5PasswordHash(USER, PASSWORD, salt))))).toEqual({ kind: 'fail' });
  });

  it('takes one answer: a second message fails even when it is right', async () => {
    const flow = createAuthFlow('md5', USER, PASSWORD);
    const salt = readFrame(flow.start()).salt!;
    const right = body(serialize.password(await pgCrypto.postgresMd5PasswordHash(USER, PASSWORD, salt)));
    expect(flow.next(body(serialize.password('md5' + '0'.repeat(32)))).kind).toBe('fail');
    expect(flow.next(right).kind).toBe('fail');
  });

  it('throws MessageError for a PasswordMessage that is not exactly one string', async () => {
    const flow = createAuthFlow('md5', USER, PASSWORD);
    const salt = readFrame(flow.start()).salt!;
    const answer = await pgCrypto.postgresMd5PasswordHash(USER, PASSWORD, salt);
    for (const bad of [Buffer.alloc(0), Buffer.from(answer), Buffer.from(`${answer}\0x`), Buffer.from(`${answer}\0\0`)]) {
      expect(() => flow.next(bad)).toThrow(MessageError);
    }
    // Nothing was consumed by the malformed messages.
    expect(flow.next(body(serialize.password(answer))).kind).toBe('done');
  });

  it('with a stored SCRAM verifier, runs SCRAM and hands back the pass-through keys', async () => {
    const { step } = await scramLogin(createAuthFlow('md5', USER, VERIFIER), PASSWORD);
    expect(step.kind).toBe('done');
    expect(step.kind === 'done' && step.scramKeys).not.toBeNull();
    expect((await scramLogin(createAuthFlow('md5', USER, VERIFIER), 'wrong')).step).toEqual({ kind: 'fail' });
  });
});

describe('cleartext (password) flow', () => {
  it('checks the password against plaintext, md5-hash and SCRAM secrets', async () => {
    for (const secret of [PASSWORD, md5PasswordHash(USER, PASSWORD), VERIFIER]) {
      expect(await passwordLogin(createAuthFlow('password', USER, secret), USER, PASSWORD)).toEqual({ kind: 'done', message: null, scramKeys: null });
      expect(await passwordLogin(createAuthFlow('password', USER, secret), USER, PASSWORD + ' ')).toEqual({ kind: 'fail' });
      expect(await passwordLogin(createAuthFlow('password', USER, secret), USER, '')).toEqual({ kind: 'fail' });
    }
  });

  it('an md5-hash secret is bound to its user', async () => {
    expect(await passwordLogin(createAuthFlow('password', 'bob', md5PasswordHash(USER, PASSWORD)), 'bob', PASSWORD)).toEqual({ kind: 'fail' });
  });

  it('the stored md5 hash itself is not the password (unless the secret is plaintext)', async () => {
    const hash = md5PasswordHash(USER, PASSWORD);
    expect(await passwordLogin(createAuthFlow('password', USER, hash), USER, hash)).toEqual({ kind: 'fail' });
  });

  it('applies SASLprep against a verifier made by libpq: the decomposed spelling logs in', async () => {
    expect((await passwordLogin(createAuthFlow('password', USER, LIBPQ_VERIFIER), USER, 'P\u00e4ssw\u00f6rd')).kind).toBe('done');
    expect((await passwordLogin(createAuthFlow('password', USER, LIBPQ_VERIFIER), USER, 'Pa\u0308sswo\u0308rd')).kind).toBe('done');
    expect((await passwordLogin(createAuthFlow('password', USER, LIBPQ_VERIFIER), USER, 'Passwort')).kind).toBe('fail');
  });

  it('an unknown user fails after answering', async () => {
    expect(await passwordLogin(createAuthFlow('password', 'nobody', null), 'nobody', PASSWORD)).toEqual({ kind: 'fail' });
  });

  it('takes one answer', () => {
    const flow = createAuthFlow('password', USER, PASSWORD);
    flow.start();
    expect(flow.next(body(serialize.password('wrong'))).kind).toBe('fail');
    expect(flow.next(body(serialize.password(PASSWORD))).kind).toBe('fail');
  });

  it('throws MessageError for a PasswordMessage that is not exactly one string', () => {
    const flow = createAuthFlow('password', USER, PASSWORD);
    flow.start();
    for (const bad of [Buffer.alloc(0), Buffer.from(PASSWORD), Buffer.from(`${PASSWORD}\0${PASSWORD}\0`)]) {
      expect(() => flow.next(bad)).toThrow(MessageError);
    }
    expect(flow.next(body(serialize.password(PASSWORD))).kind).toBe('done');
  });
});

describe('SCRAM flow', () => {
  it('logs in node-postgres against a plaintext secret, without pass-through keys', async () => {
    const { step } = await scramLogin(createAuthFlow('scram-sha-256', USER, PASSWORD), PASSWORD);
    expect(step).toMatchObject({ kind: 'done', scramKeys: null });
  });

  it('against a stored verifier, returns the real ClientKey with the verifier\'s ServerKey, salt and iterations', async () => {
    const { step } = await scramLogin(createAuthFlow('scram-sha-256', USER, VERIFIER), PASSWORD);
    if (step.kind !== 'done' || step.scramKeys === null) throw new Error(`expected done with keys, got ${JSON.stringify(step)}`);
    const v = parseScramVerifier(VERIFIER)!;
    const salted = pbkdf2Sync(PASSWORD, v.salt, v.iterations, 32, 'sha256');
    expect(step.scramKeys.clientKey.equals(createHmac('sha256', salted).update('Client Key').digest())).toBe(true);
    expect(step.scramKeys.serverKey.equals(v.serverKey)).toBe(true);
    expect(step.scramKeys.salt!.equals(v.salt)).toBe(true);
    expect(step.scramKeys.iterations).toBe(v.iterations);
    // And the keys log in to a backend holding that verifier (modelled by a ScramServer), checking its signature.
    const backend = new ScramServer(v);
    const client = ScramClient.fromKeys(step.scramKeys);
    const first = backend.handleClientFirst('SCRAM-SHA-256', client.clientFirstMessage());
    if (!first.ok) throw new Error(first.reason);
    const final = backend.handleClientFinal(client.handleServerFirst(first.serverFirst));
    if (!final.ok) throw new Error(final.reason);
    expect(() => client.verifyServerFinal(final.serverFinal)).not.toThrow();
  });

  it('logs in with a verifier made by libpq, SASLprep applied', async () => {
    expect((await scramLogin(createAuthFlow('scram-sha-256', USER, LIBPQ_VERIFIER), 'P\u00e4ssw\u00f6rd')).step.kind).toBe('done');
  });

  it('fails a wrong password only at the final step', async () => {
    for (const secret of [PASSWORD, VERIFIER]) {
      expect((await scramLogin(createAuthFlow('scram-sha-256', USER, secret), 'wrong')).step).toEqual({ kind: 'fail' });
    }
  });

  it('an unknown user, or one with only an md5 hash, goes through the whole exchange and fails at its end', async () => {
    for (const [user, secret] of [['nobody', null], [USER, md5PasswordHash(USER, PASSWORD)]] as const) {
      const { step, serverFirst } = await scramLogin(createAuthFlow('scram-sha-256', user, secret), PASSWORD);
      expect(serverFirst).toMatch(/^r=[\x21-\x2b\x2d-\x7e]+,s=[A-Za-z0-9+/]{22}==,i=4096$/);
      expect(step).toEqual({ kind: 'fail' });
    }
  });

  it("an unknown user's salt is stable, like a real user's, and differs between names", async () => {
    const a = saltOf((await scramLogin(createAuthFlow('scram-sha-256', 'nobody', null), 'x')).serverFirst);
    const b = saltOf((await scramLogin(createAuthFlow('scram-sha-256', 'nobody', null), 'y')).serverFirst);
    const c = saltOf((await scramLogin(createAuthFlow('scram-sha-256', 'someone', null), 'x')).serverFirst);
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    const real1 = saltOf((await scramLogin(createAuthFlow('scram-sha-256', USER, 'stable-salt-pw'), 'x')).serverFirst);
    const real2 = saltOf((await scramLogin(createAuthFlow('scram-sha-256', USER, 'stable-salt-pw'), 'x')).serverFirst);
    expect(real1).toBe(real2);
  });

  it('refuses other mechanisms and channel binding: fail, not a protocol error', () => {
    const cases: Array<[string, string]> = [
      ['SCRAM-SHA-256-PLUS', 'p=tls-server-end-point,,n=*,r=abc'],
      ['PLAIN', 'n,,n=*,r=abc'],
      ['SCRAM-SHA-256', 'p=tls-server-end-point,,n=*,r=abc'],
      ['SCRAM-SHA-256', 'garbage'],
    ];
    for (const [mechanism, data] of cases) {
      const flow = createAuthFlow('scram-sha-256', USER, PASSWORD);
      flow.start();
      expect(flow.next(body(serialize.sendSASLInitialResponseMessage(mechanism, data)))).toEqual({ kind: 'fail' });
      // Spent: a good client-first afterwards fails too.
      expect(flow.next(body(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=*,r=abc')))).toEqual({ kind: 'fail' });
    }
  });

  it('a SASLInitialResponse without initial response (length -1) fails', () => {
    const flow = createAuthFlow('scram-sha-256', USER, PASSWORD);
    flow.start();
    const msg = Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    expect(flow.next(msg)).toEqual({ kind: 'fail' });
  });

  it('throws MessageError for a SASLInitialResponse whose parts do not fill the message', () => {
    const good = body(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=*,r=abc'));
    const int32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n);
      return b;
    };
    const malformed = [
      Buffer.alloc(0),
      Buffer.from('SCRAM-SHA-256'), // no NUL
      Buffer.from('SCRAM-SHA-256\0\0\0'), // length cut short
      Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(13), Buffer.from('n,,n=*,r=abc')]), // says 13, has 12
      Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(11), Buffer.from('n,,n=*,r=abc')]), // says 11, has 12
      Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(-2)]),
      Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(-1), Buffer.from('x')]),
    ];
    const flow = createAuthFlow('scram-sha-256', USER, PASSWORD);
    flow.start();
    for (const bad of malformed) expect(() => flow.next(bad), bad.toString('hex')).toThrow(MessageError);
    // Nothing was consumed by them.
    expect(reply(flow.next(good)).name).toBe('authenticationSASLContinue');
  });

  it('a malformed client-final fails, and the flow is spent', async () => {
    const flow = createAuthFlow('scram-sha-256', USER, PASSWORD);
    flow.start();
    const session = pgSasl.startSession(['SCRAM-SHA-256']);
    const cont = reply(flow.next(body(serialize.sendSASLInitialResponseMessage(session.mechanism, session.response))));
    await pgSasl.continueSession(session, PASSWORD, cont.data!);
    expect(flow.next(Buffer.from('c=biws,r=nope,p=AAAA'))).toEqual({ kind: 'fail' });
    expect(flow.next(body(serialize.sendSCRAMClientFinalMessage(session.response)))).toEqual({ kind: 'fail' });
  });

  it('after done, any further message fails', async () => {
    const flow = createAuthFlow('scram-sha-256', USER, PASSWORD);
    expect((await scramLogin(flow, PASSWORD)).step.kind).toBe('done');
    expect(flow.next(Buffer.from('c=biws,r=x,p=AAAA'))).toEqual({ kind: 'fail' });
  });
});
