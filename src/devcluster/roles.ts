// The SQL that gives a new primary what the tests and the demo expect, whichever provider built it: the roles
// (md5, SCRAM, pg_monitor, replication), the database, pg_stat_statements, and a slot per standby.
import type pg from 'pg';
import type { ClusterUsers } from './cluster-types.js';

const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
// Keep CREATE ROLE ... PASSWORD out of pg_stat_statements (track_utility is on).
const QUIET = 'SET pg_stat_statements.track_utility = off';

/** Run `fn` with a superuser connection to the primary's database `database`. */
export type OnPrimary = <T>(database: string, fn: (c: pg.Client) => Promise<T>) => Promise<T>;

export async function setupRoles(onPrimary: OnPrimary, u: ClusterUsers, db: string): Promise<void> {
  await onPrimary('postgres', async (client) => {
    await client.query(QUIET);
    await client.query(`SET password_encryption = 'md5'`);
    await client.query(`CREATE ROLE ${ident(u.app.name)} LOGIN PASSWORD ${lit(u.app.password)}`);
    await client.query(`RESET password_encryption`);
    await client.query(`CREATE ROLE ${ident(u.scram.name)} LOGIN PASSWORD ${lit(u.scram.password)}`);
    await client.query(`CREATE ROLE ${ident(u.monitor.name)} LOGIN PASSWORD ${lit(u.monitor.password)}`);
    // pg_monitor includes pg_read_all_stats: all rows and columns of pg_stat_replication and pg_stat_statements.
    await client.query(`GRANT pg_monitor TO ${ident(u.monitor.name)}`);
    await client.query(`CREATE ROLE ${ident(u.replication.name)} REPLICATION LOGIN PASSWORD ${lit(u.replication.password)}`);
    await client.query(`CREATE DATABASE ${ident(db)} OWNER ${ident(u.app.name)}`);
    await client.query(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
  });
  await onPrimary(db, async (client) => {
    await client.query(QUIET);
    await client.query(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
    await client.query(`GRANT CONNECT ON DATABASE ${ident(db)} TO ${ident(u.scram.name)}, ${ident(u.monitor.name)}`);
    await client.query(`GRANT ALL ON SCHEMA public TO ${ident(u.scram.name)}`);
    // Tables made by any of the app roles (or the superuser) are usable by both app roles.
    for (const owner of [u.superuser.name, u.app.name, u.scram.name]) {
      for (const kind of ['TABLES', 'SEQUENCES', 'FUNCTIONS']) {
        await client.query(
          `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(owner)} IN SCHEMA public GRANT ALL ON ${kind} TO ${ident(u.app.name)}, ${ident(u.scram.name)}`,
        );
      }
    }
  });
}

/** One physical replication slot per standby, named after it. */
export async function createSlots(onPrimary: OnPrimary, names: string[]): Promise<void> {
  await onPrimary('postgres', async (client) => {
    for (const name of names) await client.query('SELECT pg_create_physical_replication_slot($1)', [name]);
  });
}

/** synchronous_standby_names = `names` ('' = asynchronous), synchronous_commit on, reloaded. */
export async function setSynchronous(client: pg.Client, names: string): Promise<void> {
  await client.query(`ALTER SYSTEM SET synchronous_standby_names = ${lit(names)}`);
  await client.query(`ALTER SYSTEM SET synchronous_commit = 'on'`);
  await client.query('SELECT pg_reload_conf()');
}
