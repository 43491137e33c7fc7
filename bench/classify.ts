/**
 * Classifier micro-benchmark, per statement as the session meets it: SQL text in a message buffer.
 *
 * The measured call is `classifyBytes(buf, start, end)` when src/router/classify.ts exports it (a cache keyed
 * on the bytes, insensitive to literals), else `classify(buf.toString('utf8', start, end))`, which is what the
 * session does today (decode the Query text, then the LRU keyed on the exact text). The result says which.
 * Timed through that call:
 *   - cached: a fixed mixed corpus (pgbench, ORM statements with sqlcommenter comments, long IN lists, CTEs,
 *     DDL, transaction and session commands) over and over, warm cache;
 *   - literal-varying: pgbench's select-only statement with a random aid each time, as `pgbench -S` sends it.
 * Informational: the cached corpus through `classify(sql)` with the text already decoded (no decode, and V8
 * has the string's hash), and "uncached": `classify(sql)` with a distinct text every call (lex + classify +
 * LRU insert and eviction).
 *
 * Standalone: `npx tsc -p tsconfig.build.json && node dist/bench/classify.js`
 */
import { pathToFileURL } from 'node:url';
import * as classifier from '../src/router/classify/index.js';

const ids = (n: number): string => Array.from({ length: n }, (_, i) => 1000 + i * 7).join(', ');

/** `{n}` marks a literal the uncached run varies. */
const TEMPLATES: readonly string[] = [
  // pgbench (tpcb-like, select-only)
  'SELECT abalance FROM pgbench_accounts WHERE aid = {n}',
  'UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = {n}',
  'UPDATE pgbench_tellers SET tbalance = tbalance + -4321 WHERE tid = {n}',
  'UPDATE pgbench_branches SET bbalance = bbalance + -4321 WHERE bid = {n}',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, {n}, -4321, CURRENT_TIMESTAMP)',
  'BEGIN /* {n} */',
  'END /* {n} */',
  // ORM-style, with sqlcommenter comments
  "SELECT \"users\".\"id\", \"users\".\"email\", \"users\".\"created_at\" FROM \"users\" WHERE \"users\".\"id\" = {n} LIMIT 1 /*application='shop',controller='users',action='show'*/",
  "SELECT \"orders\".* FROM \"orders\" WHERE \"orders\".\"user_id\" = {n} AND \"orders\".\"state\" IN ('paid', 'shipped') ORDER BY \"orders\".\"created_at\" DESC LIMIT 25 OFFSET 0 /*controller='orders',action='index',framework='rails'*/",
  "INSERT INTO \"orders\" (\"user_id\", \"total_cents\", \"state\", \"created_at\", \"updated_at\") VALUES ({n}, 1999, 'pending', '2024-05-01 10:00:00', '2024-05-01 10:00:00') RETURNING \"id\" /*controller='checkout',action='create'*/",
  "UPDATE \"orders\" SET \"state\" = 'paid', \"updated_at\" = '2024-05-01 10:00:01' WHERE \"orders\".\"id\" = {n} /*controller='payments',action='callback'*/",
  'SELECT t0.id AS id_0, t0.name AS name_1, t1.id AS id_2 FROM products t0 LEFT JOIN categories t1 ON t0.category_id = t1.id WHERE t0.id = {n}',
  'SELECT COUNT(*) AS "__count" FROM "app_comment" WHERE ("app_comment"."post_id" = {n} AND "app_comment"."approved")',
  "SELECT \"app_post\".\"id\", \"app_post\".\"title\" FROM \"app_post\" WHERE (\"app_post\".\"published_at\" <= '2024-01-01T00:00:00+00:00'::timestamptz AND \"app_post\".\"author_id\" = {n}) ORDER BY \"app_post\".\"published_at\" DESC",
  'SELECT "User"."id", "User"."name" FROM "public"."User" WHERE "User"."id" = $1 /* prisma {n} */',
  'SELECT * FROM accounts WHERE id = {n} FOR UPDATE',
  'SELECT * FROM jobs WHERE state = \'queued\' ORDER BY priority DESC, id LIMIT {n} FOR UPDATE SKIP LOCKED',
  "DELETE FROM sessions WHERE expires_at < now() - interval '{n} days'",
  'SELECT nextval(\'orders_id_seq\') /* {n} */',
  'SELECT pg_advisory_xact_lock({n})',
  "SELECT set_config('app.tenant_id', '{n}', false)",
  // long IN lists
  `SELECT id, name FROM items WHERE id IN ({n}, ${ids(100)})`,
  `SELECT * FROM events WHERE account_id = {n} AND id IN (${ids(1000)})`,
  `DELETE FROM cart_items WHERE cart_id = {n} AND product_id IN (${ids(50)})`,
  // CTEs
  'WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval \'1 day\') SELECT user_id, count(*) FROM recent WHERE total > {n} GROUP BY user_id HAVING count(*) > 1',
  'WITH RECURSIVE tree(id, parent_id, depth) AS (SELECT id, parent_id, 0 FROM nodes WHERE id = {n} UNION ALL SELECT n.id, n.parent_id, t.depth + 1 FROM nodes n JOIN tree t ON n.parent_id = t.id) SELECT * FROM tree',
  'WITH moved AS (DELETE FROM queue WHERE id = {n} RETURNING *) INSERT INTO archive SELECT * FROM moved',
  'WITH u AS (UPDATE stock SET qty = qty - 1 WHERE sku = \'{n}\' RETURNING qty) SELECT qty FROM u',
  'SELECT a.id, (SELECT max(b.ts) FROM b WHERE b.a_id = a.id) AS last_b, coalesce(a.note, \'\') FROM a WHERE a.id > {n} AND EXISTS (SELECT 1 FROM c WHERE c.a_id = a.id)',
  'SELECT date_trunc(\'hour\', ts) AS h, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency) FROM requests WHERE ts > now() - interval \'{n} hours\' GROUP BY 1 ORDER BY 1',
  'SELECT * FROM generate_series(1, {n}) AS g(i) CROSS JOIN LATERAL (SELECT i * 2 AS d) x',
  'SELECT id, row_number() OVER (PARTITION BY group_id ORDER BY score DESC) AS rk FROM scores WHERE season = {n}',
  "SELECT jsonb_build_object('id', id, 'tags', tags) FROM docs WHERE body @@ to_tsquery('english', 'cat & dog') AND id > {n}",
  'SELECT count(*) FROM pg_stat_activity WHERE state = \'active\' AND pid <> {n}',
  'MERGE INTO inventory t USING incoming s ON t.sku = s.sku WHEN MATCHED THEN UPDATE SET qty = t.qty + s.qty WHEN NOT MATCHED THEN INSERT (sku, qty) VALUES (s.sku, {n})',
  'VALUES ({n}, \'a\'), (2, \'b\')',
  'TABLE pgbench_branches /* {n} */',
  'SHOW transaction_isolation /* {n} */',
  'EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM orders WHERE id = {n}',
  'COPY (SELECT * FROM orders WHERE id > {n}) TO STDOUT WITH (FORMAT csv)',
  // DDL
  'CREATE TABLE IF NOT EXISTS audit_{n} (id bigserial PRIMARY KEY, actor text NOT NULL, payload jsonb, at timestamptz DEFAULT now())',
  'CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_orders_{n} ON orders USING btree (user_id, created_at DESC) WHERE state <> \'cancelled\'',
  'ALTER TABLE orders ADD COLUMN IF NOT EXISTS note_{n} varchar(200)',
  'CREATE TEMP TABLE tmp_{n} AS SELECT * FROM orders WHERE false',
  'DROP TABLE IF EXISTS tmp_{n}',
  "CREATE OR REPLACE FUNCTION touch_{n}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$",
  // transactions and session
  'BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY /* {n} */',
  'SAVEPOINT sp_{n}',
  'SET statement_timeout = {n}',
  "SET LOCAL app.user_id = '{n}'",
  'DISCARD ALL /* {n} */',
];

/** One statement's classification from its bytes; the result's statement count keeps the work observable. */
type ClassifyFromBytes = (buf: Buffer, start: number, end: number) => { readonly statements: readonly unknown[] };

/** The call every goal line measures: classifyBytes when it exists, else decode + classify (what the session does). */
export function measuredCall(): { name: string; call: ClassifyFromBytes } {
  const exported = (classifier as unknown as Record<string, unknown>).classifyBytes;
  if (typeof exported === 'function') return { name: 'classifyBytes(buf, start, end)', call: exported as ClassifyFromBytes };
  return { name: "classify(buf.toString('utf8', start, end))", call: (buf, start, end) => classifier.classify(buf.toString('utf8', start, end)) };
}

export interface ClassifyResult {
  /** The call the goal figures went through (see measuredCall). */
  measuredCall: string;
  corpusSize: number;
  /** The corpus, warm cache holding just the corpus, mean per statement through the measured call. */
  cachedNsPerStatement: number;
  /** The same, per statement: the median statement's cost and the slowest statement (its cost, its first words). */
  cachedMedianNs: number;
  cachedSlowest: { ns: number; statement: string };
  /** pgbench's select-only statement alone (one aid), warm cache, through the measured call. */
  pgbenchCachedNs: number;
  /** pgbench's select-only statement with a random aid every call, through the measured call. */
  literalVaryingNs: number;
  /**
   * The corpus again, through the measured call, right after the literal-varying run: a cache keyed on the exact
   * text is then full of random-aid selects, as in the proxy under `pgbench -S` or tpcb-like (informational: the
   * cost of a hit depends on the cache's state).
   */
  cachedFullNs: number;
  /** The corpus, warm cache, through classify(sql) on texts already decoded (informational). */
  predecodedCachedNs: number;
  /** classify(sql) with a distinct text every call: lex + classify + LRU insert and eviction (informational). */
  uncachedNsPerStatement: number;
}

/** What `pgbench -S -M simple` sends, with this aid. */
const pgbenchSelect = (aid: number): string => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;

/** Texts laid out one after another in one buffer, as statements arrive inside a read buffer. */
function packed(texts: readonly string[]): { buf: Buffer; starts: Int32Array; ends: Int32Array } {
  const parts = texts.map((t) => Buffer.from(t, 'utf8'));
  const buf = Buffer.concat(parts);
  const starts = new Int32Array(parts.length);
  const ends = new Int32Array(parts.length);
  let at = 0;
  parts.forEach((p, i) => {
    starts[i] = at;
    at += p.length;
    ends[i] = at;
  });
  return { buf, starts, ends };
}

/** xorshift32: the same aids every run. */
function aids(count: number, seed: number, max: number): number[] {
  let x = seed | 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.push(((x >>> 0) % max) + 1);
  }
  return out;
}

/** Best of `trials` (the code's cost, not a neighbour's burst of CPU use), ns per call. */
function bestNs(trials: number, calls: number, body: (trial: number) => number): { ns: number; sink: number } {
  let best = Infinity;
  let sink = 0;
  for (let trial = 0; trial < trials; trial++) {
    const t0 = process.hrtime.bigint();
    sink += body(trial);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / calls);
  }
  return { ns: best, sink };
}

const TRIALS = 5;
const CACHED_ROUNDS = 500;
/** Random aids per literal-varying trial: twice the LRU's default size, so a text-keyed cache misses. */
const VARYING_PER_TRIAL = 20_000;
/** pgbench -s 10 has 1,000,000 accounts. */
const ACCOUNTS = 1_000_000;
const UNCACHED_ROUNDS = 100;

export async function benchClassify(): Promise<ClassifyResult> {
  const { name, call } = measuredCall();
  const corpusTexts = TEMPLATES.map((t) => t.split('{n}').join('42'));
  const corpus = packed(corpusTexts);
  const single = packed([pgbenchSelect(4242)]);
  const varying = packed(aids(VARYING_PER_TRIAL * (TRIALS + 1), 12345, ACCOUNTS).map(pgbenchSelect));
  const callsPerCorpusTrial = CACHED_ROUNDS * corpusTexts.length;

  const overCorpus = (): number => {
    let n = 0;
    for (let r = 0; r < CACHED_ROUNDS; r++) for (let i = 0; i < corpus.starts.length; i++) n += call(corpus.buf, corpus.starts[i]!, corpus.ends[i]!).statements.length;
    return n;
  };
  const overSingle = (): number => {
    let n = 0;
    for (let r = 0; r < callsPerCorpusTrial; r++) n += call(single.buf, 0, single.buf.length).statements.length;
    return n;
  };
  // Trial t uses slice t + 1 of the aids (slice 0 warms up and fills the cache), so nothing repeats between trials.
  const overVarying = (slice: number): number => {
    let n = 0;
    for (let i = slice * VARYING_PER_TRIAL; i < (slice + 1) * VARYING_PER_TRIAL; i++) n += call(varying.buf, varying.starts[i]!, varying.ends[i]!).statements.length;
    return n;
  };
  /** Each measurement starts from a known cache state: empty, then filled by its own warm-up. */
  const fresh = (): void => {
    classifier.setClassifyCacheSize(10_000);
    classifier.clearClassifyCache();
  };

  // Warm the JIT on every path.
  fresh();
  for (let r = 0; r < 200; r++) for (const sql of corpusTexts) classifier.classify(sql);
  overVarying(0);
  for (let r = 0; r < 20; r++) overCorpus();
  let warm = 0;
  for (let r = 0; r < 20; r++) for (const t of TEMPLATES) classifier.classify(t.split('{n}').join(String(1_000_000 + warm++)));

  let sink = 0;
  const time = (calls: number, body: (trial: number) => number): number => {
    const r = bestNs(TRIALS, calls, body);
    sink += r.sink;
    return r.ns;
  };
  fresh();
  overCorpus();
  const cachedNs = time(callsPerCorpusTrial, overCorpus);
  // Each statement on its own, same cache state: the typical statement and the slowest one.
  const perStatement = new Float64Array(corpus.starts.length).fill(Infinity);
  for (let trial = 0; trial < TRIALS; trial++) {
    for (let i = 0; i < corpus.starts.length; i++) {
      const t0 = process.hrtime.bigint();
      for (let r = 0; r < CACHED_ROUNDS; r++) sink += call(corpus.buf, corpus.starts[i]!, corpus.ends[i]!).statements.length;
      perStatement[i] = Math.min(perStatement[i]!, Number(process.hrtime.bigint() - t0) / CACHED_ROUNDS);
    }
  }
  const sorted = [...perStatement].sort((a, b) => a - b);
  const slowest = perStatement.indexOf(sorted[sorted.length - 1]!);
  fresh();
  overSingle();
  const pgbenchCachedNs = time(callsPerCorpusTrial, overSingle);
  fresh();
  overVarying(0);
  const literalVaryingNs = time(VARYING_PER_TRIAL, (trial) => overVarying(trial + 1));
  // A text-keyed cache is now full of random-aid selects: the corpus's hits in that state.
  overCorpus();
  const cachedFullNs = time(callsPerCorpusTrial, overCorpus);
  fresh();
  const predecodedNs = time(callsPerCorpusTrial, () => {
    let n = 0;
    for (let r = 0; r < CACHED_ROUNDS; r++) for (const sql of corpusTexts) n += classifier.classify(sql).statements.length;
    return n;
  });

  // Uncached: every text distinct (built before timing), so every call misses, inserts and evicts.
  fresh();
  let uncachedNs = Infinity;
  for (let trial = 0; trial < TRIALS; trial++) {
    const texts: string[] = [];
    for (let r = 0; r < UNCACHED_ROUNDS; r++) for (const t of TEMPLATES) texts.push(t.split('{n}').join(String(2_000_000 + trial * UNCACHED_ROUNDS + r)));
    const t0 = process.hrtime.bigint();
    for (const sql of texts) sink += classifier.classify(sql).statements.length;
    uncachedNs = Math.min(uncachedNs, Number(process.hrtime.bigint() - t0) / texts.length);
  }

  if (sink === 0) throw new Error('nothing classified');
  classifier.clearClassifyCache();
  return {
    measuredCall: name,
    corpusSize: corpusTexts.length,
    cachedNsPerStatement: Math.round(cachedNs),
    cachedMedianNs: Math.round(sorted[sorted.length >> 1]!),
    cachedSlowest: { ns: Math.round(perStatement[slowest]!), statement: `${corpusTexts[slowest]!.slice(0, 60)}… (${corpusTexts[slowest]!.length} characters)` },
    pgbenchCachedNs: Math.round(pgbenchCachedNs),
    literalVaryingNs: Math.round(literalVaryingNs),
    cachedFullNs: Math.round(cachedFullNs),
    predecodedCachedNs: Math.round(predecodedNs),
    uncachedNsPerStatement: Math.round(uncachedNs),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchClassify().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
