/** pgproxy command line: start | demo | cluster | check | md5. */
import { ConfigError, loadConfigFile } from '../config/load.js';
import { createLogger } from '../lib/log.js';
import { startProxy, StartupError } from '../server.js';
import { md5PasswordHash } from '../wire/auth/md5.js';
import { makeScramVerifier } from '../wire/auth/scram.js';
import { staticSecretProblems } from '../pool/login-check.js';
import { isWorkerProcess, runPrimary, runWorker } from '../workers.js';
import { clusterCommand } from './cluster.js';
import { demoCommand } from './demo.js';

const USAGE = `usage: pgproxy <command> [options]

  start --config FILE     run the proxy with a configuration file (default ./pgproxy.yaml)
  demo [--port N] [--docker] [--image IMAGE]
                          start a primary + 2 standbys (local binaries, or containers with --docker)
                          and pgproxy in front of them (127.0.0.1:9999)
  cluster up|down|status  manage the dev cluster (see pgproxy cluster --help)
  check --config FILE     validate a configuration file and exit
  md5 USER PASSWORD       print the md5 hash to put in auth.users[].password
  scram PASSWORD          print a SCRAM-SHA-256 verifier for auth.users[].password
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'start': {
      const file = valueOf(args, '--config') ?? 'pgproxy.yaml';
      const config = loadConfigFile(file);
      const log = createLogger(config.log.level, config.log.pretty);
      if (isWorkerProcess()) return runWorker(file, log);
      if (config.workers > 1) return runPrimary(file, config, config.workers, log);
      const proxy = await startProxy(config, log, { configFile: file });
      process.on('SIGHUP', () => {
        proxy.reload().catch(() => {
          /* logged by reload(); the old configuration stays */
        });
      });
      // SIGTERM: transactions in flight may finish (shutdown.timeout_ms). SIGINT: the same, faster.
      process.once('SIGTERM', () => void proxy.shutdown(proxy.context.config.shutdown.timeout_ms));
      process.once('SIGINT', () => void proxy.shutdown(Math.min(2_000, proxy.context.config.shutdown.timeout_ms)));
      await proxy.stopped;
      log.flush();
      return 0;
    }
    case 'demo':
      return demoCommand(args, createLogger(process.env.PGPROXY_LOG_LEVEL ?? 'warn'));
    case 'cluster':
      return clusterCommand(args, createLogger(process.env.PGPROXY_LOG_LEVEL ?? 'info'));
    case 'check': {
      const file = valueOf(args, '--config') ?? 'pgproxy.yaml';
      const config = loadConfigFile(file);
      const problems = staticSecretProblems(config);
      if (problems.length > 0) {
        process.stderr.write(`${file}: ${problems.join('\n')}\n`);
        return 1;
      }
      process.stdout.write(`${file}: ok\n`);
      return 0;
    }
    case 'scram': {
      if (args.length !== 1) {
        process.stderr.write('usage: pgproxy scram PASSWORD\n');
        return 2;
      }
      process.stdout.write(makeScramVerifier(args[0]!) + '\n');
      return 0;
    }
    case 'md5': {
      if (args.length !== 2) {
        process.stderr.write('usage: pgproxy md5 USER PASSWORD\n');
        return 2;
      }
      process.stdout.write(md5PasswordHash(args[0]!, args[1]!) + '\n');
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`pgproxy: unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(flag + '='))?.slice(flag.length + 1);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`pgproxy: invalid configuration\n${err.message}\n`);
    else if (err instanceof StartupError) process.stderr.write(`pgproxy: cannot start\n${err.message}\n`);
    else process.stderr.write(`pgproxy: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
