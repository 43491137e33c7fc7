// pgproxy in a child process (the real CLI, `node dist/src/cli/main.js start --config FILE`), for tests that
// measure the proxy's own memory: its RSS is read from /proc/<pid>/status, untouched by the test's clients.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../../src/config/load.js';
import type { ClusterInfo } from '../../../src/devcluster/cluster.js';
import { proxyConfigForCluster } from '../../../src/devcluster/proxy-config.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(REPO_ROOT, 'dist/src/cli/main.js');

export interface ChildProxy {
  readonly pid: number;
  readonly host: string;
  readonly port: number;
  /** Everything the proxy wrote to stderr (its JSON log lines). */
  log(): string;
  /** VmRSS of the proxy process in bytes, or null once it has exited. */
  rss(): number | null;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export function procRssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Starts the built CLI with a YAML file written from `proxyConfigForCluster(info, overrides)`, on a free port
 * (read back from the 'pgproxy listening' log line). `npm run build` (or `npm test`) must have built dist/.
 * The child also exits when its stdin closes, so that it cannot outlive a test worker that dies.
 */
export async function startChildProxy(info: ClusterInfo, overrides: ConfigInput = {}, opts: { nodeArgs?: string[]; timeoutMs?: number } = {}): Promise<ChildProxy> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const config = proxyConfigForCluster(info, {
    listenPort: 0,
    overrides: { health_check: { period_ms: 300, timeout_ms: 1000, retry_delay_ms: 200 }, log: { level: 'info' }, ...overrides },
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgproxy-child-'));
  const file = path.join(dir, 'pgproxy.yaml');
  writeFileSync(file, stringify(config), { mode: 0o600 });
  // The watchdog runs before the CLI's own module: argv is made to look like `main.js start --config FILE`.
  const boot = [
    'const orphaned = () => { process.kill(process.pid, "SIGTERM"); setTimeout(() => process.exit(1), 10000).unref(); };',
    "process.stdin.on('end', orphaned);",
    "process.stdin.on('error', orphaned);",
    'process.stdin.resume();',
    'process.stdin.unref?.();',
    `process.argv.splice(1, 0, ${JSON.stringify(CLI)});`,
    `await import(${JSON.stringify(pathToFileURL(CLI).href)});`,
  ].join('\n');
  const child: ChildProcess = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--input-type=module', '-e', boot, '--', 'start', '--config', file], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      rmSync(dir, { recursive: true, force: true });
      resolve();
    }),
  );
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exit;
    clearTimeout(timer);
  };
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pgproxy child did not start listening in time:\n${stderr}`)), opts.timeoutMs ?? 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      // Keep the log bounded: only the start matters for the port, the end for what went wrong.
      if (stderr.length > 4_000_000) stderr = stderr.slice(0, 1_000_000) + '\n...\n' + stderr.slice(-1_000_000);
      const m = /"port":(\d+)[^\n]*"msg":"pgproxy listening"/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`pgproxy child exited (${code ?? signal}) before listening:\n${stderr}`));
    });
  }).catch(async (err: Error) => {
    await stop(1_000);
    throw err;
  });
  return {
    pid: child.pid!,
    host: config.listen.host,
    port,
    log: () => stderr,
    rss: () => (exited ? null : procRssBytes(child.pid!)),
    stop,
  };
}

/** Samples a process's RSS every `everyMs` until stopped; returns the maximum seen. */
export function sampleRss(pid: number, everyMs = 100): { max(): number; samples(): number[]; stop(): number } {
  const samples: number[] = [];
  const take = (): void => {
    const v = procRssBytes(pid);
    if (v !== null) samples.push(v);
  };
  take();
  const timer = setInterval(take, everyMs);
  const max = (): number => samples.reduce((a, b) => Math.max(a, b), 0);
  return {
    max,
    samples: () => samples.slice(),
    stop: () => {
      clearInterval(timer);
      take();
      return max();
    },
  };
}
