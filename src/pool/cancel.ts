/** Forwards a client's cancel to the backend running its statement: PostgreSQL's CancelRequest on a new connection. */
import net from 'node:net';
import { serialize } from 'pg-protocol';

const CANCEL_TIMEOUT_MS = 5_000;

export function sendCancel(node: { host: string; port: number }, pid: number, secretKey: number): void {
  const s = net.connect({ host: node.host, port: node.port }, () => s.end(serialize.cancel(pid, secretKey)));
  s.on('error', () => s.destroy());
  s.setTimeout(CANCEL_TIMEOUT_MS, () => s.destroy());
}
