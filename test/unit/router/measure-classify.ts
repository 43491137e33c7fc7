/**
 * Measures the classification cache by hand (not a test: timings depend on the machine). Prints JSON:
 * - cachedNs: classifyBytes() per statement on warm hits, over a mixed corpus;
 * - literalVaryingNs: classifyBytes() of pgbench's select-only statement with a new aid every call;
 * - uncachedNs: classifyUncached() of the same statement (lex + classify), for comparison;
 * - stringNs: classify(sql) of the same statement given as a string (encodes, then the same path);
 * - exactTextHitNs: for comparison, what a hit cost with the exact-text LRU this cache replaced (decode the
 *   bytes, Map lookup by string, move to the recent end), on the corpus' repeated texts;
 * - hitRate per pgbench built-in script (tpcb-like, simple-update, select-only, random values) after warm-up;
 * - hitHeapBytes / hitGcs: heap growth and garbage collections over 1M literal-varying hits (0 and 0: no allocation).
 *
 * Run (compiles the project into /tmp, an ES module package):
 *   npx tsc -p tsconfig.json --noEmit false --outDir /tmp/pgproxy-measure && echo '{"type":"module"}' > /tmp/pgproxy-measure/package.json \
 *     && node /tmp/pgproxy-measure/test/unit/router/measure-classify.js
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { classify, classifyBytes, classifyCacheStats, classifyUncached, clearClassifyCache } from '../../../src/router/classify/index.js';
import { prng } from '../../prng.js';
import { TPCB_SCRIPT } from './fixtures/pgbench.js';

const rnd = prng(1);
const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

/** pgbench's built-in scripts as the statements it sends (-M simple), with random values. */
const SCRIPTS: Record<string, () => string[]> = {
  'tpcb-like': () => TPCB_SCRIPT(String(int(1, 1_000_000)), String(int(1, 10)), String(int(1, 100)), String(int(-5000, 5000))),
  'simple-update': () => {
    const aid = int(1, 1_000_000);
    const bid = int(1, 10);
    const tid = int(1, 100);
    const delta = int(-5000, 5000);
    return [
      'BEGIN;',
      `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`,
      `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`,
      `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP);`,
      'END;',
    ];
  },
  'select-only': () => [`SELECT abalance FROM pgbench_accounts WHERE aid = ${int(1, 1_000_000)};`],
};

const CORPUS = [
  ...SCRIPTS['tpcb-like']!(),
  'SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."id" = 42 LIMIT 1',
  "SELECT * FROM orders WHERE user_id = 7 AND state IN ('paid', 'shipped') ORDER BY created_at DESC LIMIT 25",
  'SELECT * FROM accounts WHERE id = 1 FOR UPDATE',
  "SELECT nextval('orders_id_seq')",
  'WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) INSERT INTO archive SELECT * FROM moved',
  'SELECT count(*) FROM pg_stat_activity',
  'COMMIT',
  'ROLLBACK',
];

/** Best of `trials` runs of fn over `n` iterations, in ns per iteration. */
function nsPer(n: number, trials: number, fn: (i: number) => number): number {
  let best = Infinity;
  let sink = 0;
  for (let t = 0; t < trials; t++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink += fn(i);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  if (sink === 42) console.log('');
  return Math.round(best);
}

function hitRate(script: () => string[], warm: number, runs: number): number {
  clearClassifyCache();
  for (let i = 0; i < warm; i++) for (const sql of script()) classifyBytes(Buffer.from(sql), 0, Buffer.byteLength(sql));
  const a = classifyCacheStats();
  let total = 0;
  for (let i = 0; i < runs; i++) {
    for (const sql of script()) {
      const b = Buffer.from(sql);
      classifyBytes(b, 0, b.length);
      total++;
    }
  }
  const b = classifyCacheStats();
  return (b.hits - a.hits) / total;
}

const corpus = CORPUS.map((s) => Buffer.from(s));
for (let r = 0; r < 20_000; r++) for (const b of corpus) classifyBytes(b, 0, b.length);
const cachedNs = nsPer(200_000, 5, (i) => {
  const b = corpus[i % corpus.length]!;
  return classifyBytes(b, 0, b.length).statements.length;
});

const exactText = new Map<string, number>();
for (const b of corpus) exactText.set(b.toString(), 1);
const exactTextHitNs = nsPer(200_000, 5, (i) => {
  const b = corpus[i % corpus.length]!;
  const sql = b.toString('utf8', 0, b.length);
  const hit = exactText.get(sql)!;
  exactText.delete(sql);
  exactText.set(sql, hit);
  return hit;
});

const varying = Array.from({ length: 100_000 }, (_, i) => Buffer.from(`SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 1_000_000};`));
const varyingText = varying.map((b) => b.toString());
for (let i = 0; i < 100_000; i++) classifyBytes(varying[i]!, 0, varying[i]!.length);
const literalVaryingNs = nsPer(varying.length, 5, (i) => classifyBytes(varying[i]!, 0, varying[i]!.length).statements.length);
const uncachedNs = nsPer(varying.length, 3, (i) => classifyUncached(varyingText[i]!).statements.length);
const stringNs = nsPer(varying.length, 5, (i) => classify(varyingText[i]!).statements.length);

/** Heap growth and GCs over a million hits (buffers built before). */
async function allocationOnHits(): Promise<{ hitHeapBytes: number; hitGcs: number }> {
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  const before = process.memoryUsage().heapUsed;
  let sink = 0;
  for (let r = 0; r < 10; r++) for (let i = 0; i < varying.length; i++) sink += classifyBytes(varying[i]!, 0, varying[i]!.length).statements.length;
  const after = process.memoryUsage().heapUsed;
  await new Promise((resolve) => setTimeout(resolve, 50)); // let the observer report
  obs.disconnect();
  return { hitHeapBytes: sink > 0 ? after - before : -1, hitGcs: gcs };
}
const allocation = await allocationOnHits();

const hitRates: Record<string, number> = {};
for (const [name, script] of Object.entries(SCRIPTS)) hitRates[name] = Math.round(hitRate(script, 100, 100_000) * 1e6) / 1e6;

console.log(JSON.stringify({ node: process.version, cachedNs, exactTextHitNs, literalVaryingNs, uncachedNs, stringNs, ...allocation, hitRates, cache: classifyCacheStats() }, null, 2));
