// bench/pgbench.ts: the arguments of a run (duration or transactions per client, built-in script or a file) and
// the summary of a -t run.
import { describe, expect, it } from 'vitest';
import { parseSummary, pgbenchArgs, WORKLOADS, type Workload } from '../../bench/pgbench.js';

const target = { host: '127.0.0.1', port: 6432, user: 'app', database: 'bench' };
const flag = (args: string[], f: string): string | undefined => {
  const i = args.indexOf(f);
  return i < 0 ? undefined : args[i + 1];
};

describe('pgbenchArgs', () => {
  it('a built-in workload runs for the duration', () => {
    const tpcb = WORKLOADS.find((w) => w.name === 'tpcb-c16')!;
    const args = pgbenchArgs(target, tpcb, 8, '/logs/pgbench_1');
    expect(flag(args, '-T')).toBe('8');
    expect(args).not.toContain('-t');
    expect(args).not.toContain('-S');
    expect(args).not.toContain('-f');
    expect([flag(args, '-c'), flag(args, '-j'), flag(args, '-M')]).toEqual(['16', '2', 'simple']);
    expect(args).toContain('-n');
    expect(args).toContain('--log-prefix=/logs/pgbench_1');
    expect(args[args.length - 1]).toBe('bench');

    const select = WORKLOADS.find((w) => w.name === 'select-simple-c1')!;
    const one = pgbenchArgs(target, select, 3, '/logs/p');
    expect(one).toContain('-S');
    expect(flag(one, '-j')).toBe('1');
  });

  it('a script file with transactions per client: -f and -t, no -T', () => {
    const insert: Workload = {
      name: 'ryw-insert-c100',
      title: 'insert',
      script: { file: '/tmp/x/insert.sql' },
      mode: 'simple',
      clients: 100,
      transactionsPerClient: 1000,
    };
    const args = pgbenchArgs(target, insert, 8, '/logs/p');
    expect(flag(args, '-f')).toBe('/tmp/x/insert.sql');
    expect(flag(args, '-t')).toBe('1000');
    expect(args).not.toContain('-T');
    expect(args).not.toContain('-S');
    expect([flag(args, '-c'), flag(args, '-j')]).toEqual(['100', '2']);
  });
});

describe('parseSummary', () => {
  it('reads the summary of a -t run', () => {
    const out = [
      'transaction type: insert.sql',
      'scaling factor: 1',
      'query mode: simple',
      'number of clients: 100',
      'number of threads: 2',
      'maximum number of tries: 1',
      'number of transactions per client: 100',
      'number of transactions actually processed: 9998/10000',
      'number of failed transactions: 2 (0.020%)',
      'latency average = 25.123 ms',
      'initial connection time = 120.456 ms',
      'tps = 3980.123456 (without initial connection time)',
    ].join('\n');
    expect(parseSummary(out)).toEqual({ tps: 3980.123456, avgLatencyMs: 25.123, transactions: 9998, failedTransactions: 2 });
  });
});
