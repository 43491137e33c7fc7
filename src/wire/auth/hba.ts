/** Access rules like pg_hba.conf: the first rule matching (connection type, database, user, address) decides. */
import { BlockList, isIPv4 } from 'node:net';
import { parseCidr } from '../../config/formats.js';
import type { HbaMethod, HbaRule } from '../../config/types.js';

export interface CompiledHbaRule {
  readonly rule: HbaRule;
  /** Null for 'all'. */
  readonly addresses: BlockList | null;
  readonly family: 'ipv4' | 'ipv6' | null;
}

export function compileHba(rules: readonly HbaRule[]): CompiledHbaRule[] {
  return rules.map((rule) => {
    if (rule.address === 'all') return { rule, addresses: null, family: null };
    const cidr = parseCidr(rule.address)!;
    const list = new BlockList();
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    return { rule, addresses: list, family: cidr.family };
  });
}

export interface ConnectionFacts {
  database: string;
  user: string;
  /** Client address as the socket reports it (IPv4-mapped IPv6 is handled). */
  address: string;
  tls: boolean;
}

/** The method of the first matching rule, or null when no rule matches (the client is refused). */
export function hbaMethod(rules: readonly CompiledHbaRule[], c: ConnectionFacts): HbaMethod | null {
  // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; they are IPv4 clients.
  const mapped = c.address.startsWith('::ffff:') && isIPv4(c.address.slice(7)) ? c.address.slice(7) : c.address;
  const family = isIPv4(mapped) ? 'ipv4' : 'ipv6';
  for (const { rule, addresses, family: ruleFamily } of rules) {
    if (rule.type === 'hostssl' && !c.tls) continue;
    if (rule.type === 'hostnossl' && c.tls) continue;
    if (!matchesName(rule.database, c.database, c.user)) continue;
    if (!matchesName(rule.user, c.user, c.user)) continue;
    // As in PostgreSQL, an address matches only rules of its own family (BlockList alone would let ::/0 match IPv4).
    if (addresses !== null && (ruleFamily !== family || !addresses.check(mapped, family))) continue;
    return rule.method;
  }
  return null;
}

function matchesName(list: readonly string[], name: string, user: string): boolean {
  for (const entry of list) {
    if (entry === 'all' || entry === name) return true;
    // pg_hba.conf's samerole-like shortcut for databases named after the user.
    if (entry === 'sameuser' && name === user) return true;
  }
  return false;
}
