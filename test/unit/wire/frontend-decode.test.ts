import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { CANCEL_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE } from '../../../src/wire/codes.js';
import { Framer } from '../../../src/wire/framer.js';
import {
  bindPortalName,
  bindStatementName,
  closeStatement,
  cstringEnd,
  executePortalName,
  bodyProblem,
  MessageError,
  parseParse,
  parseStartup,
  queryMessage,
  queryText,
  targetName,
} from '../../../src/wire/frontend.js';

// Messages are built by node-postgres' own serializer (what every pg client sends) and located with our
// Framer, so offsets are the ones the session passes: several frames packed in one chunk, none at offset 0.

interface Located {
  type: number;
  buf: Buffer;
  start: number;
  bodyStart: number;
  end: number;
}

/** Frames of `messages` as they lie in one chunk (each after a leading Sync so nothing sits at offset 0). */
function locate(messages: Buffer[], untypedFirst = false): Located[] {
  const chunk = Buffer.concat(untypedFirst ? messages : [serialize.sync(), ...messages]);
  const f = new Framer(1 << 20, untypedFirst);
  f.push(chunk);
  const out: Located[] = [];
  while (f.next()) out.push({ type: f.type, buf: f.buf, start: f.start, bodyStart: f.bodyStart, end: f.end });
  expect(f.pending).toBe(false);
  return untypedFirst ? out : out.slice(1);
}

function one(message: Buffer): Located {
  const [m] = locate([message, serialize.flush()]);
  return m!;
}

/** A MessageError with its stable code. */
function expectMessageError(fn: () => unknown): void {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(MessageError);
  expect((error as MessageError).code).toBe('MESSAGE');
}

/** `message` with the NUL at body offset `at` replaced, and another frame (with zero bytes in it) after it. */
function unterminated(message: Buffer, bodyOffset: number): Located {
  const b = Buffer.from(message);
  expect(b[5 + bodyOffset]).toBe(0);
  b[5 + bodyOffset] = 0x78;
  return one(b);
}

describe('parseStartup', () => {
  it('reads the protocol and every parameter of a node-postgres startup packet', () => {
    const opts = {
      user: 'alice',
      database: 'shop',
      application_name: 'pgproxy-test',
      options: '-c search_path=app,public -c statement_timeout=5s',
      replication: 'false',
    };
    const [m] = locate([serialize.startup(opts)], true);
    expect(m!.type).toBe(0);
    expect(m!.bodyStart - m!.start).toBe(4);
    const p = parseStartup(m!.buf, m!.start, m!.end);
    expect(p.protocol).toBe(PROTOCOL_3_0);
    expect(Object.fromEntries(p.params)).toEqual({ ...opts, client_encoding: 'UTF8' });
  });

  it('decodes UTF-8 names and values, and empty values', () => {
    const [m] = locate([serialize.startup({ user: 'jürgen', database: '数据库', application_name: '' })], true);
    const p = parseStartup(m!.buf, m!.start, m!.end);
    expect(p.params.get('user')).toBe('jürgen');
    expect(p.params.get('database')).toBe('数据库');
    expect(p.params.get('application_name')).toBe('');
  });

  it('works at a non-zero offset, as after an SSLRequest was refused in the same buffer', () => {
    const chunk = Buffer.concat([serialize.requestSsl(), serialize.startup({ user: 'bob' })]);
    const f = new Framer(10_000, true);
    f.push(chunk);
    expect(f.next()).toBe(true);
    expect(parseStartup(f.buf, f.start, f.end)).toEqual({ protocol: SSL_REQUEST_CODE, params: new Map() });
    f.expectUntyped();
    expect(f.next()).toBe(true);
    expect(f.start).toBe(8);
    const p = parseStartup(f.buf, f.start, f.end);
    expect(p.protocol).toBe(PROTOCOL_3_0);
    expect(p.params.get('user')).toBe('bob');
  });

  it('reads the request code of a CancelRequest', () => {
    const [m] = locate([serialize.cancel(1234, 5678)], true);
    expect(parseStartup(m!.buf, m!.start, m!.end).protocol).toBe(CANCEL_REQUEST_CODE);
  });

  it('rejects a packet shorter than length + protocol', () => {
    const b = Buffer.from([0, 0, 0, 6, 0, 3]);
    expectMessageError(() => parseStartup(b, 0, b.length));
  });

  it('rejects an unterminated name or value, even when zero bytes follow the packet', () => {
    // Hand-made: a NUL in the middle would only shift the pairs, so cut the packet inside its last pair.
    for (const tail of ['user', 'user\0alice', 'user\0alice\0database']) {
      const packet = Buffer.concat([Buffer.alloc(4), Buffer.from([0, 3, 0, 0]), Buffer.from(tail)]);
      packet.writeInt32BE(packet.length, 0);
      const chunk = Buffer.concat([packet, serialize.sync(), Buffer.alloc(8)]);
      expectMessageError(() => parseStartup(chunk, 0, packet.length));
    }
  });
});

describe('queryText', () => {
  it.each(['select 1', '', 'SELECT $$a\nb$$, \'ü\' /* c */;', 'x'.repeat(70_000)])('reads %#', (sql) => {
    const m = one(serialize.query(sql));
    expect(m.type).toBe(0x51);
    expect(queryText(m.buf, m.bodyStart, m.end)).toBe(sql);
  });

  it('reads what queryMessage() encodes', () => {
    const m = one(queryMessage('set application_name = $$pgproxy$$'));
    expect(queryText(m.buf, m.bodyStart, m.end)).toBe('set application_name = $$pgproxy$$');
  });

  it('rejects an unterminated query instead of reading into the next frame', () => {
    const sql = 'select 1';
    const m = unterminated(serialize.query(sql), sql.length);
    expectMessageError(() => queryText(m.buf, m.bodyStart, m.end));
  });
});

describe('parseParse', () => {
  it('reads a named statement with parameter types', () => {
    const m = one(serialize.parse({ name: 'stmt_1', text: 'select $1::int + $2', types: [23, 20] }));
    expect(m.type).toBe(0x50);
    expect(parseParse(m.buf, m.bodyStart, m.end)).toEqual({ name: 'stmt_1', sql: 'select $1::int + $2' });
  });

  it('reads the unnamed statement', () => {
    const m = one(serialize.parse({ text: 'insert into t values ($1)' }));
    expect(parseParse(m.buf, m.bodyStart, m.end)).toEqual({ name: '', sql: 'insert into t values ($1)' });
  });

  it('reads UTF-8 names and text', () => {
    const m = one(serialize.parse({ name: 'größe', text: "select 'äöü'" }));
    expect(parseParse(m.buf, m.bodyStart, m.end)).toEqual({ name: 'größe', sql: "select 'äöü'" });
  });

  it('rejects an unterminated name or query text', () => {
    // The frame ends inside the name, then inside the text; a Flush with zero bytes follows in the chunk.
    for (const body of ['stmt', 'stmt\0select 1', '\0select 1']) {
      const frame = Buffer.concat([Buffer.from([0x50, 0, 0, 0, 0]), Buffer.from(body)]);
      frame.writeInt32BE(frame.length - 1, 1);
      const m = one(frame);
      expectMessageError(() => parseParse(m.buf, m.bodyStart, m.end));
    }
  });
});

describe('Bind names', () => {
  it.each([
    ['', ''],
    ['', 'stmt'],
    ['portal', ''],
    ['p1', 'prepared_statement_with_a_long_name'],
    ['pörtal', 'stätement'],
  ])('portal %j statement %j', (portal, statement) => {
    const m = one(serialize.bind({ portal, statement, values: ['1', null, Buffer.from([0, 1, 2])], binary: true }));
    expect(m.type).toBe(0x42);
    expect(bindPortalName(m.buf, m.bodyStart, m.end)).toBe(portal);
    expect(bindStatementName(m.buf, m.bodyStart, m.end)).toBe(statement);
  });

  it('rejects an unterminated portal or statement name', () => {
    const empty = Buffer.from([0x42, 0, 0, 0, 5, 0x70]); // portal "p" with no NUL, frame ends
    let m = one(empty);
    expectMessageError(() => bindPortalName(m.buf, m.bodyStart, m.end));
    expectMessageError(() => bindStatementName(m.buf, m.bodyStart, m.end));
    const noStatementEnd = Buffer.from([0x42, 0, 0, 0, 7, 0x70, 0, 0x73]); // "p\0" then "s" with no NUL
    m = one(noStatementEnd);
    expect(bindPortalName(m.buf, m.bodyStart, m.end)).toBe('p');
    expectMessageError(() => bindStatementName(m.buf, m.bodyStart, m.end));
  });
});

describe('targetName (Describe, Close)', () => {
  it.each([
    ['S', ''],
    ['S', 'stmt_7'],
    ['P', ''],
    ['P', 'cursor_1'],
    ['S', 'ünïcode'],
  ] as const)('Describe %s %j', (type, name) => {
    const m = one(serialize.describe({ type, name }));
    expect(m.type).toBe(0x44);
    expect(m.buf[m.bodyStart]).toBe(type.charCodeAt(0));
    expect(targetName(m.buf, m.bodyStart, m.end)).toBe(name);
  });

  it.each([
    ['S', ''],
    ['S', 'stmt_7'],
    ['P', 'cursor_1'],
  ] as const)('Close %s %j', (type, name) => {
    const m = one(serialize.close({ type, name }));
    expect(m.type).toBe(0x43);
    expect(targetName(m.buf, m.bodyStart, m.end)).toBe(name);
  });

  it('reads what closeStatement() encodes', () => {
    const m = one(closeStatement('pgproxy_s1'));
    expect(m.buf[m.bodyStart]).toBe(0x53);
    expect(targetName(m.buf, m.bodyStart, m.end)).toBe('pgproxy_s1');
  });

  it('rejects a missing kind byte and an unterminated name', () => {
    let m = one(Buffer.from([0x44, 0, 0, 0, 4]));
    expectMessageError(() => targetName(m.buf, m.bodyStart, m.end));
    m = one(Buffer.from([0x44, 0, 0, 0, 5, 0x53]));
    expectMessageError(() => targetName(m.buf, m.bodyStart, m.end));
    m = unterminated(serialize.close({ type: 'S', name: 'abc' }), 4);
    expectMessageError(() => targetName(m.buf, m.bodyStart, m.end));
  });
});

describe('executePortalName', () => {
  it.each([
    [undefined, undefined],
    ['', 10],
    ['portal_1', undefined],
    ['portal_1', 500],
    ['pörtal', 1],
  ])('portal %j rows %j', (portal, rows) => {
    const m = one(serialize.execute({ ...(portal !== undefined && { portal }), ...(rows !== undefined && { rows }) }));
    expect(m.type).toBe(0x45);
    expect(executePortalName(m.buf, m.bodyStart, m.end)).toBe(portal ?? '');
  });

  it('rejects an unterminated portal name', () => {
    const m = one(Buffer.from([0x45, 0, 0, 0, 7, 0x70, 0x71, 0x72]));
    expectMessageError(() => executePortalName(m.buf, m.bodyStart, m.end));
  });
});

describe('cstringEnd', () => {
  it('finds the NUL inside the range and refuses one at or past the end', () => {
    const b = Buffer.from('ab\0cd\0');
    expect(cstringEnd(b, 0, 6)).toBe(2);
    expect(cstringEnd(b, 3, 6)).toBe(5);
    expectMessageError(() => cstringEnd(b, 3, 5));
    expectMessageError(() => cstringEnd(b, 0, 2));
    expectMessageError(() => cstringEnd(b, 6, 6));
  });
});

describe("bodyProblem: PostgreSQL's answer to a malformed Close, Describe, Execute, Flush or Sync", () => {
  const body = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
  const check = (type: string, b: Buffer): string | null => {
    const buf = Buffer.concat([Buffer.from('junk'), b, Buffer.from('tail')]);
    return bodyProblem(type.charCodeAt(0), buf, 4, 4 + b.length);
  };

  it('well-formed bodies have none', () => {
    expect(check('C', body('S', 'name\0'))).toBeNull();
    expect(check('D', body('P', '\0'))).toBeNull();
    expect(check('E', body('\0', [0, 0, 0, 5]))).toBeNull();
    expect(check('S', body())).toBeNull();
    expect(check('H', body())).toBeNull();
    expect(check('Q', body('no NUL here'))).toBeNull(); // not checked here: the decoders raise it
  });

  it('each field read in order, as pqformat.c reads it', () => {
    expect(check('C', body())).toBe('no data left in message');
    expect(check('C', body('S', 'name'))).toBe('invalid string in message');
    expect(check('D', body('S', 'n\0', 'x'))).toBe('invalid message format');
    expect(check('C', body('X', 'n\0'))).toBe('invalid CLOSE message subtype 88');
    expect(check('D', body('Q', '\0'))).toBe('invalid DESCRIBE message subtype 81');
    expect(check('E', body('p'))).toBe('invalid string in message');
    expect(check('E', body('\0', [0, 0]))).toBe('insufficient data left in message');
    expect(check('E', body('\0', [0, 0, 0, 0, 1]))).toBe('invalid message format');
    expect(check('S', body('x'))).toBe('invalid message format');
    expect(check('H', body('x'))).toBe('invalid message format');
  });
});
