/**
 * Config errors: every problem found in one pass, each naming the file, the
 * line and the key, never the value (so a password cannot leak through them).
 */

/** One segment of a key path: a key, or a list index. */
export type PathSegment = string | number;

export interface ConfigIssue {
  /** Key path as written in messages, e.g. `backends[1].port`; '' for the file as a whole. */
  path: string;
  /** 1-based line in the file, or null when unknown (config built in code, key absent at top level). */
  line: number | null;
  message: string;
}

/**
 * Every problem found in one pass, one per line:
 * `pgproxy.yaml:14: backends[1].port: expected an integer from 1 to 65535`.
 * Messages name keys, never values, so passwords cannot leak through them.
 */
export class ConfigError extends Error {
  readonly code = 'PGPROXY_CONFIG';
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => formatIssue(file, issue)).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line === null ? file : `${file}:${issue.line}`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/** `['backends', 1, 'port']` -> `backends[1].port` */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}
