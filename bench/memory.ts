/**
 * pgproxy's resident memory with 1, 1,000 and 10,000 idle authenticated clients. A fresh pgproxy process
 * (so the workloads' pools and heap do not count), and the clients held by a separate Node process
 * (bench/idle-clients.ts), both with the open-files limit raised. RSS is VmRSS from /proc/PID/status.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo } from '../src/devcluster/cluster.js';
import type { ProcessTracker, Tracked } from './procs.js';
import { RAISE_NOFILE, startPgproxy } from './targets/pgproxy.js';

const HOLDER = fileURLToPath(new URL('./idle-clients.js', import.meta.url));

export interface MemoryLevel {
  clients: number;
  /** Connections the holder had open (authenticated, idle) when RSS was read. */
  held: number;
  failed: number;
  rssKb: number | null;
  /** Time the holder took to open this level's new connections. */
  openMs: number;
  errors: string[];
  /** Set when the level could not be attempted. */
  skipped?: string;
}

export interface MemoryResult {
  baselineRssKb: number | null;
  peakRssKb: number | null;
  levels: MemoryLevel[];
  proxyMaxOpenFiles: number | null;
  proxySetup: string;
  dropped: number;
}

/** VmRSS or VmHWM of a process, in kB. */
export function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

interface HolderReply {
  held: number;
  failed: number;
  dropped: number;
  errors: string[];
  ms: number;
}

class Holder {
  private pending: ((r: HolderReply) => void) | null = null;
  private buf = '';
  constructor(readonly proc: Tracked) {
    proc.child.stdout?.on('data', (s: string | Buffer) => {
      this.buf += s.toString();
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        try {
          const r = JSON.parse(line) as HolderReply;
          this.pending?.(r);
          this.pending = null;
        } catch {
          // not ours
        }
      }
    });
  }

  async open(total: number, timeoutMs: number): Promise<HolderReply> {
    const reply = new Promise<HolderReply>((resolve) => (this.pending = resolve));
    this.proc.child.stdin?.write(`open ${total}\n`);
    const r = await Promise.race([
      reply,
      this.proc.exited.then(() => {
        throw new Error(`idle-client holder exited: ${this.proc.stderr.trim().slice(-500)}`);
      }),
      sleep(timeoutMs, undefined, { ref: false }).then(() => {
        throw new Error(`idle-client holder did not answer within ${timeoutMs} ms`);
      }),
    ]);
    return r;
  }
}

export async function measureMemory(o: {
  info: ClusterInfo;
  dir: string;
  tracker: ProcessTracker;
  version: string;
  levels: number[];
  log: (line: string) => void;
}): Promise<MemoryResult> {
  const proxy = await startPgproxy({ info: o.info, dir: path.join(o.dir, 'pgproxy-memory'), tracker: o.tracker, version: o.version });
  const pid = proxy.pid as number;
  let holderProc: Tracked | null = null;
  try {
    await sleep(1_000);
    const baselineRssKb = procStatusKb(pid, 'VmRSS');
    const app = o.info.users.app;
    holderProc = o.tracker.spawn('idle-client holder', 'bash', ['-c', `${RAISE_NOFILE}; exec "$0" "$@"`, process.execPath, HOLDER], {
      env: {
        ...process.env,
        BENCH_HOST: proxy.host,
        BENCH_PORT: String(proxy.port),
        BENCH_USER: app.name,
        BENCH_PASSWORD: app.password,
        BENCH_DATABASE: o.info.database,
      },
      stdin: true,
      killOnAbort: true,
    });
    const holder = new Holder(holderProc);
    const levels: MemoryLevel[] = [];
    let dropped = 0;
    for (const n of o.levels) {
      o.tracker.check();
      // The proxy needs a descriptor per client plus its backends, logs and listeners.
      if (proxy.maxOpenFiles !== null && proxy.maxOpenFiles < n + 64) {
        levels.push({ clients: n, held: 0, failed: 0, rssKb: null, openMs: 0, errors: [], skipped: `pgproxy's open-files limit is ${proxy.maxOpenFiles}` });
        continue;
      }
      const r = await holder.open(n, 300_000);
      dropped = r.dropped;
      // Let the proxy's heap settle (GC after the burst of handshakes) before reading RSS.
      await sleep(3_000);
      const rssKb = procStatusKb(pid, 'VmRSS');
      levels.push({ clients: n, held: r.held, failed: r.failed, rssKb, openMs: r.ms, errors: r.errors });
      o.log(`  ${String(r.held).padStart(6)} idle clients: pgproxy RSS ${rssKb === null ? '?' : ((rssKb * 1024) / 1e6).toFixed(1)} MB (opened in ${r.ms} ms${r.failed ? `, ${r.failed} failed` : ''})`);
    }
    const peakRssKb = procStatusKb(pid, 'VmHWM');
    return { baselineRssKb, peakRssKb, levels, proxyMaxOpenFiles: proxy.maxOpenFiles, proxySetup: proxy.setup, dropped };
  } finally {
    if (holderProc) {
      holderProc.child.stdin?.end('quit\n');
      await o.tracker.stop(holderProc, 'SIGTERM', 5_000);
    }
    await proxy.stop();
  }
}
