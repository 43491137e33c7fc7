/** What a report says about the run itself: pgproxy's version, and what makes a run less than the full benchmark. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_DB_ROUNDS, DEFAULT_DURATION_S, DEFAULT_ROUNDS, type Options } from './options.js';

/** package.json's version, with the git revision ("+changes" for a dirty work tree) when `root` is a checkout. */
export function pgproxyVersion(root: string): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    let rev = '';
    try {
      const git = (args: string[]): string => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      rev = git(['rev-parse', '--short', 'HEAD']);
      if (git(['status', '--porcelain', '--untracked-files=no'])) rev += '+changes';
    } catch {
      // not a git checkout
    }
    return rev ? `${pkg.version} (${rev})` : pkg.version;
  } catch {
    return 'unknown';
  }
}

/** What makes this run less than the full default benchmark, or null. */
export function reducedBy(o: Options): string | null {
  const bits: string[] = [];
  if (o.quick) bits.push('--quick: key workloads only');
  if (o.rounds < DEFAULT_ROUNDS) bits.push(`${o.rounds} round${o.rounds === 1 ? '' : 's'} instead of ${DEFAULT_ROUNDS}`);
  if (o.dbRounds < DEFAULT_DB_ROUNDS) bits.push(`${o.dbRounds} database-bound round${o.dbRounds === 1 ? '' : 's'} instead of ${DEFAULT_DB_ROUNDS}`);
  if (o.durationS < DEFAULT_DURATION_S) bits.push(`${o.durationS} s runs instead of ${DEFAULT_DURATION_S} s`);
  if (o.only !== null || o.skip.size > 0) bits.push('a selection (--only/--skip)');
  return bits.length > 0 ? bits.join(', ') : null;
}
