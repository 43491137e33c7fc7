// Shared by the SCRAM unit tests: node-postgres' SASL client and our own client driven against ScramServer, and
// verifiers made by real PostgreSQL code.
import { createRequire } from 'node:module';
import { serialize } from 'pg-protocol';
import { expect } from 'vitest';
import { SCRAM_MECHANISM, ScramClient, ScramError, ScramServer, parseScramVerifier, type ScramVerifier } from '../../../../src/wire/auth/scram.js';

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
export function decodeSaslInitialResponse(frame: Buffer): { mechanism: string; data: Buffer } {
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
export function decodeSaslResponse(frame: Buffer): Buffer {
  expect(frame[0]).toBe(0x70);
  expect(frame.readInt32BE(1)).toBe(frame.length - 1);
  return frame.subarray(5);
}

/** Runs node-postgres' client against our server over real protocol frames; returns the server's verdict. */
export async function pgClientLogin(server: ScramServer, password: string) {
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
export function ourLogin(server: ScramServer, client: ScramClient) {
  const sf = server.handleClientFirst(SCRAM_MECHANISM, client.clientFirstMessage());
  if (!sf.ok) throw new Error(`client-first refused: ${sf.reason}`);
  const result = server.handleClientFinal(client.handleServerFirst(sf.serverFirst));
  if (result.ok) client.verifyServerFinal(result.serverFinal);
  return result;
}

export function verifierOf(s: string): ScramVerifier {
  const v = parseScramVerifier(s);
  if (!v) throw new Error('not a verifier');
  return v;
}

export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

export function expectScramError(fn: () => unknown, code: ScramError['code']): ScramError {
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
export const LIBPQ_VERIFIERS: Array<[string, string, string]> = [
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
