/** Value formats the config validates and the proxy compiles: function patterns and CIDR blocks. */
import { isIP } from 'node:net';

/**
 * The matcher for a routing.write_functions / read_only_functions entry.
 * Anchored at both ends, as pgpool-II anchors write_function_list entries.
 */
export function functionPattern(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

/** A CIDR block as (address, prefix length, family), or null when malformed. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return null;
  const max = family === 4 ? 32 : 128;
  const digits = slash < 0 ? null : text.slice(slash + 1);
  // Digits only: Number('') is 0, and '10.0.0.0/' must not become a rule matching every address.
  if (digits !== null && !/^[0-9]{1,3}$/.test(digits)) return null;
  const prefix = digits === null ? max : Number(digits);
  if (prefix > max) return null;
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}
