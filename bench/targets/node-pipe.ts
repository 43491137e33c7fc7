/**
 * The node pipe target (node-pipe-server.ts) in its own process in front of the primary: Node's floor for a
 * proxy, measured from /proc exactly like pgproxy (its pid is the process pgbench's CPU time is read from).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo } from '../../src/devcluster/cluster.js';
import type { ProcessTracker } from '../procs.js';
import { type Target, TARGET_LABELS, waitForPort } from './target.js';

const SERVER = fileURLToPath(new URL('./node-pipe-server.js', import.meta.url));

export async function startNodePipe(opts: { info: ClusterInfo; tracker: ProcessTracker }): Promise<Target> {
  const primary = opts.info.nodes[0]!;
  const app = opts.info.users.app;
  const proc = opts.tracker.spawn('node pipe', process.execPath, [SERVER, primary.host, String(primary.port)]);
  const host = '127.0.0.1';
  let port = 0;
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      opts.tracker.check();
      const m = /^listening (\d+)$/m.exec(proc.stdout);
      if (m) {
        port = Number(m[1]);
        break;
      }
      if (proc.exit !== null) throw new Error(`it exited (${JSON.stringify(proc.exit)}): ${proc.stderr.trim().slice(-500)}`);
      if (Date.now() > deadline) throw new Error('it did not report its port within 15 s');
      await sleep(50);
    }
    await waitForPort(host, port, { timeoutMs: 10_000, exited: () => proc.exit !== null, tracker: opts.tracker });
  } catch (err) {
    await opts.tracker.stop(proc, 'SIGTERM', 3_000);
    throw new Error(`node pipe did not start: ${(err as Error).message}`);
  }
  return {
    id: 'node-pipe',
    label: TARGET_LABELS['node-pipe'],
    host,
    port,
    user: app.name,
    password: app.password,
    database: opts.info.database,
    pid: proc.pid,
    version: `Node.js ${process.version}`,
    setup:
      'a bare Node.js proxy in its own process (bench/targets/node-pipe-server.ts): each client connection piped to the primary ' +
      'and back with socket.pipe(), setNoDelay on both sockets, nothing else; Node\'s floor, so pgproxy\'s CPU above it is pgproxy\'s own ' +
      '(it sends every statement to the primary, where pgproxy sends reads to the standbys)',
    unsupportedMode: () => null,
    stop: () => opts.tracker.stop(proc, 'SIGTERM', 5_000),
  };
}
