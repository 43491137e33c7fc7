/**
 * Reading libpg-query's JSON parse trees: typed access to its objects, the `{ Type: body }` node form, constants,
 * and the UTF-8 byte offsets its locations are given in. Pure helpers for parser-facts.ts.
 */
import { EMPTY } from './cursor.js';

/** A JSON object of the tree. */
export type Obj = { readonly [key: string]: unknown };

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const obj = (v: unknown): Obj | null => (isObj(v) ? v : null);
export const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
export const list = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : EMPTY);

/** The single `{ Type: body }` entry of a node. */
export function nodeOf(v: unknown): [type: string, body: Obj] | null {
  const o = obj(v);
  if (o === null) return null;
  for (const k in o) {
    const body = obj(o[k]);
    return body === null ? null : [k, body];
  }
  return null;
}

/** The smallest `location` in a subtree, or -1. */
export function firstLocation(v: unknown): number {
  let best = -1;
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) for (const y of x) visit(y);
    else if (isObj(x)) {
      for (const k in x) {
        const y = x[k];
        if (k === 'location') {
          if (typeof y === 'number' && y >= 0 && (best < 0 || y < best)) best = y;
        } else visit(y);
      }
    }
  };
  visit(v);
  return best;
}

/** A constant's text: a string's value, a number's digits, a boolean as true/false; null for anything else. */
export function constText(v: unknown): string | null {
  const n = nodeOf(v);
  if (n === null) return null;
  const [type, b] = n;
  if (type === 'TypeCast') return constText(b.arg);
  if (type === 'String') return str(b.sval);
  if (type === 'Integer') return String(typeof b.ival === 'number' ? b.ival : 0);
  if (type === 'Float') return str(b.fval);
  if (type === 'Boolean') return b.boolval === true ? 'true' : 'false';
  if (type !== 'A_Const' || b.isnull === true) return null;
  const sval = obj(b.sval);
  if (sval !== null) return str(sval.sval) ?? '';
  const ival = obj(b.ival);
  if (ival !== null) return String(typeof ival.ival === 'number' ? ival.ival : 0);
  const fval = obj(b.fval);
  if (fval !== null) return str(fval.fval);
  const boolval = obj(b.boolval);
  if (boolval !== null) return boolval.boolval === true ? 'true' : 'false';
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Byte offsets (the parser's locations are offsets in its UTF-8 input)

export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** For each UTF-8 byte offset of s (and its end), the string index of the character there. */
export function utf8Index(s: string): Int32Array {
  const out = new Int32Array(Buffer.byteLength(s, 'utf8') + 1).fill(-1);
  let b = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[b] = i;
    if (c < 0x80) b += 1;
    else if (c < 0x800) b += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      b += 4;
      i++;
    } else b += 3;
  }
  out[b] = s.length;
  return out;
}
