// COPY through pgproxy: text, csv and binary formats in both directions, with psql's \copy and with a raw client
// (simple and extended protocol), and the ways a COPY IN ends badly (CopyFail from the client, a bad row found by
// the backend, protocol violations). Every exchange PostgreSQL decides is also run directly against the primary,
// and pgproxy must give the same replies.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { connectNode, sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { startTestProxy, withProxyClient } from './helpers/proxy.js';
import { errorCodes, errorFields, frame, lastReady, type Msg, pbe, ProtoClient, rows, serialize, tags, types } from './helpers/proto-client.js';

const info = sharedCluster();
const primary = info.nodes[0]!;
const standbyPorts = info.nodes.slice(1).map((n) => n.port);
const T = `px_copy_${process.pid}`;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startTestProxy(info);
});

afterAll(async () => {
  // Bounded: a proxy that cannot shut down (sessions stuck on a backend) is a failure, not a hung test run.
  if (proxy) await closeWithin(proxy, 15_000);
});

async function closeWithin(p: RunningProxy, ms: number): Promise<void> {
  if (!(await closesWithin(p, ms))) throw new Error(`proxy.close() did not finish within ${ms} ms (sessions left: ${p.context.registry.size})`);
}

async function closesWithin(p: RunningProxy, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([p.close().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return closed;
}

// ------------------------------------------------------------------------------------------------ helpers

function conninfo(port: number, host = '127.0.0.1'): string {
  return `host=${host} port=${port} user=${info.users.app.name} dbname=${info.database}`;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** psql with `input` on its stdin, bounded in time. */
function psql(port: number, args: string[], input = '', timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [conninfo(port), '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...args], {
      env: { ...process.env, PGPASSWORD: info.users.app.password },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined); // psql may exit before reading all of it
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

function proto(port: number, host = '127.0.0.1'): Promise<ProtoClient> {
  return ProtoClient.connect({ host, port, user: info.users.app.name, password: info.users.app.password, database: info.database });
}

/** Runs the same exchange through the proxy and directly on the primary; `where` tells which. */
async function onBoth<R>(fn: (c: ProtoClient, where: 'proxy' | 'direct') => Promise<R>): Promise<{ proxy: R; direct: R }> {
  const out: Partial<{ proxy: R; direct: R }> = {};
  for (const where of ['proxy', 'direct'] as const) {
    const c = where === 'proxy' ? await proto(proxy.port, proxy.host) : await proto(primary.port, primary.host);
    try {
      out[where] = await fn(c, where);
    } finally {
      await c.end();
    }
  }
  return out as { proxy: R; direct: R };
}

async function onPrimary<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
  const c = await connectNode(info, 0);
  try {
    return (await c.query(sql, params)).rows as R[];
  } finally {
    await c.end();
  }
}

async function count(table: string): Promise<number> {
  return Number((await onPrimary<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
}

async function replayed(): Promise<void> {
  await (await sharedClusterHandle()).waitForReplay();
}

/** Concatenated CopyData payloads of `msgs`. */
function copyData(msgs: readonly Msg[]): Buffer {
  return Buffer.concat(msgs.filter((m) => m.type === 'd').map((m) => m.body));
}

/** Splits `data` into CopyData messages of `size` bytes (rows cut anywhere: COPY must not care). */
function copyChunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(serialize.copyData(data.subarray(i, i + size)));
  return out;
}

/** The message types a read produced, or 'TIMEOUT' / 'CLOSED' (so that a comparison shows every step). */
async function step(p: Promise<Msg[]>): Promise<string> {
  try {
    return types(await p);
  } catch (err) {
    return (err as Error).message.includes('closed') ? 'CLOSED' : 'TIMEOUT';
  }
}

function errorSummary(msgs: readonly Msg[]): Record<string, string | undefined>[] {
  return msgs.filter((m) => m.type === 'E').map((m) => {
    const f = errorFields(m.body);
    return { S: f.S, C: f.C, M: f.M, W: f.W };
  });
}

async function createTable(name: string, columns: string): Promise<void> {
  await onPrimary(`CREATE TABLE ${name} (${columns})`);
}

// ------------------------------------------------------------------------------------------------ data

// Text format, written in COPY's canonical escapes so that COPY TO gives back exactly these bytes.
const TEXT_INPUT =
  Array.from({ length: 1000 }, (_, i) => {
    const v = i % 7 === 0 ? '\\N' : i % 11 === 0 ? '' : `tab\\there\\nnew line, back\\\\slash, é☃ ${i}`;
    return `${i}\t${v}\t${(i * 1.25).toFixed(2)}`;
  }).join('\n') + '\n';

const CSV_INPUT = [
  'id,v,note',
  '1,"a ""quoted"" value","line1',
  'line2"',
  '2,plain,',
  '3,"comma, inside",""',
  '4,"ends with newline',
  '","x,y ""z"""',
  '',
].join('\n');

// ------------------------------------------------------------------------------------------------ tests

describe('COPY with psql through the proxy', () => {
  it('text format: \\copy FROM STDIN, then COPY TO STDOUT gives the same bytes as the primary (and as the input)', async () => {
    const table = `${T}_text`;
    await createTable(table, 'id int primary key, v text, n numeric');
    const copyIn = await psql(proxy.port, ['-c', `\\copy ${table} from stdin`], TEXT_INPUT);
    expect(copyIn.stderr).toBe('');
    expect(copyIn.code).toBe(0);
    expect(await count(table)).toBe(1000);
    await replayed();
    const sql = `COPY (SELECT * FROM ${table} ORDER BY id) TO STDOUT`;
    const viaProxy = await psql(proxy.port, ['-c', sql]);
    const direct = await psql(primary.port, ['-c', sql]);
    expect(viaProxy.stderr).toBe('');
    expect(viaProxy.stdout).toBe(direct.stdout);
    expect(viaProxy.stdout).toBe(TEXT_INPUT);
    const nulls = await onPrimary<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE v IS NULL`);
    expect(Number(nulls[0]!.n)).toBe(143);
  });

  it('csv with a header, quotes and embedded newlines round-trips byte for byte', async () => {
    const table = `${T}_csv`;
    await createTable(table, 'id int primary key, v text, note text');
    const copyIn = await psql(proxy.port, ['-c', `\\copy ${table} from stdin with (format csv, header true)`], CSV_INPUT);
    expect(copyIn.stderr).toBe('');
    expect(copyIn.code).toBe(0);
    expect(await onPrimary(`SELECT id, v, note FROM ${table} ORDER BY id`)).toEqual([
      { id: 1, v: 'a "quoted" value', note: 'line1\nline2' },
      { id: 2, v: 'plain', note: null },
      { id: 3, v: 'comma, inside', note: '' },
      { id: 4, v: 'ends with newline\n', note: 'x,y "z"' },
    ]);
    await replayed();
    const sql = `COPY (SELECT * FROM ${table} ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER true)`;
    const viaProxy = await psql(proxy.port, ['-c', sql]);
    const direct = await psql(primary.port, ['-c', sql]);
    expect(viaProxy.stdout).toBe(direct.stdout);
    expect(viaProxy.stdout).toBe(CSV_INPUT);
  });

  it('a bad value on line 3 of \\copy: psql reports the same error and line as from the primary; nothing inserted', async () => {
    const table = `${T}_psqlbad`;
    await createTable(table, 'id int, v text');
    const input = '1\ta\n2\tb\nx\tc\n4\td\n';
    const viaProxy = await psql(proxy.port, ['-c', `\\copy ${table} from stdin`], input);
    const direct = await psql(primary.port, ['-c', `\\copy ${table} from stdin`], input);
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toMatch(/invalid input syntax for type integer: "x"/);
    expect(direct.stderr).toMatch(/line 3/);
    expect(viaProxy.code).toBe(direct.code);
    expect(viaProxy.stderr).toBe(direct.stderr);
    expect(await count(table)).toBe(0);
  });
});

describe('COPY with the raw protocol', () => {
  it('COPY FROM STDIN (simple protocol), data cut at arbitrary points, answered as by PostgreSQL', async () => {
    const table = `${T}_raw`;
    await createTable(table, 'id int, v text');
    const data = Buffer.from(Array.from({ length: 200 }, (_, i) => `${i}\tline ${i}\n`).join(''));
    const r = await onBoth(async (c) => {
      c.send(serialize.query(`COPY ${table} FROM STDIN`));
      const start = await c.readUntil((m) => m.type === 'G' || m.type === 'E');
      c.send(...copyChunks(data, 13), serialize.copyDone());
      const end = await c.readUntilReady();
      const after = await c.query('SELECT 1 AS ok');
      return { start, end, after };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.start)).toBe('G');
      expect(types(x.end)).toBe('CZ');
      expect(tags(x.end)).toEqual(['COPY 200']);
      expect(rows(x.after)).toEqual([['1']]);
    }
    // CopyInResponse body: overall format and per-column formats.
    expect(r.proxy.start[0]!.body).toEqual(r.direct.start[0]!.body);
    expect(await count(table)).toBe(400);
  });

  it('COPY TO STDOUT: the same CopyOutResponse, data and tag as from the primary', async () => {
    const sql = `COPY (SELECT g, md5(g::text) FROM generate_series(1, 5000) g) TO STDOUT`;
    const r = await onBoth(async (c) => c.query(sql));
    expect(types(r.proxy)).toMatch(/^Hd+cCZ$/);
    expect(r.proxy.find((m) => m.type === 'H')!.body).toEqual(r.direct.find((m) => m.type === 'H')!.body);
    expect(copyData(r.proxy)).toEqual(copyData(r.direct));
    expect(tags(r.proxy)).toEqual(['COPY 5000']);
  });

  it('binary format both ways: COPY FROM STDIN (FORMAT binary) of PostgreSQL\'s own binary output gives it back unchanged', async () => {
    const src = `${T}_bin_src`;
    const dst = `${T}_bin_dst`;
    const cols = 'id int, t text, b bytea, f float8, n numeric, ok bool, ts timestamptz, arr int[], j jsonb';
    await createTable(src, cols);
    await createTable(dst, cols);
    await onPrimary(
      `INSERT INTO ${src} SELECT g, 'row ' || g || E'\\n\\t\\\\', decode(md5(g::text), 'hex'), g / 3.0, g * 1000.001, g % 2 = 0,
         timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', ARRAY[g, -g, NULL], jsonb_build_object('g', g, 'nested', jsonb_build_array(g, 'x'))
       FROM generate_series(1, 300) g`,
    );
    await onPrimary(`INSERT INTO ${src} (id) VALUES (0)`); // a row of NULLs
    const orig = await proto(primary.port, primary.host);
    let binary: Buffer;
    try {
      binary = copyData(await orig.query(`COPY (SELECT * FROM ${src} ORDER BY id) TO STDOUT (FORMAT binary)`));
    } finally {
      await orig.end();
    }
    expect(binary.subarray(0, 11)).toEqual(Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'));

    const c = await proto(proxy.port, proxy.host);
    try {
      c.send(serialize.query(`COPY ${dst} FROM STDIN (FORMAT binary)`));
      expect(types(await c.readUntil((m) => m.type === 'G'))).toBe('G');
      c.send(...copyChunks(binary, 7), serialize.copyDone());
      const end = await c.readUntilReady(15_000);
      expect(types(end)).toBe('CZ');
      expect(tags(end)).toEqual(['COPY 301']);
      // Read back through the proxy, from the primary (a transaction) and from a standby (after replay).
      await c.query('BEGIN');
      const fromPrimary = await c.query(`COPY (SELECT *, inet_server_port() FROM ${dst} ORDER BY id) TO STDOUT`);
      await c.query('COMMIT');
      expect(new Set(copyData(fromPrimary).toString().trim().split('\n').map((l) => l.split('\t').pop()))).toEqual(new Set([String(primary.port)]));
      await replayed();
      const back = await c.query(`COPY (SELECT * FROM ${dst} ORDER BY id) TO STDOUT (FORMAT binary)`);
      expect(types(back)).toMatch(/^Hd+cCZ$/);
      expect(copyData(back).equals(binary)).toBe(true);
      const port = rows(await c.query('SELECT inet_server_port()'))[0]![0];
      expect(standbyPorts).toContain(Number(port));
    } finally {
      await c.end();
    }
  });

  it('CopyFail from the client: ERROR 57014 from the backend, nothing inserted, the session usable', async () => {
    const table = `${T}_fail`;
    await createTable(table, 'id int');
    const r = await onBoth(async (c) => {
      c.send(serialize.query(`COPY ${table} FROM STDIN`));
      const start = await c.readUntil((m) => m.type === 'G');
      c.send(serialize.copyData(Buffer.from('1\n2\n')), serialize.copyData(Buffer.from('3\n')), serialize.copyFail('client gave up'));
      const end = await c.readUntilReady();
      const after = await c.query('SELECT 2 AS ok');
      return { start, end, after };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.start)).toBe('G');
      expect(types(x.end)).toBe('EZ');
      expect(lastReady(x.end)).toBe('I');
      expect(errorCodes(x.end)).toEqual(['57014']);
      expect(errorFields(x.end[0]!.body).M).toBe('COPY from stdin failed: client gave up');
      expect(rows(x.after)).toEqual([['2']]);
    }
    expect(errorSummary(r.proxy.end)).toEqual(errorSummary(r.direct.end));
    expect(await count(table)).toBe(0);
  });

  it('a bad value on line 3: the error names the line, further CopyData/CopyDone are ignored, session usable', async () => {
    const table = `${T}_bad`;
    await createTable(table, 'id int, v text');
    const r = await onBoth(async (c) => {
      c.send(serialize.query(`COPY ${table} FROM STDIN`));
      await c.readUntil((m) => m.type === 'G');
      c.send(serialize.copyData(Buffer.from('1\ta\n2\tb\nx\tc\n')));
      const error = await c.readUntilReady();
      // The client had more to send: PostgreSQL drops it.
      c.send(serialize.copyData(Buffer.from('4\td\n')), serialize.copyData(Buffer.from('5\te\n')), serialize.copyDone());
      const after = await c.query('SELECT 3 AS ok');
      const silence = await c.drain(300);
      return { error, after, silence };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.error)).toBe('EZ');
      expect(lastReady(x.error)).toBe('I');
      expect(errorCodes(x.error)).toEqual(['22P02']);
      expect(errorFields(x.error[0]!.body).W).toMatch(/line 3/);
      expect(types(x.after)).toBe('TDCZ');
      expect(rows(x.after)).toEqual([['3']]);
      expect(x.silence).toEqual([]);
    }
    expect(errorSummary(r.proxy.error)).toEqual(errorSummary(r.direct.error));
    expect(await count(table)).toBe(0);
  });

  it('a bad value on line 3 with everything pipelined (data, CopyDone and the next Query in one write)', async () => {
    const table = `${T}_badpipe`;
    await createTable(table, 'id int, v text');
    const r = await onBoth(async (c) => {
      c.send(
        serialize.query(`COPY ${table} FROM STDIN`),
        serialize.copyData(Buffer.from('1\ta\n2\tb\nx\tc\n')),
        serialize.copyData(Buffer.from('4\td\n')),
        serialize.copyDone(),
        serialize.query('SELECT 4 AS ok'),
      );
      // Both Queries answered (two ReadyForQuery), then nothing more.
      const msgs = [...(await c.collectReady(2)), ...(await c.drain(300))];
      return { types: types(msgs), errors: errorSummary(msgs) };
    });
    expect(r.direct.types).toBe('GEZTDCZ');
    expect(r.proxy).toEqual(r.direct);
    expect(await count(table)).toBe(0);
  });
});

describe('COPY in the extended protocol', () => {
  it('Parse/Bind/Execute of COPY FROM STDIN, then CopyData/CopyDone, then Sync', async () => {
    const table = `${T}_ext`;
    await createTable(table, 'id int, v text');
    const r = await onBoth(async (c, where) => {
      c.send(pbe(`COPY ${table} FROM STDIN`), serialize.flush());
      const start = await c.readUntil((m) => m.type === 'G' || m.type === 'E');
      c.send(serialize.copyData(Buffer.from(`1\t${where}\n2\t${where}\n`)), serialize.copyData(Buffer.from(`3\t${where}\n`)), serialize.copyDone(), serialize.sync());
      const end = await c.readUntilReady();
      const after = await c.query('SELECT 5 AS ok');
      return { start, end, after };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.start)).toBe('12G');
      expect(types(x.end)).toBe('CZ');
      expect(tags(x.end)).toEqual(['COPY 3']);
      expect(rows(x.after)).toEqual([['5']]);
    }
    expect(await onPrimary(`SELECT v, count(*)::int AS n FROM ${table} GROUP BY v ORDER BY v`)).toEqual([
      { v: 'direct', n: 3 },
      { v: 'proxy', n: 3 },
    ]);
  });

  it('libpq style: Parse/Bind/Execute/Sync sent at once, then CopyData/CopyDone/Sync (the Sync during COPY is ignored)', async () => {
    const table = `${T}_extsync`;
    await createTable(table, 'id int, v text');
    const r = await onBoth(async (c, where) => {
      const steps: Record<string, string> = {};
      c.send(pbe(`COPY ${table} FROM STDIN`), serialize.sync());
      steps.start = await step(c.readUntil((m) => m.type === 'G' || m.type === 'E'));
      c.send(serialize.copyData(Buffer.from(`1\t${where}\n`)), serialize.copyDone(), serialize.sync());
      steps.end = await step(c.readUntilReady());
      steps.extra = types(await c.drain(300));
      // The session goes on normally: a read, a write and a read, each answered once.
      steps.read = await step(c.query('SELECT 6 AS ok', 5_000));
      steps.write = await step(c.query(`INSERT INTO ${table} VALUES (2, '${where}')`, 5_000));
      steps.read2 = await step(c.query('SELECT 7 AS ok', 5_000));
      return steps;
    });
    expect(r.direct).toEqual({ start: '12G', end: 'CZ', extra: '', read: 'TDCZ', write: 'CZ', read2: 'TDCZ' });
    expect(r.proxy).toEqual(r.direct);
    expect(await onPrimary(`SELECT v, count(*)::int AS n FROM ${table} GROUP BY v ORDER BY v`)).toEqual([
      { v: 'direct', n: 2 },
      { v: 'proxy', n: 2 },
    ]);
  });

  it('a bad row in an extended-protocol COPY: error, then everything up to Sync skipped, ReadyForQuery', async () => {
    const table = `${T}_extbad`;
    await createTable(table, 'id int');
    const r = await onBoth(async (c) => {
      c.send(pbe(`COPY ${table} FROM STDIN`), serialize.flush());
      const start = await c.readUntil((m) => m.type === 'G');
      c.send(serialize.copyData(Buffer.from('1\nnope\n')), serialize.copyData(Buffer.from('3\n')), serialize.copyDone(), pbe('SELECT 1'), serialize.sync());
      const end = await c.readUntilReady();
      const after = await c.query('SELECT 8 AS ok');
      return { start, end, after };
    });
    for (const x of [r.proxy, r.direct]) {
      expect(types(x.start)).toBe('12G');
      expect(types(x.end)).toBe('EZ');
      expect(errorCodes(x.end)).toEqual(['22P02']);
      expect(rows(x.after)).toEqual([['8']]);
    }
    expect(errorSummary(r.proxy.end)).toEqual(errorSummary(r.direct.end));
    expect(await count(table)).toBe(0);
  });

  it('Parse/Bind/Execute of COPY TO STDOUT, then Sync', async () => {
    const r = await onBoth(async (c) => {
      c.send(pbe(`COPY (SELECT g, repeat('y', g % 50) FROM generate_series(1, 2000) g) TO STDOUT (FORMAT csv)`), serialize.sync());
      return c.readUntilReady();
    });
    expect(types(r.proxy)).toMatch(/^12Hd+cCZ$/);
    expect(copyData(r.proxy)).toEqual(copyData(r.direct));
    expect(tags(r.proxy)).toEqual(['COPY 2000']);
  });
});

describe('protocol violations during COPY IN', () => {
  it('a Query message in the middle of COPY FROM STDIN gets what PostgreSQL gives', async () => {
    const table = `${T}_violation`;
    await createTable(table, 'id int');
    const r = await onBoth(async (c) => {
      c.send(serialize.query(`COPY ${table} FROM STDIN`));
      await c.readUntil((m) => m.type === 'G');
      c.send(serialize.copyData(Buffer.from('1\n')), serialize.query('SELECT 9 AS ok'));
      // Everything up to the connection's close or the next ReadyForQuery, then whether it closed.
      const msgs = [...(await c.collectReady(1)), ...(await c.drain(300))];
      return { types: types(msgs), errors: errorSummary(msgs), closed: await c.waitClosed(5_000) };
    });
    expect(r.proxy).toEqual(r.direct);
    expect(await count(table)).toBe(0);
  });

  it('an unknown message type in the middle of COPY FROM STDIN: an 08P01 error, the COPY is not committed', async () => {
    const table = `${T}_junk`;
    await createTable(table, 'id int');
    const r = await onBoth(async (c) => {
      c.send(serialize.query(`COPY ${table} FROM STDIN`));
      await c.readUntil((m) => m.type === 'G');
      c.send(serialize.copyData(Buffer.from('1\n')), frame('~', 'junk'));
      const msgs = [...(await c.collectReady(1)), ...(await c.drain(300))];
      return { msgs };
    });
    expect(errorCodes(r.direct.msgs)[0]).toBe('08P01');
    // pgproxy may close the connection where PostgreSQL only fails the COPY, but it must say why first.
    expect(errorCodes(r.proxy.msgs)[0]).toBe('08P01');
    expect(await count(table)).toBe(0);
    // ... and the proxy is fine.
    await withProxyClient(proxy, info, async (c) => expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]));
  });
});
