// The routing table: every row is a statement and the node it must run on, 'primary' or 'standby' (either
// standby, never the primary: weights are 0/1/1, so reads never go to the primary). Each row runs THROUGH THE
// REAL PROXY, in a client session of its own, against the shared cluster.
//
// How we know where a statement ran: from the servers' own records, pg_stat_statements on each node.
// - Every row has a unique id (rt_c001, rt_c002, ...) and every statement we measure names an object that
//   belongs to that row only: its table rt_cNNN (in FROM, INSERT INTO, LOCK, VACUUM...), or rt_cNNN_seq,
//   rt_cNNN_proc, a LISTEN channel rt_cNNN, a custom setting rt_cNNN.marker for SHOW. Never only a constant or
//   an alias: pg_stat_statements replaces constants with $n, and statements that differ only in constants or
//   column aliases share one entry whose text is the first one seen. A different relation is a different
//   entry (relation OIDs are part of the query id), and utility statements are identified by their text.
// - The setup runs directly on the primary with pg_stat_statements.track = none, so it leaves no entries; a
//   baseline taken after it is subtracted anyway.
// - After the row's session ends, we sum `calls` of entries whose text contains the id (lowercased: unquoted
//   identifiers keep the case they were written in) on each node. Primary rows need calls on node0 and none on
//   node1/node2; standby rows the opposite.
// - Failed statements are not recorded, and a write misrouted to a standby fails ("cannot execute ... in a
//   read-only transaction"), so every row must also have succeeded.
// - A few SELECTs also return `inet_server_port() AS rt_port`: a cross-check only, never the evidence.
//
// The proxy runs with routing.write_functions = ['rt_audit_.*']. With a function list configured, pgproxy
// does NOT look up volatility in the catalog (that happens only when both lists are empty), so calls of
// unlisted volatile functions (random(), rt_plain_fn()) are expected on a standby here.
//
// Not in this table yet (features not built): READ ONLY transactions on standbys, pinning to the primary
// after temp tables / LISTEN / session advisory locks / WITH HOLD cursors / SQL PREPARE, session settings
// replay, catalog volatility lookup (no function lists), unlogged tables, read-your-writes.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../src/server.js';
import { connectNode, sharedCluster, sharedClusterHandle } from './helpers/cluster.js';
import { proxyClient, startTestProxy } from './helpers/proxy.js';

type Where = 'primary' | 'standby';

interface Case {
  id: string;
  where: Where;
  sql: string;
  /** Extended protocol (Parse/Bind/Execute) with these parameters. */
  values?: unknown[];
  /** A named prepared statement (extended protocol). */
  name?: string;
  /** Run in the same session before / after the measured statement (they must not name the row's id). */
  before: string[];
  after: string[];
  /** Objects of this row, created on the primary before the proxy starts. */
  setup: string;
  /** Run with psql instead of node-postgres, with this on psql's stdin (COPY FROM STDIN). */
  psqlStdin?: string;
}

interface RowOptions {
  values?: unknown[];
  name?: string;
  before?: (t: string) => string[];
  after?: (t: string) => string[];
  /** Replaces the default table: `CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a')`. */
  table?: (t: string) => string;
  /** Extra objects. */
  setup?: (t: string) => string;
  psqlStdin?: string;
}

const cases: Case[] = [];

function row(where: Where, sql: (t: string) => string, o: RowOptions = {}): void {
  const id = `rt_c${String(cases.length + 1).padStart(3, '0')}`;
  const table = o.table ? o.table(id) : `CREATE TABLE ${id} (id int, v text); INSERT INTO ${id} VALUES (1, 'a');`;
  const c: Case = {
    id,
    where,
    sql: sql(id),
    before: o.before ? o.before(id) : [],
    after: o.after ? o.after(id) : [],
    setup: `${table}\n${o.setup ? o.setup(id) : ''}`,
  };
  if (o.values) c.values = o.values;
  if (o.name) c.name = o.name;
  if (o.psqlStdin !== undefined) c.psqlStdin = o.psqlStdin;
  cases.push(c);
}

const seq = (t: string) => `CREATE SEQUENCE ${t}_seq;`;
const guc = (t: string) => `ALTER DATABASE app SET ${t}.marker = 'on';`;
const inTx = { before: () => ['BEGIN'], after: () => ['COMMIT'] };

// ------------------------------------------------------------------ plain reads -> standby
row('standby', (t) => `SELECT * FROM ${t}`);
row('standby', (t) => `select id, v from ${t} where id = 1`);
row('standby', (t) => `SeLeCt Id FrOm ${t.toUpperCase()} WhErE v = 'a'`);
row('standby', (t) => `\n\n\t  SELECT\n*\n  FROM\n\n${t}\n  ;  \n`);
row('standby', (t) => `SELECT*FROM ${t}`);
row('standby', (t) => `SELECT inet_server_port() AS rt_port, count(*) FROM ${t}`);
row('standby', (t) => `(SELECT id FROM ${t})`);
row('standby', (t) => `  ( ( SELECT id FROM ${t} ) )  `);
row('standby', (t) => `SELECT id FROM ${t} UNION ALL SELECT id FROM ${t} ORDER BY 1`);
row('standby', (t) => `SELECT DISTINCT v FROM ${t} ORDER BY v FETCH FIRST 1 ROWS ONLY`);
row('standby', (t) => `SELECT * FROM "${t}"`);
row('standby', (t) => `SELECT * FROM "public"."${t}"`);
row('standby', (t) => `SELECT * FROM "${t}_Mixed Case"`, { table: (t) => `CREATE TABLE "${t}_Mixed Case" (id int);` });
row('standby', (t) => `SELECT "insert", "update", "delete", "for" FROM ${t}`, {
  table: (t) => `CREATE TABLE ${t} ("insert" int, "update" int, "delete" int, "for" int); INSERT INTO ${t} VALUES (1, 2, 3, 4);`,
});
row('standby', (t) => `SELECT * FROM ${t} AS "update"`);
row('standby', (t) => `WITH a AS (SELECT * FROM ${t}) SELECT * FROM a`);
row('standby', (t) => `WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r, ${t}`);
row('standby', (t) => `with m as materialized (select id from ${t}) select count(*) from m`);
row('standby', (t) => `SELECT substring('abcdef' FROM 2 FOR 3), extract(year FROM now()) FROM ${t}`);
row('standby', (t) => `SELECT overlay('xxxx' placing 'yy' from 2 for 2) FROM ${t}`);
row('standby', (t) => `SELECT * FROM ${t} WHERE id IN (SELECT id FROM ${t}) ORDER BY id LIMIT 1 OFFSET 0`);
row('standby', (t) => `SELECT now(), random(), lower(v) FROM ${t}`);
row('standby', (t) => `SELECT count(*) FILTER (WHERE id > 0) OVER () FROM ${t}`);
row('standby', (t) => `SELECT 'for update' AS f FROM ${t}`);
row('standby', (t) => `SELECT 'into' AS i, v AS "into" FROM ${t}`);
row('standby', (t) => `VALUES ((SELECT count(*) FROM ${t}))`);
row('standby', (t) => `values (1), ((select max(id) from ${t}))`);
row('standby', (t) => `TABLE ${t}`);
row('standby', (t) => `table ${t} limit 1`);
row('standby', (t) => `TABLE ONLY ${t}`);
row('standby', (t) => `SHOW ${t}.marker`, { setup: guc });
row('standby', (t) => `show ${t.toUpperCase()}.MARKER`, { setup: guc });
row('standby', (t) => `SELECT current_setting('${t}.marker') FROM ${t}`, { setup: guc });
row('standby', (t) => `EXPLAIN SELECT * FROM ${t}`);
row('standby', (t) => `explain (costs off) select * from ${t} where id = 1`);
row('standby', (t) => `EXPLAIN (FORMAT JSON, VERBOSE) SELECT v FROM ${t}`);
row('standby', (t) => `COPY ${t} TO STDOUT`);
row('standby', (t) => `COPY (SELECT id, 'DELETE' FROM ${t}) TO STDOUT`);
row('standby', (t) => `copy (select * from ${t}) to stdout with (format csv)`);

// ------------------------------------------------------------------ comments, strings, dollar quotes -> standby
row('standby', (t) => `-- comment\nSELECT * FROM ${t}`);
row('standby', (t) => `-- DELETE FROM ${t};\nSELECT * FROM ${t}`);
row('standby', (t) => `/* INSERT INTO ${t} VALUES (2); */ SELECT * FROM ${t}`);
row('standby', (t) => `/* outer /* nested; UPDATE ${t} SET id = 2 */ still comment */ SELECT * FROM ${t}`);
row('standby', (t) => `SELECT * FROM ${t} -- ; UPDATE ${t} SET id = 2`);
row('standby', (t) => `SELECT * /* ; DROP TABLE ${t}; */ FROM ${t}`);
row('standby', (t) => `/* controller='users',action='show' */ SELECT * FROM ${t}`);
row('standby', (t) => `SELECT * FROM ${t} /*controller='users',action='update',db_driver='pg'*/`);
row('standby', (t) => `/*action='delete',framework='rails'*/ select id from ${t}`);
row('standby', (t) => `SELECT 'INSERT INTO x VALUES (1); DELETE FROM y;' AS s FROM ${t}`);
row('standby', (t) => `SELECT 'it''s; DROP TABLE ${t}; --' AS s FROM ${t}`);
row('standby', (t) => `SELECT E'\\'; UPDATE ${t} SET id = 3; --' AS s FROM ${t}`);
row('standby', (t) => `SELECT U&'\\0041; DELETE FROM x' AS s FROM ${t}`);
row('standby', (t) => `SELECT $$ DELETE FROM ${t}; INSERT INTO ${t} VALUES (1) $$ AS s FROM ${t}`);
row('standby', (t) => `SELECT $body$ ; UPDATE ${t} SET v = 'x' ; $body$ AS b FROM ${t}`);
row('standby', (t) => `SELECT $a$ $$ ; DELETE $$ ; $b$ INSERT $b$ $a$ AS s FROM ${t}`);
row('standby', (t) => `SELECT 1 AS "; DELETE FROM x; --" FROM ${t}`);
row('standby', (t) => `SELECT '/*NO LOAD BALANCE*/' AS s FROM ${t}`);
row('standby', (t) => `SELECT /*NO LOAD BALANCE*/ * FROM ${t}`);
row('standby', (t) => `SELECT 'nextval(''x'')' AS s, 'rt_audit_log()' AS f FROM ${t}`);
row('standby', (t) => `SELECT v::text, id::bigint FROM ${t} WHERE v <> 'SELECT ... FOR UPDATE'`);

// ------------------------------------------------------------------ hints -> primary
row('primary', (t) => `/*NO LOAD BALANCE*/ SELECT * FROM ${t}`);
row('primary', (t) => `/*NO LOAD BALANCE*/\n  select inet_server_port() as rt_port from ${t}`);
row('primary', (t) => `/* NO LOAD BALANCE */ SELECT * FROM ${t}`);
row('primary', (t) => `/* pgproxy: primary */ SELECT * FROM ${t}`);
row('primary', (t) => `/*pgproxy:primary*/SELECT * FROM ${t}`);

// ------------------------------------------------------------------ writes -> primary
row('primary', (t) => `INSERT INTO ${t} VALUES (2, 'b')`);
row('primary', (t) => `insert into ${t} (id, v) values (3, 'SELECT only') returning id`);
row('primary', (t) => `  InSeRt   InTo\n${t}\nSELECT id + 10, v FROM ${t}`);
row('primary', (t) => `INSERT INTO ${t} VALUES (1, 'a') ON CONFLICT DO NOTHING`);
row('primary', (t) => `/* controller='users',action='create' */ INSERT INTO ${t} VALUES (4, 'c')`);
row('primary', (t) => `-- just a comment\nINSERT INTO "${t}" VALUES (5, $$ it's $$)`);
row('primary', (t) => `UPDATE ${t} SET v = 'x' WHERE id = 1`);
row('primary', (t) => `update ${t} set v = (select 'SELECT') returning *`);
row('primary', (t) => `DELETE FROM ${t} WHERE id = -1`);
row('primary', (t) => `delete from ${t} using (values (1)) s(x) where ${t}.id = s.x`);
row('primary', (t) => `MERGE INTO ${t} AS d USING (VALUES (1), (7)) AS s(id) ON d.id = s.id WHEN MATCHED THEN UPDATE SET v = 'm' WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'n')`);
row('primary', (t) => `merge into ${t} d using ${t} s on d.id = s.id when matched then do nothing`);
row('primary', (t) => `TRUNCATE ${t}`);
row('primary', (t) => `SELECT * INTO ${t}_into FROM ${t}`);
row('primary', (t) => `select id into table ${t}_into2 from ${t}`);
row('primary', (t) => `WITH x AS (SELECT * FROM ${t}) SELECT * INTO ${t}_into3 FROM x`);
row('primary', (t) => `CREATE TABLE ${t}_ctas AS SELECT * FROM ${t}`);
row('primary', (t) => `create table ${t}_ctas2 as table ${t}`);
row('primary', (t) => `CREATE MATERIALIZED VIEW ${t}_mv AS SELECT * FROM ${t}`);
row('primary', (t) => `REFRESH MATERIALIZED VIEW ${t}_mv`, { setup: (t) => `CREATE MATERIALIZED VIEW ${t}_mv AS SELECT * FROM ${t};` });

// ------------------------------------------------------------------ writable CTEs -> primary
row('primary', (t) => `WITH x AS (INSERT INTO ${t} VALUES (8, 'w') RETURNING id) SELECT * FROM x`);
row('primary', (t) => `with d as (delete from ${t} where id = -1 returning *) select count(*) from d`);
row('primary', (t) => `WITH a AS (SELECT 1 AS k), u AS (UPDATE ${t} SET v = v RETURNING id) SELECT * FROM a, u`);
row('primary', (t) => `WITH s AS (SELECT id FROM ${t}) INSERT INTO ${t} SELECT id + 100, 'cte' FROM s`);
row('primary', (t) => `WITH a AS (SELECT id FROM ${t}), b AS (INSERT INTO ${t} SELECT id + 1, 'b' FROM a RETURNING id) SELECT count(*) FROM b`);

// ------------------------------------------------------------------ locking reads -> primary
row('primary', (t) => `SELECT * FROM ${t} FOR UPDATE`);
row('primary', (t) => `select * from ${t} for share`);
row('primary', (t) => `SELECT * FROM ${t} FOR NO KEY UPDATE`);
row('primary', (t) => `SELECT * FROM ${t} FOR KEY SHARE`);
row('primary', (t) => `SELECT * FROM ${t} AS x FOR UPDATE OF x NOWAIT`);
row('primary', (t) => `SELECT * FROM ${t} FOR SHARE SKIP LOCKED`);
row('primary', (t) => `SELECT inet_server_port() AS rt_port, * FROM ${t}\nFOR\n  UPDATE`);
row('primary', (t) => `SELECT * FROM ${t} FOR /* really */ NO KEY UPDATE`);
row('primary', (t) => `SELECT * FROM (SELECT * FROM ${t} FOR UPDATE) s`);
row('primary', (t) => `WITH l AS (SELECT * FROM ${t} FOR KEY SHARE) SELECT * FROM l`);
row('primary', (t) => `SELECT * FROM ${t} WHERE v = 'FOR SHARE' LIMIT 1 FOR UPDATE`);

// ------------------------------------------------------------------ EXPLAIN ANALYZE of writes -> primary
row('primary', (t) => `EXPLAIN ANALYZE INSERT INTO ${t} VALUES (9, 'e')`);
row('primary', (t) => `explain (analyze, costs off) update ${t} set v = 'e'`);
row('primary', (t) => `EXPLAIN (ANALYZE true, TIMING off) DELETE FROM ${t} WHERE id = -1`);
row('primary', (t) => `EXPLAIN ANALYZE WITH x AS (INSERT INTO ${t} VALUES (10) RETURNING 1) SELECT * FROM x`);
row('primary', (t) => `EXPLAIN ANALYZE SELECT * FROM ${t} FOR UPDATE`);

// ------------------------------------------------------------------ DDL -> primary
row('primary', (t) => `CREATE TABLE ${t}_new (id int primary key, "select" text)`);
row('primary', (t) => `create index ${t}_idx on ${t} (id)`);
row('primary', (t) => `ALTER TABLE ${t} ADD COLUMN w int DEFAULT 0`);
row('primary', (t) => `COMMENT ON TABLE ${t} IS 'SELECT * FROM nowhere'`);
row('primary', (t) => `CREATE VIEW ${t}_v AS SELECT * FROM ${t}`);
row('primary', (t) => `CREATE FUNCTION ${t}_f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$`);
row('primary', (t) => `DROP TABLE ${t}`);
row('primary', (t) => `GRANT SELECT ON ${t} TO app_scram`);
row('primary', (t) => `REINDEX TABLE ${t}`, { setup: (t) => `CREATE INDEX ${t}_i ON ${t} (id);` });

// ------------------------------------------------------------------ COPY FROM, utility -> primary
row('primary', (t) => `COPY ${t} FROM STDIN`, { psqlStdin: '20\tcopied\n21\tcopied\n' });
row('primary', (t) => `copy ${t} (id) from stdin with (format csv)`, { psqlStdin: '22\n' });
row('primary', (t) => `COPY (INSERT INTO ${t} VALUES (23) RETURNING id) TO STDOUT`);
row('primary', (t) => `LOCK TABLE ${t} IN ACCESS EXCLUSIVE MODE`, inTx);
row('primary', (t) => `BEGIN; LOCK ${t} IN SHARE MODE; COMMIT`);
row('primary', (t) => `CALL ${t}_proc()`, { setup: (t) => `CREATE PROCEDURE ${t}_proc() LANGUAGE sql AS $$ SELECT 1 $$;` });
row('primary', (t) => `call ${t}_proc(1)`, { setup: (t) => `CREATE PROCEDURE ${t}_proc(a int) LANGUAGE plpgsql AS $$ BEGIN PERFORM a; END $$;` });
row('primary', (t) => `DO $$ BEGIN PERFORM count(*) FROM ${t}; END $$`);
row('primary', (t) => `do language plpgsql $body$ begin perform 1 from ${t}; end $body$`);
row('primary', (t) => `LISTEN ${t}`);
row('primary', (t) => `listen "${t}"`);
row('primary', (t) => `NOTIFY ${t}, 'INSERT; payload'`);
row('primary', (t) => `UNLISTEN ${t}`);
row('primary', (t) => `SELECT pg_notify('${t}', 'x') FROM ${t}`);
row('primary', (t) => `VACUUM ${t}`);
row('primary', (t) => `vacuum (analyze) ${t}`);
row('primary', (t) => `ANALYZE ${t}`);
row('primary', (t) => `analyse ${t}`);

// ------------------------------------------------------------------ functions that cannot run on a standby -> primary
row('primary', (t) => `SELECT nextval('${t}_seq') FROM ${t}`, { setup: seq });
row('primary', (t) => `select NEXTVAL('${t}_seq'::regclass) from ${t}`, { setup: seq });
row('primary', (t) => `SELECT pg_catalog.nextval('${t}_seq') FROM ${t}`, { setup: seq });
row('primary', (t) => `SELECT "nextval"('${t}_seq') FROM ${t}`, { setup: seq });
row('primary', (t) => `SELECT setval('${t}_seq', 42) FROM ${t}`, { setup: seq });
row('primary', (t) => `SELECT nextval('${t}_seq'), currval('${t}_seq') FROM ${t}`, { setup: seq });
row('primary', (t) => `SELECT id FROM ${t} WHERE id < nextval('${t}_seq')`, { setup: seq });
row('primary', (t) => `SELECT pg_advisory_lock(4242), pg_advisory_unlock(4242) FROM ${t}`);
row('primary', (t) => `SELECT pg_try_advisory_xact_lock(4243) FROM ${t}`);
row('primary', (t) => `select pg_advisory_unlock_all() from ${t}`);
row('primary', (t) => `SELECT txid_current() FROM ${t}`);
row('primary', (t) => `SELECT pg_current_xact_id() FROM ${t}`);
row('primary', (t) => `SELECT pg_current_wal_lsn() FROM ${t}`);
row('primary', (t) => `SELECT (SELECT pg_current_wal_insert_lsn()) AS lsn FROM ${t}`);
row('primary', (t) => `SELECT count(*) FROM pg_stat_activity, ${t}`);
row('primary', (t) => `select * from pg_catalog.pg_stat_replication cross join ${t}`);
row('primary', (t) => `SELECT l.locktype FROM pg_locks l JOIN ${t} ON true`);
row('primary', (t) => `SELECT (SELECT count(*) FROM pg_stat_activity) AS n FROM ${t}`);

// ------------------------------------------------------------------ write_functions ['rt_audit_.*']
row('primary', (t) => `SELECT rt_audit_log() FROM ${t}`);
row('primary', (t) => `SELECT public.rt_audit_log() FROM ${t}`);
row('primary', (t) => `select PUBLIC.RT_AUDIT_LOG() from ${t}`);
row('primary', (t) => `SELECT "rt_audit_log"() FROM ${t}`);
row('primary', (t) => `SELECT * FROM ${t} WHERE rt_audit_log() > 0`);
row('primary', (t) => `SELECT id, (SELECT rt_audit_log()) FROM ${t}`);
row('primary', (t) => `SELECT rt_s.rt_audit_log() FROM ${t}`);
row('standby', (t) => `SELECT rt_plain_fn() FROM ${t}`);
row('standby', (t) => `SELECT public.rt_plain_fn() FROM ${t}`);
row('standby', (t) => `SELECT rt_auditor() FROM ${t}`);
row('standby', (t) => `SELECT 1 AS rt_audit_log FROM ${t}`);

// ------------------------------------------------------------------ multi-statement strings
row('standby', (t) => `SELECT 1 FROM ${t}; SELECT 2 FROM ${t}`);
row('standby', (t) => `SELECT 1 FROM ${t};;; ;SELECT 2 FROM ${t};`);
row('standby', (t) => `SELECT 'a;b' FROM ${t}; /* ; */ TABLE ${t}`);
row('primary', (t) => `SELECT 1 FROM ${t}; INSERT INTO ${t} VALUES (30)`);
row('primary', (t) => `INSERT INTO ${t} VALUES (31); SELECT * FROM ${t}`);
row('primary', (t) => `SELECT 1 FROM ${t}; SELECT nextval('${t}_seq') FROM ${t}`, { setup: seq });

// ------------------------------------------------------------------ explicit transactions
row('primary', (t) => `SELECT * FROM ${t}`, inTx);
row('primary', (t) => `select inet_server_port() as rt_port from ${t}`, { before: () => ['begin transaction'], after: () => ['rollback'] });
row('primary', (t) => `SELECT * FROM ${t}`, { before: () => ['START TRANSACTION ISOLATION LEVEL REPEATABLE READ'], after: () => ['COMMIT'] });
row('primary', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN READ WRITE'], after: () => ['END'] });
row('primary', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN', 'SELECT 1'], after: () => ['COMMIT'] });
row('primary', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN', 'SAVEPOINT s1'], after: () => ['ROLLBACK TO SAVEPOINT s1', 'COMMIT'] });
row('primary', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN', 'COMMIT AND CHAIN'], after: () => ['COMMIT'] });
row('primary', (t) => `BEGIN; SELECT * FROM ${t}; COMMIT`);
row('primary', (t) => `start transaction; select * from ${t}; rollback;`);
row('standby', (t) => `SELECT inet_server_port() AS rt_port, * FROM ${t}`, { before: () => ['BEGIN', 'SELECT 1', 'COMMIT'] });
row('standby', (t) => `SELECT * FROM ${t}`, { before: (t) => ['BEGIN', `INSERT INTO ${t.replace('rt_c', 'rt_x')} VALUES (1)`, 'ROLLBACK'], setup: (t) => `CREATE TABLE ${t.replace('rt_c', 'rt_x')} (id int);` });
row('standby', (t) => `SELECT * FROM ${t}`, { before: (t) => [`INSERT INTO ${t.replace('rt_c', 'rt_x')} VALUES (1)`], setup: (t) => `CREATE TABLE ${t.replace('rt_c', 'rt_x')} (id int);` });
row('standby', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN', 'SELECT 1', 'ROLLBACK'] });

// ------------------------------------------------------------------ extended protocol (Parse/Bind/Execute)
row('standby', (t) => `SELECT * FROM ${t} WHERE id = $1`, { values: [1] });
row('standby', (t) => `SELECT v FROM ${t} WHERE v = $1`, { values: ['INSERT INTO x; DELETE'] });
row('standby', (t) => `SELECT inet_server_port() AS rt_port, * FROM ${t} WHERE id = $1`, { values: [1], name: 'rt_named_read' });
row('primary', (t) => `INSERT INTO ${t} VALUES ($1, $2)`, { values: [40, 'p'] });
row('primary', (t) => `UPDATE ${t} SET v = $1 WHERE id = $2`, { values: ['u', 1], name: 'rt_named_write' });
row('primary', (t) => `SELECT * FROM ${t} WHERE id = $1 FOR UPDATE`, { values: [1] });
row('primary', (t) => `SELECT nextval($1::regclass) FROM ${t}`, { values: ['rt_seq_param'], setup: () => 'CREATE SEQUENCE IF NOT EXISTS rt_seq_param;' });
row('primary', (t) => `SELECT * FROM ${t} WHERE id = $1`, { values: [1], ...inTx });

// ------------------------------------------------------------------ psql (simple protocol, its own client)
row('standby', (t) => `SELECT * FROM ${t}`, { psqlStdin: '' });

// ------------------------------------------------------------------ harder probes
// Reads that look like something else -> standby
row('standby', (t) => `SELECT * FROM ONLY ${t}`);
row('standby', (t) => `SELECT * FROM ${t} TABLESAMPLE SYSTEM (100)`);
row('standby', (t) => `SELECT "for".id FROM ${t} AS "for"`);
row('standby', (t) => `SELECT id AS for_update, v AS into_table FROM ${t}`);
row('standby', (t) => `SELECT id AS "ünïcødé; DELETE" FROM ${t}`);
row('standby', (t) => `SELECT v FROM ${t} WHERE v = $$a$$ OR v = $q$b; INSERT$q$`);
row('standby', (t) => `SELECT 1 FROM ${t}; -- trailing comment only`);
row('standby', (t) => `SELECT 1 FROM ${t} /* trailing; block */ ;`);
row('standby', (t) => `SELECT * FROM ${t} WHERE EXISTS (SELECT 1 FROM ${t} WHERE v LIKE '%UPDATE%')`);
row('standby', (t) => `SELECT * FROM ${t}, LATERAL (SELECT lower(v)) x`);
// Hints with leading whitespace -> primary
row('primary', (t) => `  \n /*NO LOAD BALANCE*/ SELECT * FROM ${t}`);
// Locking in odd places -> primary
row('primary', (t) => `SELECT * FROM ${t} WHERE EXISTS (SELECT 1 FROM ${t} FOR UPDATE)`);
row('primary', (t) => `SELECT * FROM ${t} FOR\tUPDATE OF ${t}, ${t}`);
row('primary', (t) => `COPY (SELECT * FROM ${t} FOR UPDATE) TO STDOUT`);
// Writes hidden in other shapes -> primary
row('primary', (t) => `WITH x AS (SELECT id FROM ${t}) UPDATE ${t} SET v = 'w' FROM x WHERE ${t}.id = x.id`);
row('primary', (t) => `WITH x AS (SELECT 1) DELETE FROM ${t} WHERE id = -1`);
row('primary', (t) => `SELECT id INTO ${t}_u FROM ${t} UNION SELECT id FROM ${t}`);
row('primary', (t) => `VALUES (nextval('${t}_seq'), (SELECT count(*) FROM ${t}))`, { setup: seq });
row('primary', (t) => `SELECT * FROM nextval('${t}_seq'), ${t}`, { setup: seq });
row('primary', (t) => `SELECT nextval ('${t}_seq') FROM ${t}`, { setup: seq });
row('primary', (t) => `SELECT nextval/* c */('${t}_seq') FROM ${t}`, { setup: seq });
row('primary', (t) => `SELECT PG_CATALOG.SETVAL('${t}_seq', 7) FROM ${t}`, { setup: seq });
row('primary', (t) => `SELECT pg_catalog.pg_advisory_xact_lock(4244) FROM ${t}`);
row('primary', (t) => `SELECT lo_unlink(lo_create(0)) FROM ${t}`);
row('primary', (t) => `COPY (SELECT nextval('${t}_seq') FROM ${t}) TO STDOUT`, { setup: seq });
row('primary', (t) => `SELECT 1 FROM ${t}; SELECT rt_audit_log() FROM ${t}`);
row('primary', (t) => `SELECT * FROM rt_audit_log(), ${t}`);
row('primary', (t) => `SELECT * FROM ${t}, LATERAL (SELECT rt_audit_log()) x`);
row('primary', (t) => `WITH x AS (SELECT rt_audit_log() AS a) SELECT * FROM x, ${t}`);
row('primary', (t) => `SELECT "public"."rt_audit_log"() FROM ${t}`);
row('primary', (t) => `SELECT rt_audit_log () FROM ${t}`);
row('primary', (t) => `VALUES ((SELECT rt_audit_log() FROM ${t}))`);
row('primary', (t) => `SELECT count(*) FROM "pg_stat_activity" JOIN ${t} ON true`);
row('primary', (t) => `SELECT * FROM PG_CATALOG.PG_LOCKS, ${t} LIMIT 1`);
row('primary', (t) => `WITH a AS (SELECT pid FROM pg_stat_activity) SELECT count(*) FROM a, ${t}`);
row('primary', (t) => `SELECT * FROM ${t} WHERE id IN (SELECT count(*) FROM pg_stat_replication)`);
// EXPLAIN ANALYZE spellings -> primary
row('primary', (t) => `EXPLAIN ANALYSE INSERT INTO ${t} VALUES (50)`);
row('primary', (t) => `explain (analyse) delete from ${t} where id = -1`);
row('primary', (t) => `EXPLAIN ANALYZE VERBOSE UPDATE ${t} SET v = 'v'`);
row('primary', (t) => `EXPLAIN (COSTS OFF, ANALYZE) MERGE INTO ${t} d USING ${t} s ON d.id = s.id WHEN MATCHED THEN DO NOTHING`);
row('primary', (t) => `EXPLAIN ANALYZE CREATE TABLE ${t}_ea AS SELECT * FROM ${t}`);
row('primary', (t) => `EXPLAIN ANALYZE SELECT nextval('${t}_seq') FROM ${t}`, { setup: seq });
// DDL odds and ends -> primary
row('primary', (t) => `CLUSTER ${t} USING ${t}_i`, { setup: (t) => `CREATE INDEX ${t}_i ON ${t} (id);` });
row('primary', (t) => `ALTER SEQUENCE ${t}_seq RESTART`, { setup: seq });
row('primary', (t) => `CREATE SCHEMA ${t}_s`);
// Transactions in other spellings and shapes
row('primary', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN WORK'], after: () => ['COMMIT WORK'] });
row('primary', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN ISOLATION LEVEL SERIALIZABLE'], after: () => ['ABORT'] });
row('primary', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN; SELECT 1'], after: () => ['COMMIT'] });
row('primary', (t) => `SELECT 1 FROM ${t}; BEGIN; SELECT 2 FROM ${t}; COMMIT`);
row('primary', (t) => `DECLARE rt_cur CURSOR FOR SELECT * FROM ${t}`, { before: () => ['BEGIN'], after: () => ['FETCH ALL FROM rt_cur', 'COMMIT'] });
row('standby', (t) => `SELECT * FROM ${t}`, { before: () => ['BEGIN', 'ABORT'] });
row('standby', (t) => `SELECT * FROM ${t}`, { before: (t) => [`BEGIN; INSERT INTO ${t.replace('rt_c', 'rt_x')} VALUES (1); COMMIT`], setup: (t) => `CREATE TABLE ${t.replace('rt_c', 'rt_x')} (id int);` });
row('standby', (t) => `SELECT * FROM ${t} WHERE id = $1`, { values: [1], before: () => ['BEGIN', 'COMMIT'] });

/** Objects every row may use, beyond its own. */
const COMMON_SETUP = `
CREATE FUNCTION rt_audit_log() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION rt_plain_fn() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 2';
CREATE FUNCTION rt_auditor() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 3';
CREATE SCHEMA rt_s;
CREATE FUNCTION rt_s.rt_audit_log() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 4';
`;

const CLEANUP = `
DO $cleanup$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relname ~ '^rt_[cx][0-9]{3}' AND c.relkind IN ('r', 'v', 'm', 'S', 'p') LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS sig, p.prokind FROM pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace AND p.proname ~ '^rt_(c[0-9]{3}|audit_log$|plain_fn$|auditor$)' LOOP
    EXECUTE format('DROP %s IF EXISTS %s', CASE r.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, r.sig);
  END LOOP;
END
$cleanup$;
DO $schemas$
DECLARE r record;
BEGIN
  FOR r IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^rt_c[0-9]{3}' LOOP
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', r.nspname);
  END LOOP;
END
$schemas$;
DROP SEQUENCE IF EXISTS rt_seq_param;
DROP SCHEMA IF EXISTS rt_s CASCADE;
`;

const info = sharedCluster();
let proxy: RunningProxy;
/** Direct superuser connections to node0..2, for pg_stat_statements. */
let monitors: pg.Client[] = [];
/** pg_stat_statements entries (text, calls) mentioning 'rt_c' per node, right after setup. */
let baseline: { query: string; calls: number }[][] = [];
const gucs = cases.filter((c) => c.setup.includes('ALTER DATABASE')).map((c) => `${c.id}.marker`);

async function asSetupUser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connectNode(info, 0, info.users.superuser);
  try {
    // No pg_stat_statements entries from the setup; objects owned by the app role, like the proxy's sessions.
    await c.query(`SET pg_stat_statements.track = 'none'`);
    return await fn(c);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await asSetupUser(async (c) => {
    await c.query(CLEANUP); // a previous run against a kept cluster
    for (const g of gucs) await c.query(`ALTER DATABASE ${info.database} SET ${g} = 'on'`);
    await c.query(`SET ROLE ${info.users.app.name}`);
    await c.query(COMMON_SETUP);
    const ddl = cases.map((k) => k.setup.replace(/ALTER DATABASE app SET [^;]*;/g, '')).join('\n');
    await c.query(ddl);
  });
  await (await sharedClusterHandle()).waitForReplay();
  monitors = await Promise.all(info.nodes.map((_, i) => connectNode(info, i, info.users.superuser)));
  baseline = await Promise.all(
    monitors.map(async (m) => (await m.query<{ query: string; calls: number }>(`SELECT lower(query) AS query, calls::int AS calls FROM pg_stat_statements WHERE strpos(lower(query), 'rt_c') > 0`)).rows),
  );
  proxy = await startTestProxy(info, { routing: { write_functions: ['rt_audit_.*'] } });
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  for (const m of monitors) await m.end().catch(() => undefined);
  await asSetupUser(async (c) => {
    await c.query(CLEANUP);
    for (const g of gucs) await c.query(`ALTER DATABASE ${info.database} RESET ${g}`);
  }).catch(() => undefined);
});

/** Calls on node i of statements whose text mentions `marker`, minus the baseline. */
async function callsOn(i: number, marker: string): Promise<number> {
  const r = await monitors[i]!.query<{ calls: number }>(`SELECT coalesce(sum(calls), 0)::int AS calls FROM pg_stat_statements WHERE strpos(lower(query), $1) > 0`, [marker]);
  const before = baseline[i]!.filter((b) => b.query.includes(marker)).reduce((s, b) => s + b.calls, 0);
  return r.rows[0]!.calls - before;
}

interface Outcome {
  error: string | null;
  ports: number[];
}

async function runThroughProxy(c: Case): Promise<Outcome> {
  if (c.psqlStdin !== undefined) return runPsql(c);
  // A hang is reported as that row's failure, not as the file's timeout.
  const client = proxyClient(proxy, info, info.users.app, { query_timeout: 15_000 });
  client.on('error', () => undefined);
  await client.connect();
  const ports: number[] = [];
  let error: string | null = null;
  try {
    for (const s of c.before) await client.query(s);
    try {
      const res = c.values || c.name ? await client.query({ text: c.sql, values: c.values ?? [], ...(c.name ? { name: c.name } : {}) }) : await client.query(c.sql);
      for (const r of Array.isArray(res) ? (res as pg.QueryResult[]) : [res]) {
        const p = (r.rows?.[0] as Record<string, unknown> | undefined)?.rt_port;
        if (typeof p === 'number') ports.push(p);
      }
    } catch (err) {
      error = `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim();
    }
    for (const s of c.after) await client.query(s);
  } finally {
    await client.end().catch(() => undefined);
  }
  return { error, ports };
}

function runPsql(c: Case): Promise<Outcome> {
  const conn = `host=${proxy.host} port=${proxy.port} user=${info.users.app.name} dbname=${info.database}`;
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [conn, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', c.sql], {
      env: { ...process.env, PGPASSWORD: info.users.app.password },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ error: code === 0 && stderr === '' ? null : `psql exit ${code}: ${stderr.trim()}`, ports: [] });
    });
    child.stdin.end(c.psqlStdin ?? '');
  });
}

function label(c: Case): string {
  const parts = [...c.before, c.sql, ...c.after].map((s) => s.replace(/\s+/g, ' ').trim());
  const text = parts.join(' | ');
  const how = c.psqlStdin !== undefined ? ' [psql]' : c.name ? ' [named prepared]' : c.values ? ' [extended]' : '';
  return `${c.id} -> ${c.where}: ${text.length > 110 ? text.slice(0, 107) + '...' : text}${how}`;
}

describe('routing table: where each statement runs, as the servers saw it', () => {
  it('has at least 120 rows, each with a unique id', () => {
    expect(cases.length).toBeGreaterThanOrEqual(120);
    expect(new Set(cases.map((c) => c.id)).size).toBe(cases.length);
  });

  for (const c of cases) {
    it(label(c), { timeout: 40_000 }, async () => {
      const out = await runThroughProxy(c);
      const [p, s1, s2] = [await callsOn(0, c.id), await callsOn(1, c.id), await callsOn(2, c.id)];
      const primaryPort = info.nodes[0]!.port;
      const ranOn =
        p + s1 + s2 === 0 ? 'nowhere (no node recorded it)' : [p > 0 ? `primary (${p})` : '', s1 > 0 ? `node1 (${s1})` : '', s2 > 0 ? `node2 (${s2})` : ''].filter(Boolean).join(' + ');
      const portNote = out.ports.length > 0 ? `; inet_server_port ${out.ports.join(',')}` : '';
      const happened = `ran on ${ranOn}${out.error ? `; error: ${out.error}` : ''}${portNote}`;
      const ok = out.error === null && (c.where === 'primary' ? p > 0 && s1 + s2 === 0 : p === 0 && s1 + s2 > 0);
      expect(ok ? 'as expected' : happened, `expected ${c.where}`).toBe('as expected');
      // Cross-check only: the node that answered agrees with the servers' records.
      for (const port of out.ports) {
        if (c.where === 'primary') expect(port).toBe(primaryPort);
        else expect(port).not.toBe(primaryPort);
      }
    });
  }
});
