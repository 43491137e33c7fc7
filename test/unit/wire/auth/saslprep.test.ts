import saslprepLibrary from '@mongodb-js/saslprep';
import { describe, expect, it } from 'vitest';
import { saslprep } from '../../../../src/wire/auth/scram.js';

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
    ['\u1d2c', '\u1d2c'], // unassigned in Unicode 3.2 before NFKC (which gives 'A'): raw, as PostgreSQL checks first
  ])('%j -> %j', (input, expected) => {
    expect(saslprep(input)).toBe(expected);
  });

  // RFC 4013 section 3; where the RFC says "error", PostgreSQL (and so pgproxy) uses the raw password.
  const RFC_4013_EXAMPLES: [input: string, rfc: string | null, postgres: string][] = [
    ['I\u00adX', 'IX', 'IX'], // SOFT HYPHEN mapped to nothing
    ['user', 'user', 'user'], // no transformation
    ['USER', 'USER', 'USER'], // case preserved
    ['\u00aa', 'a', 'a'], // output is NFKC, input in ISO 8859-1
    ['\u2168', 'IX', 'IX'], // output is NFKC
    ['\u0007', null, '\u0007'], // error: prohibited character
    ['\u0627\u0031', null, '\u0627\u0031'], // error: bidirectional check
  ];

  it.each(RFC_4013_EXAMPLES)('RFC 4013 example %j', (input, rfc, postgres) => {
    expect(saslprep(input)).toBe(postgres);
    // the RFC-following library agrees on every example, its errors being PostgreSQL's raw password
    if (rfc === null) expect(() => saslprepLibrary(input)).toThrow();
    else expect(saslprepLibrary(input)).toBe(rfc);
  });

  it('differs from the RFC order where PostgreSQL checks before normalising (why pgproxy keeps its own tables)', () => {
    const rfcOrder = (s: string): string => {
      try {
        return saslprepLibrary(s);
      } catch {
        return s;
      }
    };
    expect(rfcOrder('\u1d2c')).toBe('A');
    expect(saslprep('\u1d2c')).toBe('\u1d2c');
    expect(rfcOrder('\u05d0\ufb2a')).toBe('\u05d0\ufb2a');
    expect(saslprep('\u05d0\ufb2a')).toBe('\u05d0\u05e9\u05c1');
  });
});
