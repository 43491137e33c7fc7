/**
 * The one normaliser: a plain object (parsed YAML, or built in code) in, a
 * deeply frozen Config out, or a ConfigError listing every problem with its key
 * and line. Per-key rules are in schema.ts; here are the checks across keys and
 * the defaults that depend on other keys (backend names, health-check and
 * failover credentials, the TLS mode).
 */
import type { z } from 'zod';
import { ConfigError, formatPath, type ConfigIssue, type PathSegment } from './errors.js';
import { configSchema } from './normalise.js';
import { KEYS_BY_SECTION } from './schema.js';
import type { Config, ConfigInput } from './types.js';

// ---------------------------------------------------------------------------
// The normaliser

export interface ValidateOptions {
  /** Name used in messages. */
  file?: string;
  /** Maps a key path to its line in the source, when there is a source. */
  locate?: (path: readonly PathSegment[]) => number | null;
}

/** Validate a plain object (e.g. parsed YAML) and return a deeply frozen Config, or throw ConfigError. */
export function validateConfig(raw: unknown, options: ValidateOptions = {}): Config {
  const file = options.file ?? '<config>';
  const locate = options.locate ?? (() => null);
  const result = configSchema.safeParse(raw === null || raw === undefined ? {} : raw);
  if (result.success) return deepFreeze(result.data);

  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  const push = (path: PathSegment[], message: string): void => {
    const issue = { path: formatPath(path), line: locate(path), message };
    const key = `${issue.path}\0${issue.message}`;
    if (seen.has(key)) return;
    seen.add(key);
    issues.push(issue);
  };
  for (const zi of result.error.issues) {
    const path = zi.path.map((seg) => (typeof seg === 'number' ? seg : String(seg)));
    if (zi.code === 'unrecognized_keys') {
      for (const key of zi.keys) push([...path, key], unknownKeyMessage(path, key));
    } else {
      push(path, issueMessage(zi, raw, path));
    }
  }
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  throw new ConfigError(file, issues);
}

function issueMessage(issue: z.core.$ZodIssue, raw: unknown, path: PathSegment[]): string {
  if (issue.code === 'invalid_type' && isAbsent(raw, path)) return 'missing required key';
  // Our schemas give every message; zod's own wording only for codes we never expect.
  return issue.message;
}

function isAbsent(raw: unknown, path: readonly PathSegment[]): boolean {
  let node: unknown = raw;
  for (const seg of path) {
    if (node === null || typeof node !== 'object') return true;
    node = (node as Record<PathSegment, unknown>)[seg];
  }
  return node === undefined;
}

function unknownKeyMessage(path: readonly PathSegment[], key: string): string {
  const section = formatPath(path).replace(/\[\d+\]/g, '[]');
  const allowed = KEYS_BY_SECTION[section];
  if (allowed === undefined) return 'unknown key';
  const near = allowed.filter((k) => editDistance(k, key) <= 2);
  if (near.length > 0) return `unknown key (did you mean ${near.map((k) => `"${k}"`).join(' or ')}?)`;
  return `unknown key (expected one of: ${allowed.join(', ')})`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

// ---------------------------------------------------------------------------
// Config built in code

export interface ClusterOptions {
  backends: { name: string; host: string; port: number; weight: number }[];
  users: { name: string; password: string }[];
  healthUser: { name: string; password: string };
  listenPort?: number;
  /** Any other keys, merged over the generated object before validation (objects merge, lists replace). */
  overrides?: ConfigInput;
}

/** A validated, frozen Config built in code (pgproxy demo, tests); throws ConfigError like the loader. */
export function defaultConfigForCluster(opts: ClusterOptions): Config {
  const raw: Record<string, unknown> = {
    listen: opts.listenPort === undefined ? {} : { port: opts.listenPort },
    backends: opts.backends.map((b) => ({ ...b })),
    auth: { users: opts.users.map((u) => ({ ...u })) },
    health_check: { user: opts.healthUser.name, password: opts.healthUser.password },
  };
  return validateConfig(opts.overrides ? merge(raw, opts.overrides) : raw, { file: '<defaultConfigForCluster>' });
}

function merge(base: Record<string, unknown>, over: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    const bothObjects =
      value !== null && typeof value === 'object' && !Array.isArray(value) &&
      prev !== null && typeof prev === 'object' && !Array.isArray(prev);
    out[key] = bothObjects ? merge(prev as Record<string, unknown>, value as object) : value;
  }
  return out;
}
