/**
 * Decoders for the client's authentication messages, all of type 'p': which
 * one it is depends on the request pgproxy sent. `body` is the message after
 * its type byte and length.
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { MessageError } from '../frontend.js';

/**
 * PasswordMessage: one NUL-terminated string (a cleartext password or an md5
 * response). Like PostgreSQL, anything but exactly one string is malformed.
 * @throws MessageError
 */
export function passwordFromMessage(body: Buffer): string {
  const z = body.indexOf(0);
  if (z < 0 || z !== body.length - 1) throw new MessageError('invalid password packet size');
  return body.toString('utf8', 0, z);
}

/**
 * SASLInitialResponse: the mechanism (a string), then Int32 length and that
 * many bytes of initial response; a length of -1 means no initial response,
 * returned as empty data.
 * @throws MessageError when the parts do not fill the message exactly.
 */
export function saslInitialResponse(body: Buffer): { mechanism: string; data: Buffer } {
  const z = body.indexOf(0);
  if (z < 0 || body.length < z + 5) throw new MessageError('malformed SASLInitialResponse');
  const mechanism = body.toString('utf8', 0, z);
  const len = body.readInt32BE(z + 1);
  const rest = body.length - (z + 5);
  if (len === -1 ? rest !== 0 : len !== rest) throw new MessageError('malformed SASLInitialResponse');
  return { mechanism, data: body.subarray(z + 5) };
}
