/** The config as SHOW CONFIG and logs may show it: every secret replaced. */
import type { Config } from './types.js';

/** A deep copy with every `password` replaced by '***', for SHOW CONFIG and logs. */
export function redactConfig(config: Config): unknown {
  const copy = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(copy);
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      // Every key that holds a secret ends in "password" (password, query_password...).
      for (const [key, child] of Object.entries(value)) out[key] = key.endsWith('password') && child !== null && child !== '' ? '***' : copy(child);
      return out;
    }
    return value;
  };
  return copy(config);
}
