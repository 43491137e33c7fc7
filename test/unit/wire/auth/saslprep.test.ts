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
  ])('%j -> %j', (input, expected) => {
    expect(saslprep(input)).toBe(expected);
  });
});
