/**
 * The "node pipe" benchmark target: the least a Node.js TCP proxy can do. Every client connection is piped to
 * the upstream server and back (`socket.pipe()` both ways, Nagle off on both sockets) and nothing else: no
 * parsing, no pooling. What pgproxy spends above this process is pgproxy's own work; below it is Node's floor.
 *
 * Usage: node node-pipe-server.js UPSTREAM_HOST UPSTREAM_PORT
 * Listens on a free port on 127.0.0.1 and prints `listening PORT` once it does. Run by node-pipe.ts.
 */
import { connect, createServer, type Socket } from 'node:net';

const [upstreamHost, upstreamPort] = process.argv.slice(2);
if (!upstreamHost || !upstreamPort) {
  process.stderr.write('usage: node node-pipe-server.js UPSTREAM_HOST UPSTREAM_PORT\n');
  process.exit(2);
}

const server = createServer((client: Socket) => {
  const upstream = connect({ host: upstreamHost, port: Number(upstreamPort) });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream);
  upstream.pipe(client);
  // pipe() ends the other side on a clean close; an error (a reset) must not take the process down.
  const destroyBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  process.stdout.write(`listening ${address.port}\n`);
});
