/**
 * pgproxy.yaml -> Config: YAML with node ranges, ${ENV} substitution in the
 * AST, then the schema's normaliser with a locator that maps every issue's
 * key path back to its line.
 *
 * Substitution, precisely:
 * - `${VAR}` is the variable's value; unset is an error naming VAR, the key and the line.
 * - `${VAR:-default}` is the default when VAR is unset or empty (as in sh);
 *   the default runs to the first `}`.
 * - `$${` is a literal `${`; a `$` not followed by `{` is just a `$`.
 * - Only scalar values are substituted (plain, quoted or block), never keys.
 * - The result is always a string. Numeric keys accept decimal strings (see
 *   fields.ts), so `port: ${PORT:-9999}` validates as a number, while a
 *   password made of digits stays a string.
 */
import { readFileSync } from 'node:fs';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ConfigError, formatPath, type ConfigIssue, type PathSegment } from './errors.js';
import type { Config } from './types.js';
import { validateConfig } from './validate.js';

export { ConfigError } from './errors.js';
export { functionPattern } from './formats.js';
export { redactConfig } from './redact.js';
export { secretKind as passwordKind, secretKind } from './secrets.js';
export { defaultConfigForCluster, validateConfig, type ClusterOptions, type ValidateOptions } from './validate.js';
export type * from './types.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Read and validate a config file; any failure (including an unreadable file) is a ConfigError. */
export function loadConfigFile(path: string, env: Env = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(path, [{ path: '', line: null, message: `cannot read the file (${code})` }]);
  }
  return parseConfigText(text, path, env);
}

/** Parse and validate config text; `fileName` only names the source in messages. */
export function parseConfigText(text: string, fileName: string, env: Env = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    version: '1.2',
    merge: false,
  });
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;

  if (doc.errors.length > 0) {
    const issues = new Map<string, ConfigIssue>();
    for (const err of doc.errors) {
      const issue = { path: '', line: lineAt(err.pos[0]), message: yamlMessage(err.message) };
      issues.set(`${issue.line}\0${issue.message}`, issue);
    }
    throw new ConfigError(fileName, [...issues.values()]);
  }

  const substitutionIssues: ConfigIssue[] = [];
  substitute(doc.contents, [], env, (path, node, message) => {
    substitutionIssues.push({ path: formatPath(path), line: nodeLine(node, lineAt), message });
  });
  if (substitutionIssues.length > 0) throw new ConfigError(fileName, substitutionIssues);

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // An alias "billion laughs" document, or an alias to itself.
    throw new ConfigError(fileName, [{ path: '', line: null, message: (err as Error).message }]);
  }
  return validateConfig(raw, {
    file: fileName,
    locate: (path) => locate(doc, path, lineAt),
  });
}

/**
 * YAML messages are about syntax, but a few quote source text
 * ('Unexpected scalar token in YAML stream: "..."'); drop the quote,
 * since that text may be a password.
 */
function yamlMessage(message: string): string {
  return message.replace(/: ".*"$/s, '').replace(/(extra characters): .*$/s, '$1');
}

function nodeLine(node: Node, lineAt: (offset: number) => number): number | null {
  return node.range ? lineAt(node.range[0]) : null;
}

type SubstitutionProblem = (path: PathSegment[], node: Node, message: string) => void;

function substitute(node: unknown, path: PathSegment[], env: Env, problem: SubstitutionProblem): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      substitute(pair.value, [...path, key], env, problem);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => substitute(item, [...path, i], env, problem));
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
    const result = expand(node.value, env);
    if (typeof result === 'string') node.value = result;
    else problem(path, node, result.error);
  }
  // Aliases point at nodes substituted where their anchor is.
}

const REFERENCE = /\$\$\{|\$\{([^}]*)\}?/g;
const REFERENCE_BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

/** Expand one scalar's references. Errors never quote the scalar (it may be a secret). */
export function expand(value: string, env: Env): string | { error: string } {
  let error: string | null = null;
  const out = value.replace(REFERENCE, (match: string, body: string | undefined) => {
    if (match === '$${') return '${';
    if (error !== null) return '';
    if (!match.endsWith('}')) {
      error = 'unterminated ${ (write $${ for a literal ${)';
      return '';
    }
    const parts = REFERENCE_BODY.exec(body ?? '');
    if (parts === null) {
      error = 'invalid ${...} reference: expected ${NAME} or ${NAME:-default} (write $${ for a literal ${)';
      return '';
    }
    const name = parts[1]!;
    const fallback = parts[2];
    const set = env[name];
    if (fallback !== undefined) return set === undefined || set === '' ? fallback : set;
    if (set === undefined) {
      error = `environment variable ${name} is not set and has no default (write \${${name}:-default})`;
      return '';
    }
    return set;
  });
  return error === null ? out : { error };
}

/**
 * The line of the key (or list item) at `path`, or of its nearest ancestor
 * when it is absent (a missing required key is reported where its mapping is).
 */
function locate(doc: Document, path: readonly PathSegment[], lineAt: (offset: number) => number): number | null {
  let node: unknown = doc.contents;
  let line: number | null = null;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    let next: Node | null = null;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      if (isScalar(pair.key)) line = nodeLine(pair.key, lineAt) ?? line;
      next = (pair.value as Node | null) ?? null;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (item === undefined || item === null) break;
      line = nodeLine(item, lineAt) ?? line;
      next = item;
    } else {
      break;
    }
    node = next;
  }
  return line;
}
