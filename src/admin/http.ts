/**
 * The HTTP side of admin: `/metrics` (Prometheus text format), `/health` (liveness: 200 while the process
 * serves) and `/ready` (readiness: 200 while a primary is up and in service and the proxy is not shutting down,
 * else 503 with the reason). GET and HEAD only;
 * request bodies are never read (a request that carries one gets its answer and the connection is closed).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyContext } from '../context.js';
import { createMetricsRegistry } from './metrics.js';

export interface MetricsServer {
  /** The port it listens on (the one asked for, or the one the system chose for 0). */
  readonly port: number;
  /** Graceful shutdown has begun: /ready answers 503 from now on (so load balancers stop sending clients), /health stays 200. */
  markStopping(): void;
  /** Stops listening and closes its connections (idle keep-alive ones at once, the rest after a short grace). */
  close(): Promise<void>;
}

const TEXT = 'text/plain; charset=utf-8';
/** Time an in-flight scrape may take to finish when the server closes. */
const CLOSE_GRACE_MS = 1_000;

/** Why the proxy is not ready, or null when it is: a single primary is up (not detached, answering checks). */
export function notReadyReason(ctx: ProxyContext): string | null {
  if (ctx.topology.primary() !== null) return null;
  const primaries = ctx.topology.primaryCount();
  return primaries > 1 ? `${primaries} nodes report being the primary` : 'no primary available';
}

export async function startMetricsServer(ctx: ProxyContext, host: string, port: number): Promise<MetricsServer> {
  const registry = createMetricsRegistry(ctx);
  let stopping = false;

  const server = http.createServer((req, res) => {
    const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;
    if (hasBody) res.setHeader('Connection', 'close');
    const send = (status: number, contentType: string, body: string): void => {
      res.statusCode = status;
      res.setHeader('Content-Type', contentType);
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.setHeader('Cache-Control', 'no-store');
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(405, TEXT, 'method not allowed\n');
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    switch (path) {
      case '/metrics':
        registry.metrics().then(
          (text) => send(200, registry.contentType, text),
          (err: unknown) => {
            ctx.log.error({ err: (err as Error).message }, 'metrics: could not collect');
            send(500, TEXT, 'could not collect metrics\n');
          },
        );
        return;
      case '/health':
        send(200, TEXT, 'ok\n');
        return;
      case '/ready': {
        const reason = stopping ? 'shutting down' : notReadyReason(ctx);
        if (reason === null) send(200, TEXT, 'ready\n');
        else send(503, TEXT, `not ready: ${reason}\n`);
        return;
      }
      default:
        send(404, TEXT, 'not found: try /metrics, /health or /ready\n');
    }
  });
  // Bounds on slow or idle clients.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => ctx.log.error({ err: err.message }, 'metrics server error'));
  const bound = (server.address() as AddressInfo).port;

  let closing: Promise<void> | null = null;
  return {
    port: bound,
    markStopping() {
      stopping = true;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        const grace = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        grace.unref();
        server.close(() => {
          clearTimeout(grace);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
