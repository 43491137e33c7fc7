// SCRAM-SHA-256 exchanges that must be refused, on both sides: wrong passwords, tampered and replayed proofs,
// malformed or out-of-order messages, hostile iteration counts, and random garbage.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SCRAM_MECHANISM, ScramClient, ScramError, ScramServer, makeScramVerifier } from '../../../../src/wire/auth/scram.js';
import { catchError, expectScramError, ourLogin, verifierOf } from './scram-helpers.js';

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
