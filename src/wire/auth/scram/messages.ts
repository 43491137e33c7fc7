/**
 * Pieces of SCRAM messages shared by the server and the client: attribute
 * lists, printable nonces, names. SCRAM messages are ASCII `a=value,b=value`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc5802#section-7
 */
import { randomBytes } from 'node:crypto';

export { decodeBase64Strict as decodeBase64, parseIterationCount as parseIterations } from '../../../config/secrets.js';

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';

/** No channel binding, no authzid: what pgproxy sends as a client. */
export const GS2_HEADER = 'n,,';
export const GS2_HEADER_B64 = Buffer.from(GS2_HEADER).toString('base64'); // 'biws'

export const COMMA = Buffer.from(',');

const NONCE_BYTES = 18; // PostgreSQL's SCRAM_RAW_NONCE_LEN; base64 of it is 24 printable chars

/** printable = %x21-2B / %x2D-7E (RFC 5802), i.e. visible ASCII except ','. */
export function isPrintable(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

/**
 * Splits `a=value,b=value,...` into [name, value] pairs. SCRAM values never
 * contain ',' (names escape it as =2C, base64 has none, nonces exclude it), so a
 * plain split is exact. Null when a part is not `<letter>=...`.
 */
export function splitAttributes(text: string): Array<[string, string]> | null {
  const out: Array<[string, string]> = [];
  for (const part of text.split(',')) {
    if (part.length < 2 || part.charCodeAt(1) !== 0x3d /* = */ || !/^[A-Za-z]$/.test(part[0]!)) return null;
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}

/** RFC 5802 saslname: ',' and '=' escaped. */
export function encodeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64');
}

/** A nonce given by a caller (tests): checked, since it goes into messages as is. */
export function checkNonceArgument(nonce: string): string {
  if (!isPrintable(nonce)) throw new TypeError('SCRAM nonce must be non-empty printable ASCII without commas');
  return nonce;
}
