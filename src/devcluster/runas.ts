// Which OS user runs the PostgreSQL server, and running its tools as that user.
//
// initdb, pg_ctl and postgres refuse to run as root. As root we run them as the
// `postgres` OS user (Node's execFile takes uid/gid); otherwise as the current user.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** True when we switch to this user (we are root); false when it is ourselves. */
  switched: boolean;
}

let cached: ServerUser | undefined;

function lookupPasswd(name: string): { uid: number; gid: number; home: string } | null {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 6) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' };
  }
  return null;
}

/** The OS user the PostgreSQL server processes run as. */
export function serverUser(): ServerUser {
  if (cached) return cached;
  const uid = process.getuid?.() ?? -1;
  if (uid === 0) {
    const pw = lookupPasswd('postgres');
    if (!pw) {
      throw new Error(
        'running as root, but there is no `postgres` OS user to run initdb/pg_ctl as ' +
          '(PostgreSQL refuses to run as root). `apt-get install postgresql` creates one, or run as a normal user.',
      );
    }
    cached = { name: 'postgres', ...pw, switched: true };
  } else {
    const info = os.userInfo();
    cached = { name: info.username, uid: info.uid, gid: info.gid, home: info.homedir, switched: false };
  }
  return cached;
}

/** Give `p` to the server user (no-op when we are that user). */
export async function chownToServer(p: string): Promise<void> {
  const u = serverUser();
  if (u.switched) await chown(p, u.uid, u.gid);
}

/** Our environment minus libpq/PG settings (PGDATA, PGPORT, ...) that would steer the tools. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG') && v !== undefined) env[k] = v;
  }
  const u = serverUser();
  if (u.switched) {
    env.HOME = u.home;
    env.USER = u.name;
    env.LOGNAME = u.name;
  }
  return { ...env, ...extra };
}

export class CommandError extends Error {
  readonly code = 'DEVCLUSTER_COMMAND_FAILED';
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  /** Working directory; must be reachable by the server user. */
  cwd: string;
  /** Extra environment (e.g. PGPASSWORD); never logged. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * Run a PostgreSQL tool as the server user. Arguments must not contain secrets (they are
 * visible in `ps` and in error messages); pass those in `env`.
 */
export function runAsServer(
  file: string,
  args: string[],
  opts: RunOptions,
): Promise<{ stdout: string; stderr: string }> {
  const u = serverUser();
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        cwd: opts.cwd,
        env: cleanEnv(opts.env),
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
        ...(u.switched ? { uid: u.uid, gid: u.gid } : {}),
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
        const exit = typeof e.code === 'number' ? e.code : null;
        const what = `${path.basename(file)} ${args.join(' ')}`;
        const why = e.killed ? `timed out after ${opts.timeoutMs ?? 120_000} ms` : `exit ${String(e.code)}`;
        const out = (stderr || stdout || e.message).trim();
        reject(new CommandError(`${what} failed (${why})${out ? `:\n${out}` : ''}`, exit, stdout, stderr));
      },
    );
  });
}

/**
 * Start a long-running server process as the server user, detached (own session, so a
 * Ctrl-C aimed at us does not reach it) with stdout and stderr appended to `logFile`.
 * We stay its parent while we live, so when it exits we reap it: a postmaster left as a
 * zombie (containers whose PID 1 does not reap) still "exists" for kill(pid, 0), and the
 * next postmaster would refuse its socket lock file.
 */
export async function spawnServer(file: string, args: string[], opts: { cwd: string; logFile: string }): Promise<ChildProcess> {
  const u = serverUser();
  const fd = openSync(opts.logFile, 'a', 0o600);
  try {
    if (u.switched) await chown(opts.logFile, u.uid, u.gid);
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: cleanEnv(),
      detached: true,
      stdio: ['ignore', fd, fd],
      ...(u.switched ? { uid: u.uid, gid: u.gid } : {}),
    });
    child.unref();
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return child;
  } finally {
    closeSync(fd);
  }
}

/**
 * True when the server user can traverse and read directory `dir` (access(2) as that user,
 * which checks search permission on every ancestor too).
 */
export function serverUserCanReach(dir: string): boolean {
  const u = serverUser();
  if (!u.switched) return true;
  const r = spawnSync('/bin/sh', ['-c', 'test -x "$1" && test -r "$1"', 'sh', dir], {
    cwd: '/',
    uid: u.uid,
    gid: u.gid,
    env: { PATH: '/usr/bin:/bin' },
    timeout: 10_000,
  });
  return r.status === 0;
}
