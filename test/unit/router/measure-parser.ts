/**
 * Measures the parser fallback by hand (not a test: timings depend on the machine). Prints JSON:
 * - loadMs / rssMb: loading libpg-query's WebAssembly module, and the process' resident memory after it;
 * - parseNs: libpg-query's parseSync alone, per statement kind (it returns the tree as JSON text, parsed to objects);
 * - fallbackNs: parsedStatement() (parse + the tree's facts), the cost of a statement the classifier gives up on;
 * - classifierNs: classifyUncached() of the same statements, for comparison;
 * - fallbackMissNs / fallbackHitNs: classifyBytes() of a statement only the parser reads, first time (shape not
 *   cached: classifier + parser) and after (a cache hit, as for any statement).
 *
 * Run (compiles the project into /tmp, an ES module package, linked to the project's node_modules):
 *   npx tsc -p tsconfig.json --noEmit false --outDir /tmp/pgproxy-measure && echo '{"type":"module"}' > /tmp/pgproxy-measure/package.json \
 *     && ln -sfn "$PWD/node_modules" /tmp/pgproxy-measure/node_modules && node /tmp/pgproxy-measure/test/unit/router/measure-parser.js
 */
import { parseSync } from 'libpg-query';
import { classifyBytes, classifyUncached, clearClassifyCache, loadParser } from '../../../src/router/classify/index.js';
import { parsedStatement } from '../../../src/router/classify/parser.js';

const t0 = performance.now();
await loadParser();
const loadMs = Math.round(performance.now() - t0);
const rssMb = Math.round(process.memoryUsage().rss / 1e6);

const STATEMENTS: Record<string, string> = {
  select: 'SELECT abalance FROM pgbench_accounts WHERE aid = 48211',
  join: 'SELECT u.id, u.email, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.created_at > now() - interval \'7 days\' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20',
  update: 'UPDATE pgbench_accounts SET abalance = abalance + -1722 WHERE aid = 48211',
  set: "SET search_path TO app, public",
  ddl: 'CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now())',
};

/** Best of `trials` runs of fn over `n` iterations, in ns per iteration. */
function nsPer(n: number, trials: number, fn: (i: number) => unknown): number {
  let best = Infinity;
  for (let t = 0; t < trials; t++) {
    const s = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    best = Math.min(best, Number(process.hrtime.bigint() - s) / n);
  }
  return Math.round(best);
}

const parseNs: Record<string, number> = {};
const fallbackNs: Record<string, number> = {};
const classifierNs: Record<string, number> = {};
for (const [name, sql] of Object.entries(STATEMENTS)) {
  parseNs[name] = nsPer(20_000, 3, () => parseSync(sql));
  fallbackNs[name] = nsPer(20_000, 3, () => parsedStatement(sql));
  classifierNs[name] = nsPer(20_000, 3, () => classifyUncached(sql));
}

// `SET NAMES` is valid SQL only the parser reads; texts that differ only in spacing share its shape.
const variants = Array.from({ length: 20_000 }, (_, i) => Buffer.from(`SET NAMES${' '.repeat(1 + (i % 7))}`));
const fallbackMissNs = nsPer(variants.length, 3, (i) => {
  clearClassifyCache();
  const b = variants[i]!;
  return classifyBytes(b, 0, b.length);
});
const fallbackHitNs = nsPer(variants.length, 5, (i) => {
  const b = variants[i]!;
  return classifyBytes(b, 0, b.length);
});

console.log(JSON.stringify({ node: process.version, loadMs, rssMb, parseNs, fallbackNs, classifierNs, fallbackMissNs, fallbackHitNs }, null, 2));
