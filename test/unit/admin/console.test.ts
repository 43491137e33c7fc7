// How the admin console merges the tables of several workers: lists joined, per-user and per-database counts summed
// by key (a row only some workers have is kept). Pure: tables in, table out.
import { describe, expect, it } from 'vitest';
import { mergeAdminTables } from '../../../src/admin/console.js';
import { DATABASES_COLUMNS, USERS_COLUMNS } from '../../../src/admin/users-databases.js';

describe('mergeAdminTables', () => {
  it('SHOW USERS: connections of a user summed over workers', () => {
    const w1 = { columns: USERS_COLUMNS, rows: [['app', '50', 'session', '0', '3', '4'], ['etl', '50', 'session', '0', '1', '1']] };
    const w2 = { columns: USERS_COLUMNS, rows: [['app', '50', 'session', '0', '2', '5']] };
    expect(mergeAdminTables('SHOW USERS', [w1, w2]).rows).toEqual([['app', '50', 'session', '0', '5', '9'], ['etl', '50', 'session', '0', '1', '1']]);
  });

  it('SHOW DATABASES: a row per database and node, connections summed', () => {
    const row = (name: string, node: string | null, current: string): (string | null)[] => [name, 'h', '1', name, null, '50', '0', '0', 'session', '0', current, '0', '0', node];
    const w1 = { columns: DATABASES_COLUMNS, rows: [row('app', 'node0', '2'), row('app', 'node1', '1'), row('pgproxy', null, '0')] };
    const w2 = { columns: DATABASES_COLUMNS, rows: [row('app', 'node0', '3'), row('app', 'node1', '0'), row('pgproxy', null, '0')] };
    expect(mergeAdminTables('SHOW DATABASES', [w1, w2]).rows).toEqual([row('app', 'node0', '5'), row('app', 'node1', '1'), row('pgproxy', null, '0')]);
  });

  it('SHOW SERVERS: every worker\u2019s rows, one after the other', () => {
    const t = (id: string): { columns: string[]; rows: (string | null)[][] } => ({ columns: ['ptr'], rows: [[id]] });
    expect(mergeAdminTables('SHOW SERVERS', [t('1'), t('2'), t('health:7')]).rows).toEqual([['1'], ['2'], ['health:7']]);
  });
});
