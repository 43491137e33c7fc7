/** The routing rules of the configuration, compiled once: function lists, redirect rules, transaction mode. */
import { compileFunctionRules, type FunctionRules } from './functions.js';

export interface CompiledRedirect {
  readonly applicationName: RegExp | null;
  readonly database: RegExp | null;
  readonly user: RegExp | null;
  readonly to: 'primary' | 'standby' | number;
}

export interface RouterRules {
  readonly functions: FunctionRules;
  readonly redirect: readonly CompiledRedirect[];
  /** Both function lists are empty: volatility from the catalog decides. */
  readonly useVolatility: boolean;
  /** read_only_functions is set (and write_functions is not): only listed functions may run on a standby. */
  readonly onlyListedAreSafe: boolean;
  /** routing.transactions = split: a read-write transaction starts on the load-balance node (pgpool). */
  readonly splitTransactions: boolean;
}

export interface RoutingSettings {
  write_functions: readonly string[];
  read_only_functions: readonly string[];
  redirect?: readonly { application_name?: string; database?: string; user?: string; to: 'primary' | 'standby' | number }[];
  transactions?: 'primary' | 'split';
}

const anchored = (source: string | undefined): RegExp | null => (source === undefined ? null : new RegExp(`^(?:${source})$`));

export function compileRouterRules(routing: RoutingSettings): RouterRules {
  return {
    redirect: (routing.redirect ?? []).map((r) => ({ applicationName: anchored(r.application_name), database: anchored(r.database), user: anchored(r.user), to: r.to })),
    functions: compileFunctionRules({ writeFunctions: [...routing.write_functions], readOnlyFunctions: [...routing.read_only_functions] }),
    useVolatility: routing.write_functions.length === 0 && routing.read_only_functions.length === 0,
    onlyListedAreSafe: routing.read_only_functions.length > 0 && routing.write_functions.length === 0,
    splitTransactions: routing.transactions === 'split',
  };
}

/** The first redirect rule matching a session decides where its reads go (pgpool's *_redirect_preference_list). */
export function redirectFor(rules: RouterRules, session: { applicationName: string; database: string; user: string }): 'primary' | 'standby' | number | null {
  for (const r of rules.redirect) {
    if (r.applicationName !== null && !r.applicationName.test(session.applicationName)) continue;
    if (r.database !== null && !r.database.test(session.database)) continue;
    if (r.user !== null && !r.user.test(session.user)) continue;
    return r.to;
  }
  return null;
}
