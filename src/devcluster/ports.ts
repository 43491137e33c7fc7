// Free loopback TCP ports, found by trying to listen on them.
import net from 'node:net';
import { DEFAULT_BASE_PORT } from './cluster-types.js';

export const LOOPBACK = '127.0.0.1';

/** True when nothing listens on host:port (we could bind it). */
export function isPortFree(port: number, host: string = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    // exclusive: no sharing with cluster-mode siblings; we want a plain bind test.
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export interface FindPortsOptions {
  /**
   * First port to try; then base+1, base+2, ... (ports already taken are skipped).
   * Omitted or 0: start at a random port in [20000, 30000), which stays clear of the
   * default dev cluster (15432...) and of the kernel's ephemeral range (32768+), so
   * outgoing connections cannot grab the port between our check and the server's bind.
   */
  base?: number;
  host?: string;
  /** Ports never to return (e.g. recorded for a stopped cluster). */
  exclude?: Iterable<number>;
}

/**
 * Find `count` free ports on the loopback interface. The ports are free at the time of
 * the check only; callers bind them soon after.
 */
export async function findFreePorts(count: number, opts: FindPortsOptions = {}): Promise<number[]> {
  const host = opts.host ?? LOOPBACK;
  const exclude = new Set(opts.exclude ?? []);
  const base = opts.base && opts.base > 0 ? opts.base : 20000 + Math.floor(Math.random() * 10000);
  const found: number[] = [];
  for (let port = base; found.length < count; port++) {
    if (port > 65535) throw new Error(`no ${count} free TCP ports on ${host} from ${base} up`);
    if (exclude.has(port)) continue;
    if (await isPortFree(port, host)) found.push(port);
  }
  return found;
}

/**
 * `n` ports for a new cluster: base, base+1, ... (default 15432); ports taken by something else are replaced by free
 * ones (logged). basePort 0: any free ports.
 */
export async function choosePorts(n: number, basePort: number | undefined, log: { warn: (obj: object, msg: string) => void }): Promise<number[]> {
  if (basePort === 0) return findFreePorts(n);
  const base = basePort ?? DEFAULT_BASE_PORT;
  const wanted = Array.from({ length: n }, (_, i) => base + i);
  const taken: number[] = [];
  for (const p of wanted) if (!(await isPortFree(p))) taken.push(p);
  if (taken.length === 0) return wanted;
  const ports = await findFreePorts(n, { base });
  log.warn({ taken, ports }, `port(s) ${taken.join(', ')} already in use; using ${ports.join(', ')}`);
  return ports;
}
