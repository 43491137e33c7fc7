/** `npm run bench` command-line options, and which workloads, sections and targets they select. */
import { WORKLOADS, type Workload } from './pgbench.js';
import { KEY_WORKLOADS } from './stats.js';
import { TARGET_IDS, type TargetId } from './targets/target.js';

export const SECTIONS = ['classify', 'distribution', 'ryw-cost', 'memory', 'dbbound'] as const;
export type Section = (typeof SECTIONS)[number];

/**
 * INSERTs per session (100 sessions, the seeds' test) in the distribution run and in ryw-cost's INSERT load:
 * 100,000 rows take about 30-60 s per target on 2 cores.
 */
export const DEFAULT_INSERTS = 1_000;
export const DEFAULT_DURATION_S = 8;
/** Rounds of the key workloads (the others run once). */
export const DEFAULT_ROUNDS = 5;
/** Database-bound mode: each PostgreSQL server's CPU cap, in cores. */
export const DEFAULT_DB_CPU = 0.3;
/** Database-bound mode: interleaved rounds of its workloads. */
export const DEFAULT_DB_ROUNDS = 3;
/** Database-bound mode: clients per node taking reads (pgbench clients, or pairs in the mixed workload). */
export const DEFAULT_DB_CLIENTS = 8;
/** What --quick sets, unless given explicitly too. */
export const QUICK = { durationS: 3, rounds: 3, inserts: 100, dbRounds: 2 } as const;

export interface Options {
  durationS: number;
  /** Rounds of each key workload (KEY_WORKLOADS); every other workload runs once. */
  rounds: number;
  /** --quick: the key workloads only, shorter runs, fewer rounds and INSERTs; results outside bench/results. */
  quick: boolean;
  /** --profile: one extra `-S -M simple -c 16` run through a pgproxy under `node --cpu-prof`. */
  profile: boolean;
  /** Where latest.md and latest.svg go; null: bench/results (a --quick run: a directory under the OS temp dir). */
  outDir: string | null;
  only: string[] | null;
  skip: Set<string>;
  inserts: number;
  noInstall: boolean;
  keep: boolean;
  /** Database-bound mode: CPU cap per server (cores), rounds, clients per read node. */
  dbCpu: number;
  dbRounds: number;
  dbClients: number;
}

export const USAGE = `usage: npm run bench -- [options]

  --duration S       seconds per pgbench run (default ${DEFAULT_DURATION_S})
  --rounds N         interleaved rounds of the key workloads (default ${DEFAULT_ROUNDS}): each round runs every
                     target once, in an order rotated per round; judged on the median, spread shown.
                     Key workloads: ${KEY_WORKLOADS.join(', ')}; the others run once. Also the rounds
                     of the ryw-cost section (read_your_writes off / session / database).
  --quick            a reduced run: the key workloads only, --duration ${QUICK.durationS} --rounds ${QUICK.rounds} --inserts ${QUICK.inserts}
                     (explicit options win); writes its report under the OS temp dir unless --out is given,
                     never over bench/results/latest.md
  --profile          also run \`-S -M simple -c 16\` once through a separate pgproxy under node --cpu-prof and print
                     the top self-time frames (function, source file:line, share, µs per transaction)
  --out DIR          write latest.md and latest.svg to DIR (default bench/results)
  --only a,b         run only these names:
                       workloads  ${WORKLOADS.map((w) => w.name).join(', ')}
                                  (a prefix such as select-simple picks several)
                       sections   ${SECTIONS.join(', ')}
                       targets    ${TARGET_IDS.join(', ')}
  --skip a,b         skip these (same names)
  --inserts N        INSERTs per session (100 sessions) in the distribution run and in ryw-cost's INSERT load
                     (default ${DEFAULT_INSERTS})
  --db-cpu C         database-bound mode (section dbbound): each PostgreSQL server capped at C cores through
                     the cgroup cpu controller (default ${DEFAULT_DB_CPU}; 0.1 to 64)
  --db-rounds N      interleaved rounds of the database-bound workloads (default ${DEFAULT_DB_ROUNDS}; --quick ${QUICK.dbRounds})
  --db-clients N     database-bound clients per node taking reads (default ${DEFAULT_DB_CLIENTS}): a target with
                     2 read nodes gets 2N pgbench clients (N pairs per node in the mixed workload)
  --no-install       do not apt-get install pgpool2 / pgbouncer when missing
  --keep             keep the temporary directory (cluster, configs, logs) for inspection
`;

const matchesWorkload = (token: string, w: Workload): boolean => token === w.name || w.name.startsWith(`${token}-`);

/** Options, or the text to print: USAGE for --help, else an error message followed by USAGE. */
export function parseArgs(argv: string[]): Options | string {
  const o: Options = {
    durationS: DEFAULT_DURATION_S,
    rounds: DEFAULT_ROUNDS,
    quick: false,
    profile: false,
    outDir: null,
    only: null,
    skip: new Set(),
    inserts: DEFAULT_INSERTS,
    noInstall: false,
    keep: false,
    dbCpu: DEFAULT_DB_CPU,
    dbRounds: DEFAULT_DB_ROUNDS,
    dbClients: DEFAULT_DB_CLIENTS,
  };
  /** Options given explicitly: --quick does not override them. */
  const given = new Set<string>();
  const names: string[] = [...WORKLOADS.map((w) => w.name), ...SECTIONS, ...TARGET_IDS];
  const list = (v: string | undefined, flag: string): string[] => {
    if (!v) throw new Error(`${flag} needs a comma-separated list`);
    const items = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const i of items) {
      if (!names.includes(i) && !WORKLOADS.some((w) => matchesWorkload(i, w))) throw new Error(`${flag}: unknown name "${i}" (known: ${names.join(', ')})`);
    }
    return items;
  };
  const whole = (v: string | undefined, flag: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} needs a whole number from ${min} to ${max}`);
    return n;
  };
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      const eq = a.startsWith('--') ? a.indexOf('=') : -1;
      const flag = eq > 0 ? a.slice(0, eq) : a;
      const value = (): string | undefined => (eq > 0 ? a.slice(eq + 1) : argv[++i]);
      given.add(flag);
      switch (flag) {
        case '--duration':
          o.durationS = whole(value(), flag, 1, 3600);
          break;
        case '--rounds':
          o.rounds = whole(value(), flag, 1, 100);
          break;
        case '--quick':
          o.quick = true;
          break;
        case '--profile':
          o.profile = true;
          break;
        case '--out': {
          const v = value();
          if (!v) throw new Error('--out needs a directory');
          o.outDir = v;
          break;
        }
        case '--inserts':
          o.inserts = whole(value(), flag, 1, 100_000);
          break;
        case '--only':
          o.only = list(value(), flag);
          break;
        case '--skip':
          for (const s of list(value(), flag)) o.skip.add(s);
          break;
        case '--db-cpu': {
          const n = Number(value());
          if (!Number.isFinite(n) || n < 0.1 || n > 64) throw new Error('--db-cpu needs a number of cores from 0.1 to 64');
          o.dbCpu = n;
          break;
        }
        case '--db-rounds':
          o.dbRounds = whole(value(), flag, 1, 100);
          break;
        case '--db-clients':
          o.dbClients = whole(value(), flag, 1, 64);
          break;
        case '--no-install':
          o.noInstall = true;
          break;
        case '--keep':
          o.keep = true;
          break;
        case '-h':
        case '--help':
          return USAGE;
        default:
          throw new Error(`unknown option ${a}`);
      }
    }
  } catch (err) {
    return `${(err as Error).message}\n\n${USAGE}`;
  }
  if (o.quick) {
    if (!given.has('--duration')) o.durationS = QUICK.durationS;
    if (!given.has('--rounds')) o.rounds = QUICK.rounds;
    if (!given.has('--inserts')) o.inserts = QUICK.inserts;
    if (!given.has('--db-rounds')) o.dbRounds = QUICK.dbRounds;
  }
  return o;
}

export interface Selection {
  workload(w: Workload): boolean;
  section(s: Section): boolean;
  target(t: TargetId): boolean;
}

/**
 * --only names restrict their own kind: target names restrict targets, the other names restrict workloads and
 * sections (so `--only select-simple-c16,pgproxy` runs one workload on one target and no section). --quick
 * keeps to the key workloads unless --only names workloads itself.
 */
export function selection(o: Options): Selection {
  const isTarget = (s: string): boolean => (TARGET_IDS as readonly string[]).includes(s);
  const only = o.only ?? [];
  const onlyTargets = only.filter(isTarget);
  const onlyOthers = only.filter((s) => !isTarget(s));
  const namesWorkloads = onlyOthers.some((s) => WORKLOADS.some((w) => matchesWorkload(s, w)));
  return {
    workload: (w) =>
      ![...o.skip].some((s) => matchesWorkload(s, w)) &&
      (onlyOthers.length === 0 || onlyOthers.some((s) => matchesWorkload(s, w))) &&
      (!o.quick || namesWorkloads || KEY_WORKLOADS.includes(w.name)),
    section: (s) => !o.skip.has(s) && (onlyOthers.length === 0 || onlyOthers.includes(s)),
    target: (t) => !o.skip.has(t) && (onlyTargets.length === 0 || onlyTargets.includes(t)),
  };
}
