/** pgpool-II and PgBouncer come from Debian packages: find the binary, install it when allowed, and stop the service the package may have started. */
import { constants as fsc } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { ProcessTracker } from '../procs.js';

async function executable(file: string): Promise<boolean> {
  try {
    await access(file, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `binary` on PATH or in the sbin directories (which a non-root PATH may lack). */
export async function findBinary(binary: string): Promise<string | null> {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const f = path.join(d, binary);
    if (await executable(f)) return f;
  }
  return null;
}

export type Availability = { binary: string; installedNow: boolean } | { binary: null; reason: string };

/**
 * The binary, installing `pkg` with apt-get when it is missing, we are root and installing is allowed.
 * After installing, the package's own service is stopped (Debian starts it unless policy-rc.d forbids it).
 */
export async function ensurePackage(
  pkg: string,
  binary: string,
  service: string,
  opts: { noInstall: boolean; tracker: ProcessTracker; log: (line: string) => void },
): Promise<Availability> {
  const found = await findBinary(binary);
  if (found) return { binary: found, installedNow: false };
  if (opts.noInstall) return { binary: null, reason: `${binary} is not installed (apt-get install ${pkg}); --no-install given` };
  if (process.getuid?.() !== 0) return { binary: null, reason: `${binary} is not installed and we are not root to apt-get install ${pkg}` };
  opts.log(`installing ${pkg} (apt-get install -y ${pkg})...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = await opts.tracker.run(`apt-get install ${pkg}`, 'apt-get', ['install', '-y', '-q', pkg], { env, timeoutMs: 300_000 });
  if (r.code !== 0) {
    // Stale package lists are the usual cause; refresh once and retry.
    await opts.tracker.run('apt-get update', 'apt-get', ['update', '-q'], { env, timeoutMs: 300_000 });
    r = await opts.tracker.run(`apt-get install ${pkg}`, 'apt-get', ['install', '-y', '-q', pkg], { env, timeoutMs: 300_000 });
  }
  // Whatever the outcome, leave no system service of the package running.
  await opts.tracker.run(`service ${service} stop`, 'service', [service, 'stop'], { timeoutMs: 60_000 }).catch(() => undefined);
  const bin = await findBinary(binary);
  if (r.code !== 0 || !bin) {
    const why = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ');
    return { binary: null, reason: `apt-get install ${pkg} failed (exit ${String(r.code)}): ${why}` };
  }
  return { binary: bin, installedNow: true };
}

/** First line of `binary --version`. */
export async function versionOf(tracker: ProcessTracker, binary: string): Promise<string> {
  const r = await tracker.run(`${path.basename(binary)} --version`, binary, ['--version'], { timeoutMs: 10_000 });
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? 'unknown';
}
