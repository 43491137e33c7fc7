// Locate the PostgreSQL server binaries (initdb, pg_ctl, postgres, pg_basebackup).
//
// Order: $PG_BINDIR, then `initdb` on PATH (symlinks resolved, because Debian puts
// wrappers or links in /usr/bin and /usr/local/bin while the siblings we need live
// in /usr/lib/postgresql/N/bin), then `pg_config --bindir`, then the highest
// version under /usr/lib/postgresql/*/bin.
import { execFile } from 'node:child_process';
import { constants as fsc } from 'node:fs';
import { access, readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Binaries the dev cluster needs in one directory. */
export const REQUIRED_BINARIES = ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup'] as const;

export class PgBinariesNotFoundError extends Error {
  readonly code = 'PG_BINARIES_NOT_FOUND';
  constructor(readonly tried: string[]) {
    super(
      'PostgreSQL server binaries (initdb, pg_ctl, postgres, pg_basebackup) not found. Tried:\n' +
        tried.map((t) => `  - ${t}`).join('\n') +
        '\nInstall them (Debian/Ubuntu: `apt-get install postgresql`) or set PG_BINDIR to the directory holding initdb.',
    );
    this.name = 'PgBinariesNotFoundError';
  }
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Returns null when `dir` holds every required binary, else a reason. */
async function missingIn(dir: string): Promise<string | null> {
  const missing: string[] = [];
  for (const name of REQUIRED_BINARIES) {
    if (!(await isExecutable(path.join(dir, name)))) missing.push(name);
  }
  return missing.length === 0 ? null : `missing ${missing.join(', ')}`;
}

async function onPath(name: string, envPath: string | undefined): Promise<string | null> {
  for (const dir of (envPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (await isExecutable(file)) return file;
  }
  return null;
}

/** Compare "15", "9.6", "16" numerically, highest first. */
function byVersionDesc(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pb[i] ?? 0) - (pa[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Find the directory holding the PostgreSQL server binaries.
 * @throws PgBinariesNotFoundError naming every place tried.
 */
export async function findPgBinDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const tried: string[] = [];

  const fromEnv = env.PG_BINDIR;
  if (fromEnv) {
    const dir = path.resolve(fromEnv);
    const why = await missingIn(dir);
    if (!why) return dir;
    // An explicit setting that is wrong is an error, not something to silently skip.
    throw new PgBinariesNotFoundError([`PG_BINDIR=${dir}: ${why}`]);
  }
  tried.push('PG_BINDIR (not set)');

  const initdb = await onPath('initdb', env.PATH);
  if (initdb) {
    const dir = path.dirname(await realpath(initdb).catch(() => initdb));
    const why = await missingIn(dir);
    if (!why) return dir;
    tried.push(`initdb on PATH (${initdb} -> ${dir}: ${why})`);
  } else {
    tried.push('initdb on PATH (not found)');
  }

  try {
    const { stdout } = await execFileP('pg_config', ['--bindir'], { timeout: 10_000, env });
    const dir = stdout.trim();
    const why = await missingIn(dir);
    if (!why) return dir;
    tried.push(`pg_config --bindir (${dir}: ${why})`);
  } catch {
    tried.push('pg_config --bindir (pg_config not found or failed)');
  }

  const root = '/usr/lib/postgresql';
  const versions = await readdir(root).catch(() => [] as string[]);
  for (const v of versions.filter((v) => /^\d+(\.\d+)?$/.test(v)).sort(byVersionDesc)) {
    const dir = path.join(root, v, 'bin');
    const why = await missingIn(dir);
    if (!why) return dir;
    tried.push(`${dir}: ${why}`);
  }
  if (versions.length === 0) tried.push(`${root}/*/bin (none)`);

  throw new PgBinariesNotFoundError(tried);
}

/** Major version of the server binaries in `binDir`, e.g. 15. */
export async function pgMajorVersion(binDir: string): Promise<number> {
  const { stdout } = await execFileP(path.join(binDir, 'postgres'), ['--version'], { timeout: 10_000 });
  const m = /(\d+)(?:\.\d+)?/.exec(stdout);
  if (!m) throw new Error(`cannot parse PostgreSQL version from: ${stdout.trim()}`);
  return Number(m[1]);
}
