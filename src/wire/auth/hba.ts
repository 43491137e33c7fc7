/** Access rules like pg_hba.conf: the first rule matching (connection type, database, user, address) decides. */
import { BlockList, isIPv4 } from 'node:net';
import { parseCidr, type HbaMethod, type HbaRule } from '../../config/schema.js';

export interface CompiledHbaRule {
  readonly rule: HbaRule;
  readonly addresses: BlockList | null;
}

export function compileHba(rules: readonly HbaRule[]): CompiledHbaRule[] {
  return rules.map((rule) => {
    if (rule.address === 'all') return { rule, addresses: null };
    const cidr = parseCidr(rule.address)!;
    const list = new BlockList();
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    return { rule, addresses: list };
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
  const mapped = c.address.startsWith('::ffff:') && isIPv4(c.address.slice(7)) ? c.address.slice(7) : c.address;
  const family = isIPv4(mapped) ? 'ipv4' : 'ipv6';
  for (const { rule, addresses } of rules) {
    if (rule.type === 'hostssl' && !c.tls) continue;
    if (rule.type === 'hostnossl' && c.tls) continue;
    if (!matchesName(rule.database, c.database, c.user)) continue;
    if (!matchesName(rule.user, c.user, c.user)) continue;
    if (addresses !== null && !addresses.check(mapped, family)) continue;
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
