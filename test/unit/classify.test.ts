import { describe, expect, it } from 'vitest';
import {
  classify,
  classifyCacheStats,
  classifyUncached,
  clearClassifyCache,
  setClassifyCacheSize,
  type StatementFacts,
} from '../../src/router/classify.js';

type Expect = Partial<{ [K in keyof StatementFacts]: unknown }>;
type Row = [sql: string, expected: Expect];

const read = (command = 'SELECT', extra: Expect = {}): Expect => ({ kind: 'read', command, understood: true, ...extra });
const write = (command: string, extra: Expect = {}): Expect => ({ kind: 'write', command, understood: true, ...extra });
const ddl = (command: string, extra: Expect = {}): Expect => ({ kind: 'ddl', command, understood: true, ...extra });
const utility = (command: string, extra: Expect = {}): Expect => ({ kind: 'utility', command, understood: true, ...extra });

function only(sql: string): StatementFacts {
  const c = classifyUncached(sql);
  expect(c.statements.length, `statements of ${JSON.stringify(sql)}`).toBe(1);
  return c.statements[0] as StatementFacts;
}

function table(name: string, rows: Row[]): void {
  describe(name, () => {
    it.each(rows)('%s', (sql, expected) => {
      expect(only(sql)).toMatchObject(expected);
    });
  });
}

table('reads', [
  ['SELECT 1', read('SELECT', { functions: [], relations: [], locking: false })],
  ['select 1', read()],
  ['SeLeCt 1', read()],
  ['  \n\t select\n*\nfrom\tusers\n where id=$1  ', read('SELECT', { relations: ['users'] })],
  ['SELECT * FROM users;', read('SELECT', { relations: ['users'] })],
  ['SELECT * FROM public.users u JOIN "Orders" o ON o.user_id = u.id', read('SELECT', { relations: ['public.users', 'Orders'] })],
  ['SELECT * FROM "Public"."My Table"', read('SELECT', { relations: ['Public.My Table'] })],
  ['select a, b from t1, t2 as x, t3 y where t1.a = x.b', read('SELECT', { relations: ['t1', 't2', 't3'] })],
  ['SELECT * FROM ONLY parent', read('SELECT', { relations: ['parent'] })],
  ['SELECT count(*) FROM pg_stat_activity', read('SELECT', { functions: ['count'], relations: ['pg_stat_activity'] })],
  ['select * from pg_catalog.pg_locks', read('SELECT', { relations: ['pg_catalog.pg_locks'] })],
  ['SELECT * FROM (SELECT * FROM inner_t) sub', read('SELECT', { relations: ['inner_t'] })],
  ['(SELECT 1) UNION ALL (SELECT 2)', read()],
  ['((select a from t))', read('SELECT', { relations: ['t'] })],
  ['VALUES (1, 2), (3, 4)', read('VALUES')],
  ['values(1)', read('VALUES')],
  ['TABLE users', read('TABLE', { relations: ['users'] })],
  ['table ONLY public.users', read('TABLE', { relations: ['public.users'] })],
  ['SHOW search_path', read('SHOW')],
  ['show ALL', read('SHOW')],
  ['SHOW TRANSACTION ISOLATION LEVEL', read('SHOW')],
  ['SELECT * FROM t WHERE name = \'DELETE FROM t; DROP TABLE t\'', read('SELECT', { relations: ['t'] })],
  ['SELECT $$ INSERT INTO t VALUES (1); $$', read('SELECT', { functions: [] })],
  ['SELECT $body$ UPDATE t SET x = nextval(\'s\') $body$ AS q', read('SELECT', { functions: [] })],
  ['SELECT 1 -- ; DELETE FROM t\n', read()],
  ['SELECT /* ; DELETE FROM t; /* nested */ still comment; */ 1', read()],
  ['SELECT "delete", "insert into" FROM "update"', read('SELECT', { relations: ['update'] })],
  ['SELECT E\'it\\\'s; DELETE\' AS s', read()],
  ['SELECT U&\'d\\0061t\\+000061; UPDATE\'', read()],
  ['SELECT B\'1010\', X\'1F\', N\'x;y\'', read()],
  ['SELECT x::varchar(10), y::numeric(10,2), z::timestamptz(3) FROM t', read('SELECT', { functions: [] })],
  ['SELECT CAST(x AS numeric(10, 2)), CAST(y AS my_type(3)) FROM t', read('SELECT', { functions: [] })],
  ['SELECT * FROM t WHERE id IN (1,2,3) AND EXISTS (SELECT 1 FROM u) AND x = ANY (ARRAY[1,2])', read('SELECT', { functions: [], relations: ['t', 'u'] })],
  ['SELECT COALESCE(a, 0), NULLIF(b, 1), GREATEST(1, 2), LEAST(3, 4) FROM t', read('SELECT', { functions: [] })],
  ['SELECT EXTRACT(epoch FROM created_at), SUBSTRING(s FROM 2 FOR 3), TRIM(BOTH \' \' FROM s), POSITION(\'a\' IN s) FROM t', read('SELECT', { functions: [], relations: ['t'] })],
  ['SELECT ROW(1, 2), ARRAY(SELECT 1), OVERLAY(s PLACING \'x\' FROM 1 FOR 2) FROM t', read('SELECT', { functions: [] })],
  ['SELECT x FROM t WHERE a IS DISTINCT FROM b', read('SELECT', { relations: ['t'] })],
  ['SELECT count(*) FILTER (WHERE x > 1) OVER (PARTITION BY y ORDER BY z) FROM t', read('SELECT', { functions: ['count'] })],
  ['SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t', read('SELECT', { functions: ['percentile_cont'] })],
  ['SELECT * FROM generate_series(1, 10) AS g(n)', read('SELECT', { functions: ['generate_series'], relations: [] })],
  ['SELECT * FROM generate_series(1, 10) g(n)', read('SELECT', { functions: ['generate_series'] })],
  ['SELECT * FROM (VALUES (1, \'a\')) AS v(id, name)', read('SELECT', { functions: [] })],
  ['SELECT * FROM (VALUES (1)) v(id)', read('SELECT', { functions: [] })],
  ['SELECT * FROM t x(a, b)', read('SELECT', { functions: [], relations: ['t'] })],
  ['SELECT now(), pg_catalog.now(), "MyFunc"(1), public.f(2)', read('SELECT', { functions: ['now', 'pg_catalog.now', 'MyFunc', 'public.f'] })],
  ['SELECT lower(name), LOWER(name), Lower (name) FROM t', read('SELECT', { functions: ['lower'] })],
  ['SELECT f/* comment */(1)', read('SELECT', { functions: ['f'] })],
  ['SELECT left(s, 2), right(s, 1) FROM t LEFT JOIN u ON true', read('SELECT', { functions: ['left', 'right'], relations: ['t', 'u'] })],
  ['SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (42)', read('SELECT', { functions: [], relations: ['t'] })],
  ['SELECT a FROM t GROUP BY ROLLUP (a), CUBE (b), GROUPING SETS ((a), (b))', read('SELECT', { functions: [] })],
  ['SELECT json_object(\'a\' VALUE 1), xmlelement(name foo)', read('SELECT', { functions: [] })],
  ['SELECT * FROM t1 JOIN LATERAL unnest(t1.arr) AS u(x) ON true', read('SELECT', { functions: ['unnest'], relations: ['t1'] })],
  ['SELECT * FROM ROWS FROM (f1(1), f2(2)) AS r(a, b)', read('SELECT', { functions: ['f1', 'f2'] })],
  ['SELECT current_timestamp(3), localtime(2), current_date', read('SELECT', { functions: [] })],
  ['SELECT a OPERATOR(pg_catalog.+) b FROM t', read('SELECT', { functions: [] })],
  ['SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b DESC', read('SELECT', { functions: [] })],
  ['SELECT * FROM t WHERE id = $1 AND name = $2::text', read('SELECT', { relations: ['t'] })],
  ['SELECT ts AT TIME ZONE \'UTC\' FROM events', read('SELECT', { relations: ['events'] })],
  ['select 1 as "for update"', read('SELECT', { locking: false })],
  ['SELECT interval \'1 day\', interval(2) \'1.5 s\', time(3) \'10:00\', timestamp(0) \'2020-01-01\'', read('SELECT', { functions: [] })],
]);

table('writes', [
  ['INSERT INTO t (a, b) VALUES (1, 2)', write('INSERT', { relations: ['t'], functions: [] })],
  ['insert into public.t(a) select a from u', write('INSERT', { relations: ['public.t', 'u'], functions: [] })],
  ['INSERT INTO t AS x (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a + 1', write('INSERT', { relations: ['t'], functions: [] })],
  ['INSERT INTO t VALUES (DEFAULT) RETURNING id', write('INSERT')],
  ['UPDATE t SET a = 1 WHERE id = 2', write('UPDATE', { relations: ['t'] })],
  ['update ONLY t set (a, b) = (1, 2) from u where t.id = u.id', write('UPDATE', { relations: ['t', 'u'], functions: [] })],
  ['DELETE FROM t WHERE id = 1', write('DELETE', { relations: ['t'] })],
  ['delete from t using u, v where t.id = u.id', write('DELETE', { relations: ['t', 'u', 'v'] })],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)', write('MERGE', { relations: ['t', 's'], functions: [] })],
  ['TRUNCATE t1, ONLY t2 RESTART IDENTITY', write('TRUNCATE', { relations: ['t1', 't2'] })],
  ['truncate table public.t', write('TRUNCATE', { relations: ['public.t'] })],
  ['WITH x AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM x', write('INSERT', { writableCte: false, relations: ['t', 'x'] })],
  ['WITH x AS (SELECT id FROM u) UPDATE t SET a = 1 FROM x WHERE t.id = x.id', write('UPDATE', { writableCte: false, relations: ['u', 't', 'x'] })],
  ['WITH RECURSIVE x(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM x WHERE n < 5) DELETE FROM t WHERE id IN (SELECT n FROM x)', write('DELETE', { functions: [] })],
  ['  /* leading comment */  Insert   Into   t\nValues\n(1)', write('INSERT')],
  ['INSERT INTO t (body) VALUES (\'SELECT 1; -- not a comment\')', write('INSERT')],
  ['INSERT INTO t VALUES ($fn$ it\'s ; $$ nested-looking $$ $fn$)', write('INSERT')],
]);

table('locking reads', [
  ['SELECT * FROM t FOR UPDATE', read('SELECT', { locking: true })],
  ['select * from t for no key update nowait', read('SELECT', { locking: true })],
  ['SELECT * FROM t FOR SHARE OF t SKIP LOCKED', read('SELECT', { locking: true })],
  ['SELECT * FROM t FOR KEY SHARE', read('SELECT', { locking: true })],
  ['SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)', read('SELECT', { locking: true })],
  ['SELECT * FROM t\nFOR\n  UPDATE', read('SELECT', { locking: true })],
  ['SELECT \'FOR UPDATE\' FROM t', read('SELECT', { locking: false })],
  ['SELECT 1 /* FOR UPDATE */', read('SELECT', { locking: false })],
  ['SELECT substring(s FROM 1 FOR 2) FROM t', read('SELECT', { locking: false })],
]);

table('writable CTEs', [
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', write('SELECT', { writableCte: true })],
  ['with u as (update t set a = 1 returning id) select count(*) from u', write('SELECT', { writableCte: true })],
  ['WITH i AS MATERIALIZED (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM i', write('SELECT', { writableCte: true })],
  ['WITH a AS (SELECT 1), b AS NOT MATERIALIZED (DELETE FROM t) SELECT * FROM a', write('SELECT', { writableCte: true, functions: [] })],
  ['WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *) SELECT * FROM m', write('SELECT', { writableCte: true })],
  ['WITH a AS (WITH b AS (SELECT 1) DELETE FROM t RETURNING *) SELECT * FROM a', write('SELECT', { writableCte: true })],
  ['WITH x AS (SELECT 1) SELECT * FROM x', read('SELECT', { writableCte: false })],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 10) SELECT * FROM r', read('SELECT', { functions: [] })],
  ['WITH x AS (SELECT \'DELETE FROM t\' AS q) SELECT q FROM x', read('SELECT', { writableCte: false })],
  ['WITH r AS (SELECT 1) SEARCH DEPTH FIRST BY a SET ord SELECT * FROM r', read('SELECT')],
  ['WITH x(a, b) AS (VALUES (1, 2)) VALUES (3)', read('VALUES', { functions: [] })],
  ['WITH d AS (DELETE FROM t RETURNING *) INSERT INTO archive SELECT * FROM d', write('INSERT', { writableCte: true, relations: ['t', 'archive', 'd'] })],
]);

table('SELECT INTO', [
  ['SELECT * INTO new_t FROM t', write('SELECT', { selectInto: true, createsTemp: false, relations: ['new_t', 't'] })],
  ['select a into temp tmp from t', write('SELECT', { selectInto: true, createsTemp: true })],
  ['SELECT a INTO TEMPORARY TABLE tmp FROM t', write('SELECT', { selectInto: true, createsTemp: true })],
  ['SELECT a INTO UNLOGGED TABLE u FROM t', write('SELECT', { selectInto: true, createsTemp: false })],
  ['WITH x AS (SELECT 1 a) SELECT * INTO y FROM x', write('SELECT', { selectInto: true })],
  ['SELECT \'into\' AS "into" FROM t', read('SELECT', { selectInto: false })],
  ['CREATE FUNCTION f() RETURNS int AS $$ BEGIN SELECT 1 INTO x; RETURN x; END $$ LANGUAGE plpgsql', ddl('CREATE FUNCTION', { selectInto: false })],
]);

table('DDL', [
  ['CREATE TABLE t (id serial PRIMARY KEY, name varchar(100) NOT NULL, price numeric(10,2), ref int REFERENCES u(id))', ddl('CREATE TABLE', { functions: [], relations: ['t', 'u'], createsTemp: false })],
  ['create table if not exists s.t (a int)', ddl('CREATE TABLE', { relations: ['s.t'] })],
  ['CREATE TEMP TABLE tmp (a int)', ddl('CREATE TABLE', { createsTemp: true })],
  ['CREATE TEMPORARY TABLE tmp AS SELECT * FROM t', ddl('CREATE TABLE', { createsTemp: true })],
  ['CREATE GLOBAL TEMPORARY TABLE tmp (a int)', ddl('CREATE TABLE', { createsTemp: true })],
  ['create temp view v as select 1', ddl('CREATE VIEW', { createsTemp: true })],
  ['CREATE TEMP SEQUENCE s', ddl('CREATE SEQUENCE', { createsTemp: true })],
  ['CREATE UNLOGGED TABLE u (a int)', ddl('CREATE TABLE', { createsTemp: false })],
  ['CREATE TABLE t2 AS SELECT * FROM t1', ddl('CREATE TABLE', { createsTemp: false, relations: ['t2', 't1'] })],
  ['CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM t', ddl('CREATE MATERIALIZED VIEW', { functions: ['count'] })],
  ['CREATE OR REPLACE VIEW v (a, b) AS SELECT 1, 2', ddl('CREATE VIEW', { functions: [], relations: ['v'] })],
  ['CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t USING btree (lower(email)) INCLUDE (id) WHERE deleted_at IS NULL', ddl('CREATE INDEX', { functions: ['lower'], relations: ['t'] })],
  ['CREATE INDEX ON t (a, b)', ddl('CREATE INDEX', { functions: [], relations: ['t'] })],
  ['CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS $$ SELECT a + b $$', ddl('CREATE FUNCTION', { functions: [] })],
  ['CREATE TABLE p (id int, created date) PARTITION BY RANGE (created)', ddl('CREATE TABLE', { functions: [] })],
  ['CREATE TABLE e (c circle, EXCLUDE USING gist (c WITH &&))', ddl('CREATE TABLE', { functions: [] })],
  ['CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 10), d timestamptz DEFAULT now())', ddl('CREATE TABLE', { functions: ['now'] })],
  ['CREATE TYPE mood AS ENUM (\'sad\', \'ok\')', ddl('CREATE TYPE', { functions: [] })],
  ['CREATE TRIGGER trg BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION trg_fn()', ddl('CREATE TRIGGER', { functions: [], locking: false })],
  ['CREATE POLICY p ON t FOR UPDATE USING (owner = current_user)', ddl('CREATE POLICY', { locking: false })],
  ['CREATE EXTENSION IF NOT EXISTS pgcrypto', ddl('CREATE EXTENSION')],
  ["CREATE USER bob PASSWORD 'x'", ddl('CREATE USER')],
  ['CREATE USER MAPPING FOR bob SERVER s', ddl('CREATE USER MAPPING')],
  ['CREATE CONSTRAINT TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()', ddl('CREATE TRIGGER', { functions: [] })],
  ['DROP OWNED BY bob', ddl('DROP OWNED')],
  ['ALTER SEQUENCE s RESTART WITH 1', ddl('ALTER SEQUENCE')],
  ['CREATE FOREIGN DATA WRAPPER w', ddl('CREATE FOREIGN DATA WRAPPER')],
  ['ALTER TABLE t ADD COLUMN c int DEFAULT 0', ddl('ALTER TABLE', { relations: ['t'] })],
  ['alter table if exists only t add constraint fk foreign key (a) references u (b)', ddl('ALTER TABLE', { relations: ['t', 'u'], functions: [] })],
  ['ALTER SYSTEM SET work_mem = \'64MB\'', ddl('ALTER SYSTEM')],
  ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r', ddl('ALTER DEFAULT PRIVILEGES')],
  ['DROP TABLE IF EXISTS t CASCADE', ddl('DROP TABLE')],
  ['drop materialized view mv', ddl('DROP MATERIALIZED VIEW')],
  ['DROP FUNCTION f(int), g(text)', ddl('DROP FUNCTION', { functions: [] })],
  ['COMMENT ON TABLE t IS \'x; DROP TABLE t\'', ddl('COMMENT')],
  ['GRANT SELECT, UPDATE ON t TO app', ddl('GRANT', { locking: false })],
  ['REVOKE ALL ON t FROM app', ddl('REVOKE')],
  ['SECURITY LABEL FOR selinux ON TABLE t IS \'x\'', ddl('SECURITY LABEL')],
  ['REFRESH MATERIALIZED VIEW CONCURRENTLY mv', ddl('REFRESH MATERIALIZED VIEW')],
  ['REINDEX TABLE t', ddl('REINDEX')],
  ['CLUSTER t USING i', ddl('CLUSTER')],
  ['VACUUM (VERBOSE, ANALYZE) t', ddl('VACUUM')],
  ['vacuum full', ddl('VACUUM')],
  ['ANALYZE t', ddl('ANALYZE')],
  ['analyse', ddl('ANALYZE')],
  ['CHECKPOINT', ddl('CHECKPOINT')],
  ['IMPORT FOREIGN SCHEMA s FROM SERVER srv INTO local_s', ddl('IMPORT FOREIGN SCHEMA')],
  ['REASSIGN OWNED BY a TO b', ddl('REASSIGN OWNED')],
  ['CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); INSERT INTO log VALUES (2))', ddl('CREATE RULE', { writableCte: false, functions: [] })],
  ['CREATE RULE r AS ON UPDATE TO t DO INSTEAD (SELECT 1)', ddl('CREATE RULE', { functions: [] })],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END', ddl('CREATE FUNCTION')],
  ['CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END', ddl('CREATE PROCEDURE')],
]);

const tx = (op: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ op, readOnly: false, readWrite: false, serializable: false, savepoint: null, chain: false, gid: null, ...extra });
const txRow = (command: string, t: Record<string, unknown>, understood = true): Expect => ({ kind: 'transaction', command, tx: t, understood });

table('transactions', [
  ['BEGIN', txRow('BEGIN', tx('begin'))],
  ['begin;', txRow('BEGIN', tx('begin'))],
  ['BEGIN WORK', txRow('BEGIN', tx('begin'))],
  ['BEGIN TRANSACTION READ ONLY', txRow('BEGIN', tx('begin', { readOnly: true }))],
  ['begin read write', txRow('BEGIN', tx('begin', { readWrite: true }))],
  ['BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE', txRow('BEGIN', tx('begin', { readOnly: true, serializable: true }))],
  ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', txRow('BEGIN', tx('begin', { readOnly: true }))],
  ['BEGIN ISOLATION LEVEL READ COMMITTED', txRow('BEGIN', tx('begin'))],
  ['START TRANSACTION', txRow('START TRANSACTION', tx('begin'))],
  ['start transaction read only, isolation level serializable', txRow('START TRANSACTION', tx('begin', { readOnly: true, serializable: true }))],
  ['START TRANSACTION NOT DEFERRABLE READ WRITE', txRow('START TRANSACTION', tx('begin', { readWrite: true }))],
  ['/* app */ BEGIN /* x */ READ /* y */ ONLY', txRow('BEGIN', tx('begin', { readOnly: true }))],
  ['COMMIT', txRow('COMMIT', tx('commit'))],
  ['commit work', txRow('COMMIT', tx('commit'))],
  ['COMMIT AND CHAIN', txRow('COMMIT', tx('commit', { chain: true }))],
  ['COMMIT AND NO CHAIN', txRow('COMMIT', tx('commit', { chain: false }))],
  ['END', txRow('END', tx('commit'))],
  ['end transaction', txRow('END', tx('commit'))],
  ['ROLLBACK', txRow('ROLLBACK', tx('rollback'))],
  ['rollback transaction', txRow('ROLLBACK', tx('rollback'))],
  ['ABORT', txRow('ABORT', tx('rollback'))],
  ['ROLLBACK AND CHAIN', txRow('ROLLBACK', tx('rollback', { chain: true }))],
  ['SAVEPOINT sp1', txRow('SAVEPOINT', tx('savepoint', { savepoint: 'sp1' }))],
  ['savepoint "My SP"', txRow('SAVEPOINT', tx('savepoint', { savepoint: 'My SP' }))],
  ['RELEASE SAVEPOINT sp1', txRow('RELEASE', tx('release', { savepoint: 'sp1' }))],
  ['release SP1', txRow('RELEASE', tx('release', { savepoint: 'sp1' }))],
  ['ROLLBACK TO SAVEPOINT sp1', txRow('ROLLBACK', tx('rollback_to', { savepoint: 'sp1' }))],
  ['rollback work to sp2', txRow('ROLLBACK', tx('rollback_to', { savepoint: 'sp2' }))],
  ['ROLLBACK TRANSACTION TO SAVEPOINT "x"', txRow('ROLLBACK', tx('rollback_to', { savepoint: 'x' }))],
  ["PREPARE TRANSACTION 'gid-1'", txRow('PREPARE TRANSACTION', tx('prepare_transaction', { gid: 'gid-1' }))],
  ["COMMIT PREPARED 'gid-1'", txRow('COMMIT PREPARED', tx('commit_prepared', { gid: 'gid-1' }))],
  ["rollback prepared 'gid''2'", txRow('ROLLBACK PREPARED', tx('rollback_prepared', { gid: "gid'2" }))],
  ['BEGIN BANANA', txRow('BEGIN', tx('begin'), false)],
]);

const sess = (op: string, name: string | null, value: string | null, local = false): Record<string, unknown> => ({ op, name, value, local });
const sRow = (command: string, s: Record<string, unknown>, extra: Expect = {}): Expect => ({ kind: 'session', command, session: s, understood: true, ...extra });

table('session', [
  ['SET search_path TO myschema, public', sRow('SET', sess('set', 'search_path', 'myschema, public'))],
  ['set Search_Path = "$user",public', sRow('SET', sess('set', 'search_path', '"$user",public'))],
  ['SET SESSION statement_timeout = 5000', sRow('SET', sess('set', 'statement_timeout', '5000'))],
  ['SET LOCAL statement_timeout TO \'5s\'', sRow('SET', sess('set', 'statement_timeout', "'5s'", true))],
  ['SET myapp.user_id = 42', sRow('SET', sess('set', 'myapp.user_id', '42'))],
  ['SET "MyApp".Flag = on', sRow('SET', sess('set', 'myapp.flag', 'on'))],
  ['SET work_mem TO DEFAULT', sRow('SET', sess('set', 'work_mem', 'DEFAULT'))],
  ['SET search_path FROM CURRENT', sRow('SET', sess('set', 'search_path', null))],
  ["SET TIME ZONE 'UTC'", sRow('SET', sess('set', 'timezone', "'UTC'"))],
  ['set time zone local', sRow('SET', sess('set', 'timezone', 'local'))],
  ["SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE", sRow('SET', sess('set', 'timezone', "INTERVAL '+00:00' HOUR TO MINUTE"))],
  ['SET timezone = \'Europe/Paris\'', sRow('SET', sess('set', 'timezone', "'Europe/Paris'"))],
  ["SET NAMES 'UTF8'", sRow('SET', sess('set', 'client_encoding', "'UTF8'"))],
  ["SET SCHEMA 'app'", sRow('SET', sess('set', 'search_path', "'app'"))],
  ['SET ROLE admin', sRow('SET', sess('set', 'role', 'admin'))],
  ['SET LOCAL ROLE NONE', sRow('SET', sess('set', 'role', 'NONE', true))],
  ['SET role = \'x\'', sRow('SET', sess('set', 'role', "'x'"))],
  ['SET SESSION AUTHORIZATION bob', sRow('SET', sess('set', 'session_authorization', 'bob'))],
  ['SET SESSION SESSION AUTHORIZATION DEFAULT', sRow('SET', sess('set', 'session_authorization', 'DEFAULT'))],
  ['SET XML OPTION DOCUMENT', sRow('SET', sess('set', 'xmloption', 'DOCUMENT'))],
  ['SET CONSTRAINTS ALL DEFERRED', sRow('SET', sess('set', 'constraints', 'ALL DEFERRED', true))],
  ['SET TRANSACTION READ ONLY', sRow('SET', sess('set', 'transaction', 'READ ONLY', true), { txCharacteristics: { readOnly: true, readWrite: false, serializable: false }, tx: null })],
  ['set transaction isolation level serializable', sRow('SET', sess('set', 'transaction', 'isolation level serializable', true), { txCharacteristics: { readOnly: false, readWrite: false, serializable: true } })],
  ["SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", sRow('SET', sess('set', 'transaction', "SNAPSHOT '00000003-0000001B-1'", true), { txCharacteristics: null })],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', sRow('SET', sess('set_session_characteristics', 'transaction', 'READ ONLY'), { txCharacteristics: { readOnly: true, readWrite: false, serializable: false } })],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE', sRow('SET', sess('set_session_characteristics', 'transaction', 'ISOLATION LEVEL SERIALIZABLE, READ WRITE'), { txCharacteristics: { readOnly: false, readWrite: true, serializable: true } })],
  ['SET default_transaction_read_only = on', sRow('SET', sess('set', 'default_transaction_read_only', 'on'), { txCharacteristics: { readOnly: true, readWrite: false, serializable: false } })],
  ["SET SESSION default_transaction_read_only TO 'off'", sRow('SET', sess('set', 'default_transaction_read_only', "'off'"), { txCharacteristics: { readOnly: false, readWrite: true, serializable: false } })],
  ['SET transaction_read_only = true', sRow('SET', sess('set', 'transaction_read_only', 'true'), { txCharacteristics: { readOnly: true, readWrite: false, serializable: false } })],
  ['SET LOCAL transaction_read_only TO false', sRow('SET', sess('set', 'transaction_read_only', 'false', true), { txCharacteristics: { readOnly: false, readWrite: true, serializable: false } })],
  ["SET default_transaction_isolation = 'serializable'", sRow('SET', sess('set', 'default_transaction_isolation', "'serializable'"), { txCharacteristics: { readOnly: false, readWrite: false, serializable: true } })],
  ["set transaction_isolation to 'read committed'", sRow('SET', sess('set', 'transaction_isolation', "'read committed'"), { txCharacteristics: { readOnly: false, readWrite: false, serializable: false } })],
  ['SET application_name = \'x; DELETE FROM t\'', sRow('SET', sess('set', 'application_name', "'x; DELETE FROM t'"))],
  ['RESET search_path', sRow('RESET', sess('reset', 'search_path', null))],
  ['reset ALL', sRow('RESET', sess('reset_all', null, null))],
  ['RESET TIME ZONE', sRow('RESET', sess('reset', 'timezone', null))],
  ['RESET SESSION AUTHORIZATION', sRow('RESET', sess('reset', 'session_authorization', null))],
  ['RESET ROLE', sRow('RESET', sess('reset', 'role', null))],
  ['RESET TRANSACTION ISOLATION LEVEL', sRow('RESET', sess('reset', 'transaction_isolation', null))],
  ['DISCARD ALL', sRow('DISCARD', sess('discard', null, 'all'))],
  ['discard plans', sRow('DISCARD', sess('discard', null, 'plans'))],
  ['DISCARD SEQUENCES', sRow('DISCARD', sess('discard', null, 'sequences'))],
  ['DISCARD TEMPORARY', sRow('DISCARD', sess('discard', null, 'temp'))],
  ['DISCARD TEMP', sRow('DISCARD', sess('discard', null, 'temp'))],
]);

table('utility', [
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', utility('LOCK', { relations: ['t'] })],
  ['lock a, only b nowait', utility('LOCK', { relations: ['a', 'b'] })],
  ['CALL my_proc(1, nextval(\'s\'))', utility('CALL', { functions: ['my_proc', 'nextval'] })],
  ['call public.p()', utility('CALL', { functions: ['public.p'] })],
  ['DO $$ BEGIN DELETE FROM t; END $$', utility('DO', { functions: [] })],
  ["DO LANGUAGE plpgsql 'BEGIN PERFORM 1; END'", utility('DO')],
  ['LISTEN jobs', utility('LISTEN', { listen: 'listen' })],
  ['UNLISTEN *', utility('UNLISTEN', { listen: 'unlisten' })],
  ["NOTIFY jobs, 'payload; DROP'", utility('NOTIFY', { listen: 'notify' })],
  ["LOAD 'auto_explain'", utility('LOAD')],
  ['PREPARE q (int) AS SELECT * FROM t WHERE id = $1', utility('PREPARE', { prepared: { op: 'prepare', name: 'q' }, preparedKind: 'read', relations: ['t'], functions: [] })],
  ['prepare ins AS insert into t values ($1)', utility('PREPARE', { prepared: { op: 'prepare', name: 'ins' }, preparedKind: 'write' })],
  ['PREPARE n AS SELECT nextval(\'s\')', utility('PREPARE', { preparedKind: 'read', functions: ['nextval'] })],
  ['PREPARE l AS SELECT * FROM t FOR UPDATE', utility('PREPARE', { preparedKind: 'read', locking: true })],
  ['PREPARE w AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', utility('PREPARE', { preparedKind: 'write', writableCte: true })],
  ['EXECUTE q(1)', utility('EXECUTE', { prepared: { op: 'execute', name: 'q' }, functions: [] })],
  ['execute "Q" (nextval(\'s\'))', utility('EXECUTE', { prepared: { op: 'execute', name: 'Q' }, functions: ['nextval'] })],
  ['DEALLOCATE q', utility('DEALLOCATE', { prepared: { op: 'deallocate', name: 'q' } })],
  ['DEALLOCATE PREPARE q', utility('DEALLOCATE', { prepared: { op: 'deallocate', name: 'q' } })],
  ['DEALLOCATE ALL', utility('DEALLOCATE', { prepared: { op: 'deallocate', name: null } })],
  ['DECLARE c CURSOR FOR SELECT * FROM t', utility('DECLARE', { cursor: { op: 'declare', name: 'c', withHold: false }, relations: ['t'] })],
  ['declare c binary no scroll cursor with hold for select nextval(\'s\')', utility('DECLARE', { cursor: { op: 'declare', name: 'c', withHold: true }, functions: ['nextval'] })],
  ['DECLARE c CURSOR WITHOUT HOLD FOR SELECT * FROM t FOR UPDATE', utility('DECLARE', { cursor: { op: 'declare', name: 'c', withHold: false }, locking: true })],
  ['FETCH 10 FROM c', utility('FETCH', { cursor: { op: 'fetch', name: 'c', withHold: false } })],
  ['fetch next in "C"', utility('FETCH', { cursor: { op: 'fetch', name: 'C', withHold: false } })],
  ['FETCH c', utility('FETCH', { cursor: { op: 'fetch', name: 'c', withHold: false } })],
  ['FETCH FORWARD ALL FROM c', utility('FETCH', { cursor: { op: 'fetch', name: 'c', withHold: false } })],
  ['MOVE ABSOLUTE -1 IN c', utility('MOVE', { cursor: { op: 'move', name: 'c', withHold: false } })],
  ['CLOSE c', utility('CLOSE', { cursor: { op: 'close', name: 'c', withHold: false } })],
  ['CLOSE ALL', utility('CLOSE', { cursor: { op: 'close', name: null, withHold: false } })],
]);

table('EXPLAIN', [
  ['EXPLAIN SELECT * FROM t', read('EXPLAIN', { explainAnalyze: false, relations: ['t'] })],
  ['explain analyze select * from t', read('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN DELETE FROM t', read('EXPLAIN', { explainAnalyze: false })],
  ['EXPLAIN ANALYZE DELETE FROM t', write('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN ANALYSE VERBOSE INSERT INTO t VALUES (1)', write('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN VERBOSE UPDATE t SET a = 1', read('EXPLAIN', { explainAnalyze: false })],
  ['EXPLAIN (ANALYZE) UPDATE t SET a = 1', write('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN (ANALYZE true, BUFFERS) UPDATE t SET a = 1', write('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN (ANALYZE on) DELETE FROM t', write('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN (ANALYZE 1) DELETE FROM t', write('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN (ANALYZE false, COSTS off) DELETE FROM t', read('EXPLAIN', { explainAnalyze: false })],
  ['EXPLAIN (analyze off) DELETE FROM t', read('EXPLAIN', { explainAnalyze: false })],
  ['EXPLAIN (FORMAT JSON, ANALYZE) SELECT 1', read('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN (COSTS false) SELECT * FROM t FOR UPDATE', read('EXPLAIN', { explainAnalyze: false, locking: true })],
  ['EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', write('EXPLAIN', { explainAnalyze: true, writableCte: true })],
  ['EXPLAIN (SELECT 1)', read('EXPLAIN')],
  ['EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1', ddl('EXPLAIN', { explainAnalyze: true })],
  ['EXPLAIN EXECUTE q(1)', read('EXPLAIN', { prepared: { op: 'execute', name: 'q' } })],
]);

table('COPY', [
  ['COPY t FROM STDIN', write('COPY', { copy: 'from', relations: ['t'] })],
  ["copy public.t (a, b) from '/tmp/x.csv' with (format csv)", write('COPY', { copy: 'from', relations: ['public.t'], functions: [] })],
  ['COPY t TO STDOUT', read('COPY', { copy: 'to', relations: ['t'] })],
  ['COPY t (a) TO STDOUT WITH (FORMAT binary)', read('COPY', { copy: 'to' })],
  ['COPY (SELECT * FROM t WHERE a > 1) TO STDOUT', read('COPY', { copy: 'to', relations: ['t'] })],
  ['COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT', write('COPY', { copy: 'to' })],
  ['COPY (DELETE FROM t RETURNING *) TO STDOUT (FORMAT csv)', write('COPY', { copy: 'to' })],
  ['COPY (SELECT nextval(\'s\')) TO STDOUT', read('COPY', { copy: 'to', functions: ['nextval'] })],
  ["COPY t FROM PROGRAM 'cat x; rm y'", write('COPY', { copy: 'from' })],
]);

table('hints', [
  ['/*NO LOAD BALANCE*/ SELECT 1', read('SELECT', { hint: 'primary' })],
  ['/*no load balance*/SELECT 1', read('SELECT', { hint: 'primary' })],
  ['/*  NO   LOAD  BALANCE  */ select 1', read('SELECT', { hint: 'primary' })],
  ['  \n /*NO LOAD BALANCE*/\nSELECT 1', read('SELECT', { hint: 'primary' })],
  ['/* pgproxy: primary */ SELECT 1', read('SELECT', { hint: 'primary' })],
  ['/*PGPROXY:PRIMARY*/ SELECT 1', read('SELECT', { hint: 'primary' })],
  ['/* app=x */ /*NO LOAD BALANCE*/ SELECT 1', read('SELECT', { hint: 'primary' })],
  ["/* controller='users',action='show' */ SELECT * FROM users", read('SELECT', { hint: null })],
  ["SELECT * FROM users /* controller='users',action='show' */", read('SELECT', { hint: null })],
  ['SELECT 1 /*NO LOAD BALANCE*/', read('SELECT', { hint: null })],
  ['-- NO LOAD BALANCE\nSELECT 1', read('SELECT', { hint: null })],
  ['/*NO LOAD BALANCING*/ SELECT 1', read('SELECT', { hint: null })],
  ['/* NO LOAD BALANCE please */ SELECT 1', read('SELECT', { hint: null })],
  ["SELECT '/*NO LOAD BALANCE*/'", read('SELECT', { hint: null })],
]);

table('set_config', [
  ["SELECT set_config('search_path', 'a', false)", read('SELECT', { functions: ['set_config'], setConfigCalls: [{ name: 'search_path', isLocal: false }] })],
  ["select pg_catalog.set_config('App.User', '1', true)", read('SELECT', { setConfigCalls: [{ name: 'app.user', isLocal: true }] })],
  ["SELECT set_config($1, 'x', false)", read('SELECT', { setConfigCalls: [{ name: null, isLocal: false }] })],
  ["SELECT set_config('a', 'x', $1)", read('SELECT', { setConfigCalls: [{ name: 'a', isLocal: null }] })],
  ["SELECT set_config('a'::text, lower('X'), 'false'::boolean)", read('SELECT', { functions: ['set_config', 'lower'], setConfigCalls: [{ name: 'a', isLocal: false }] })],
  ["SELECT set_config('a', 'x', false), set_config('b', 'y', true)", read('SELECT', { setConfigCalls: [{ name: 'a', isLocal: false }, { name: 'b', isLocal: true }] })],
  ["SELECT 'set_config(''a'', ''b'', false)'", read('SELECT', { setConfigCalls: [] })],
]);

table('function detection in writes and odd places', [
  ['SELECT nextval(\'s\')', read('SELECT', { functions: ['nextval'] })],
  ['SELECT NEXTVAL(\'s\')', read('SELECT', { functions: ['nextval'] })],
  ['SELECT "nextval"(\'s\')', read('SELECT', { functions: ['nextval'] })],
  ['SELECT pg_catalog.nextval(\'s\')', read('SELECT', { functions: ['pg_catalog.nextval'] })],
  ['SELECT * FROM nextval(\'s\')', read('SELECT', { functions: ['nextval'] })],
  ['SELECT pg_advisory_lock(1)', read('SELECT', { functions: ['pg_advisory_lock'] })],
  ['SELECT my_nextval2(1)', read('SELECT', { functions: ['my_nextval2'] })],
  ['SELECT f(g(h(1)))', read('SELECT', { functions: ['f', 'g', 'h'] })],
  ['SELECT f(1), f(2)', read('SELECT', { functions: ['f'] })],
  ['SELECT \'nextval(1)\', $$nextval(2)$$ /* nextval(3) */ -- nextval(4)\n', read('SELECT', { functions: [] })],
  ['INSERT INTO t (a) VALUES (nextval(\'s\'))', write('INSERT', { functions: ['nextval'], relations: ['t'] })],
  ['UPDATE t SET a = upper(b)', write('UPDATE', { functions: ['upper'] })],
  ['SELECT * FROM t WHERE x NOT IN (1) AND y LIKE (\'a\')', read('SELECT', { functions: [] })],
  ['SELECT CASE WHEN a THEN f(1) ELSE g(2) END FROM t', read('SELECT', { functions: ['f', 'g'] })],
  ['SELECT a FROM t WHERE b = ANY(SELECT c FROM u) AND d = SOME(ARRAY[1]) AND e > ALL(SELECT 1)', read('SELECT', { functions: [] })],
  ['SELECT * FROM t ORDER BY a FETCH FIRST (5) ROWS ONLY', read('SELECT', { functions: [] })],
  ["SELECT INTERVAL '1.5' SECOND (3)", read('SELECT', { functions: [] })],
  ["SELECT * FROM JSON_TABLE('[]'::jsonb, '$[*]' COLUMNS (a int PATH '$.a', NESTED PATH '$.b' COLUMNS (b int)))", read('SELECT', { functions: [] })],
  ['SELECT * FROM (WITH x(a) AS (SELECT 1), y(b) AS (SELECT 2) SELECT * FROM x, y) s', read('SELECT', { functions: [] })],
  ['SELECT * FROM t WHERE a IN (WITH RECURSIVE r(n) AS (SELECT 1) SELECT n FROM r)', read('SELECT', { functions: [] })],
  ['SELECT * FROM unnest(ARRAY[1,2]) WITH ORDINALITY AS u(v, n)', read('SELECT', { functions: ['unnest'] })],
  ['DELETE FROM t USING generate_series(1, 3) g WHERE t.id = g', write('DELETE', { functions: ['generate_series'], relations: ['t'] })],
  ['SET x=-1', { kind: 'session', session: { op: 'set', local: false, name: 'x', value: '-1' }, understood: true }],
  ['SELECT x::double precision, y::character varying(20), z::bit varying(3)', read('SELECT', { functions: [] })],
]);

table('not understood', [
  ['FROBNICATE t', { kind: 'unknown', understood: false }],
  ["SELECT 'unterminated", { kind: 'read', understood: false }],
  ['SELECT $$ unterminated', { kind: 'read', understood: false }],
  ['SELECT 1 /* unterminated', { kind: 'read', understood: false }],
  ['SELECT "unterminated', { kind: 'read', understood: false }],
  ['SELECT (1', { understood: false }],
  ['SELECT 1)', { understood: false }],
  ['123', { kind: 'unknown', understood: false }],
  ['(INSERT INTO t VALUES (1))', { kind: 'unknown', understood: false }],
  ['EXPLAIN', { kind: 'unknown', understood: false }],
  ['/* unterminated comment only', { kind: 'unknown', understood: false }],
]);

describe('multi-statement strings', () => {
  const rows: [string, Expect[]][] = [
    ['SELECT 1; SELECT 2', [read(), read()]],
    ['SELECT 1; DELETE FROM t', [read(), write('DELETE')]],
    ['BEGIN; UPDATE t SET a = 1; COMMIT;', [{ kind: 'transaction', command: 'BEGIN' }, write('UPDATE'), { kind: 'transaction', command: 'COMMIT' }]],
    ["SELECT 'a;b'; SELECT \"c;d\"; SELECT $x$;$x$", [read(), read(), read()]],
    ['SELECT 1 /* ; */ ; -- ;\n SELECT 2', [read(), read()]],
    [';;SELECT 1;;;SELECT 2;;', [read(), read()]],
    ['SET search_path = a; SELECT 1', [{ kind: 'session', command: 'SET' }, read()]],
    ['SELECT 1; /*NO LOAD BALANCE*/ SELECT 2', [read('SELECT', { hint: null }), read('SELECT', { hint: 'primary' })]],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; SELECT 2', [ddl('CREATE FUNCTION'), read()]],
    ['CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); UPDATE t SET a = 2; END; DELETE FROM t', [ddl('CREATE PROCEDURE'), write('DELETE')]],
    ["SELECT 'x'; SELECT 'unterminated; DELETE FROM t", [read(), { kind: 'read', understood: false }]],
  ];
  it.each(rows)('%s', (sql, expected) => {
    const c = classifyUncached(sql);
    expect(c.statements.length).toBe(expected.length);
    expected.forEach((e, i) => expect(c.statements[i]).toMatchObject(e));
  });

  it.each(['', '   ', ';', ' ; ;; ', '-- only a comment', '/* only */ /* comments */;', '\n\t\r'])('%j has no statements', (sql) => {
    expect(classifyUncached(sql).statements).toEqual([]);
  });
});

describe('robustness', () => {
  const nasty = [
    "'", '"', '$', '$$', '$a$', '$a', '/*', '/* /* */', '--', 'E\'\\', "E'\\'", 'U&', 'U&"', "U&'", '::', ':', '(', ')', '((((', '))))',
    '$1', '$1$', 'x$$', '\\', '\u0000', '\uffff', '😀', 'SELECT 😀()', '.', '..', '1..2', '1e', '1e+', '0x', '.e1', 'B', "B'", "X'", "N'",
    'SET', 'SET x', 'SET x =', 'RESET', 'BEGIN ISOLATION', 'BEGIN ISOLATION LEVEL', 'ROLLBACK TO', 'PREPARE', 'PREPARE p', 'PREPARE p AS',
    'EXECUTE', 'DECLARE', 'DECLARE c CURSOR FOR', 'FETCH', 'CLOSE', 'COPY', 'COPY (', 'COPY (SELECT 1', 'COPY t', 'EXPLAIN (', 'EXPLAIN (ANALYZE',
    'WITH', 'WITH x', 'WITH x AS', 'WITH x AS (', 'WITH x AS (SELECT 1)', 'SELECT set_config(', "SELECT set_config('a',", 'CREATE', 'ALTER', 'DEALLOCATE',
    'SELECT * INTO', 'SELECT * FROM', 'SELECT f(', 'SELECT a.', 'LOCK', 'TRUNCATE', 'INSERT INTO', 'SAVEPOINT', 'COMMIT PREPARED', 'SELECT 1 FOR',
  ];
  it.each(nasty)('never throws on %j', (sql) => {
    const c = classifyUncached(sql);
    expect(Array.isArray(c.statements)).toBe(true);
    for (const s of c.statements) expect(typeof s.kind).toBe('string');
  });

  it('never throws on random input', () => {
    const alphabet = ["'", '"', '$', '$$', '/*', '*/', '--', '\n', ';', '(', ')', 'E', 'U&', 'SELECT', 'INSERT', 'INTO', 'FOR', 'UPDATE', 'WITH', 'AS', 'f', '.', ',', ' ', '::', '1', '\\', 'x$y$', '$x$'];
    let seed = 12345;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let n = 0; n < 3000; n++) {
      let sql = '';
      const len = Math.floor(rnd() * 30);
      for (let k = 0; k < len; k++) sql += alphabet[Math.floor(rnd() * alphabet.length)];
      expect(() => classifyUncached(sql)).not.toThrow();
    }
  });

  it('handles very long statements (IN lists)', () => {
    const list = Array.from({ length: 20_000 }, (_, i) => i).join(',');
    const s = only(`SELECT * FROM t WHERE id IN (${list})`);
    expect(s).toMatchObject(read('SELECT', { relations: ['t'], functions: [] }));
  });

  it('handles deep nesting', () => {
    const sql = 'SELECT ' + '('.repeat(500) + 'nextval(1)' + ')'.repeat(500);
    expect(only(sql)).toMatchObject(read('SELECT', { functions: ['nextval'] }));
  });

  it('returns frozen facts', () => {
    const s = only('SELECT f(1) FROM t');
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.functions)).toBe(true);
  });
});

describe('cache', () => {
  it('returns the same classification for the same text', () => {
    clearClassifyCache();
    const a = classify('SELECT 42 FROM cache_test');
    const b = classify('SELECT 42 FROM cache_test');
    expect(b).toBe(a);
    expect(classify('select 42 from cache_test')).not.toBe(a);
  });

  it('evicts the least recently used entry', () => {
    clearClassifyCache();
    setClassifyCacheSize(2);
    try {
      const a = classify('SELECT 1 AS a');
      classify('SELECT 1 AS b');
      classify('SELECT 1 AS a'); // a is now the most recent
      classify('SELECT 1 AS c'); // evicts b
      expect(classify('SELECT 1 AS a')).toBe(a);
      expect(classifyCacheStats().size).toBe(2);
      const before = classifyCacheStats().misses;
      classify('SELECT 1 AS b');
      expect(classifyCacheStats().misses).toBe(before + 1);
    } finally {
      setClassifyCacheSize(10_000);
    }
  });

  it('can be disabled', () => {
    setClassifyCacheSize(0);
    try {
      const a = classify('SELECT 7');
      expect(classify('SELECT 7')).not.toBe(a);
      expect(classify('SELECT 7')).toEqual(a);
    } finally {
      setClassifyCacheSize(10_000);
    }
  });
});
