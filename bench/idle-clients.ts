/**
 * Child process of the memory benchmark: opens PostgreSQL client connections on raw sockets, completes
 * startup and md5 (or cleartext) authentication up to the first ReadyForQuery, and then leaves them idle.
 *
 * Connection settings come from the environment (BENCH_HOST, BENCH_PORT, BENCH_USER, BENCH_PASSWORD,
 * BENCH_DATABASE), never argv. Commands arrive on stdin, one per line:
 *   open N   hold N connections in all (opens the difference), then print one JSON line
 *            {"held":N,"failed":F,"dropped":D,"errors":[...],"ms":T}
 *   quit     close everything and exit
 * Run by bench/memory.ts; not meant for direct use.
 */
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

const host = process.env.BENCH_HOST ?? '127.0.0.1';
const port = Number(process.env.BENCH_PORT);
const user = process.env.BENCH_USER ?? '';
const password = process.env.BENCH_PASSWORD ?? '';
const database = process.env.BENCH_DATABASE ?? user;
/** Handshakes in flight at once: enough to be quick, few enough not to overflow the proxy's listen backlog. */
const CONCURRENCY = 64;
const HANDSHAKE_TIMEOUT_MS = 60_000;

const held = new Set<Socket>();
let dropped = 0;
const errors = new Map<string, number>();

function noteError(msg: string): void {
  errors.set(msg, (errors.get(msg) ?? 0) + 1);
}

function md5hex(s: string | Buffer): string {
  return createHash('md5').update(s).digest('hex');
}

function startupMessage(): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0application_name\0pgproxy-bench-idle\0\0`, 'utf8');
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(196608, 4); // protocol 3.0
  body.copy(b, 8);
  return b;
}

function passwordMessage(text: string): Buffer {
  const body = Buffer.from(`${text}\0`, 'utf8');
  const b = Buffer.alloc(5 + body.length);
  b[0] = 0x70; // 'p'
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

function errorText(body: Buffer): string {
  // Fields: code byte + cstring, until a 0 byte; pick S, C, M.
  let i = 0;
  const f: Record<string, string> = {};
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    f[code] = body.toString('utf8', i + 1, end < 0 ? body.length : end);
    i = end < 0 ? body.length : end + 1;
  }
  return `${f.S ?? 'ERROR'} ${f.C ?? ''}: ${f.M ?? ''}`;
}

/** One connection up to ReadyForQuery; resolves true when it is held idle. */
function openOne(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let buf: Buffer = Buffer.alloc(0);
    let ready = false;
    let settled = false;
    const finish = (ok: boolean, err?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) noteError(err);
      if (!ok) s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false, `no ReadyForQuery within ${HANDSHAKE_TIMEOUT_MS} ms`), HANDSHAKE_TIMEOUT_MS);
    s.setNoDelay(true);
    s.once('connect', () => s.write(startupMessage()));
    s.on('error', (e) => {
      if (!ready) finish(false, e.message);
    });
    s.on('close', () => {
      if (ready) {
        if (held.delete(s)) dropped++;
      } else finish(false, 'connection closed during startup');
    });
    s.on('data', (chunk: Buffer) => {
      if (ready) return; // idle: nothing expected; ParameterStatus or notices are ignored
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 5) {
        const type = buf[0]!;
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) break;
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        if (type === 0x52 /* R */) {
          const code = body.readInt32BE(0);
          if (code === 5) {
            const salt = body.subarray(4, 8);
            const inner = md5hex(password + user);
            s.write(passwordMessage(`md5${md5hex(Buffer.concat([Buffer.from(inner, 'utf8'), salt]))}`));
          } else if (code === 3) {
            s.write(passwordMessage(password));
          } else if (code !== 0) {
            finish(false, `unsupported authentication request ${code}`);
            return;
          }
        } else if (type === 0x45 /* E */) {
          finish(false, errorText(body));
          return;
        } else if (type === 0x5a /* Z */) {
          ready = true;
          held.add(s);
          buf = Buffer.alloc(0);
          finish(true);
          return;
        }
      }
    });
  });
}

async function openUpTo(total: number): Promise<{ failed: number }> {
  let failed = 0;
  let want = Math.max(0, total - held.size);
  // Bounded: never more attempts than asked for.
  const worker = async (): Promise<void> => {
    while (want > 0) {
      want--;
      if (!(await openOne())) failed++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { failed };
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'open') {
    const started = Date.now();
    errors.clear();
    void openUpTo(Number(arg)).then(({ failed }) => {
      const errs = [...errors].map(([m, n]) => `${m} (x${n})`);
      process.stdout.write(`${JSON.stringify({ held: held.size, failed, dropped, errors: errs, ms: Date.now() - started })}\n`);
    });
  } else if (cmd === 'quit') {
    for (const s of held) s.destroy();
    process.exit(0);
  }
});
rl.on('close', () => {
  for (const s of held) s.destroy();
  process.exit(0);
});
