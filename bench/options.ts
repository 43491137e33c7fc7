/** `npm run bench` command-line options, and which workloads, sections and targets they select. */
import { WORKLOADS, type Workload } from './pgbench.js';
import { TARGET_IDS, type TargetId } from './targets/target.js';

export const SECTIONS = ['classify', 'distribution', 'memory'] as const;
export type Section = (typeof SECTIONS)[number];

/** INSERTs per session in the distribution run (100 sessions): 100,000 rows take about 20-30 s per target on 2 cores. */
export const DEFAULT_INSERTS = 1000;
export const DEFAULT_DURATION_S = 10;

export interface Options {
  durationS: number;
  only: string[] | null;
  skip: Set<string>;
  inserts: number;
  noInstall: boolean;
  keep: boolean;
}

export const USAGE = `usage: npm run bench -- [options]

  --duration S       seconds per pgbench run (default ${DEFAULT_DURATION_S})
  --only a,b         run only these names:
                       workloads  ${WORKLOADS.map((w) => w.name).join(', ')}
                                  (a prefix such as select-simple picks several)
                       sections   ${SECTIONS.join(', ')}
                       targets    ${TARGET_IDS.join(', ')}
  --skip a,b         skip these (same names)
  --inserts N        INSERTs per session in the distribution run (default ${DEFAULT_INSERTS}, 100 sessions)
  --no-install       do not apt-get install pgpool2 / pgbouncer when missing
  --keep             keep the temporary directory (cluster, configs, logs) for inspection
`;

const matchesWorkload = (token: string, w: Workload): boolean => token === w.name || w.name.startsWith(`${token}-`);

/** Options, or the text to print: USAGE for --help, else an error message followed by USAGE. */
export function parseArgs(argv: string[]): Options | string {
  const o: Options = { durationS: DEFAULT_DURATION_S, only: null, skip: new Set(), inserts: DEFAULT_INSERTS, noInstall: false, keep: false };
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
      switch (flag) {
        case '--duration':
          o.durationS = whole(value(), flag, 1, 3600);
          break;
        case '--inserts':
          o.inserts = whole(value(), flag, 1, 100_000);
          break;
        case '--only':
          o.only = list(value(), flag);
          break;
        case '--skip':
          for (const s of list(value(), flag)) o.skip.add(s);
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
  return o;
}

export interface Selection {
  workload(w: Workload): boolean;
  section(s: Section): boolean;
  target(t: TargetId): boolean;
}

/**
 * --only names restrict their own kind: target names restrict targets, the other names restrict workloads and
 * sections (so `--only select-simple-c16,pgproxy` runs one workload on one target and no section).
 */
export function selection(o: Options): Selection {
  const isTarget = (s: string): boolean => (TARGET_IDS as readonly string[]).includes(s);
  const only = o.only ?? [];
  const onlyTargets = only.filter(isTarget);
  const onlyOthers = only.filter((s) => !isTarget(s));
  return {
    workload: (w) => ![...o.skip].some((s) => matchesWorkload(s, w)) && (onlyOthers.length === 0 || onlyOthers.some((s) => matchesWorkload(s, w))),
    section: (s) => !o.skip.has(s) && (onlyOthers.length === 0 || onlyOthers.includes(s)),
    target: (t) => !o.skip.has(t) && (onlyTargets.length === 0 || onlyTargets.includes(t)),
  };
}
