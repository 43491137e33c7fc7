import pino, { type Logger } from 'pino';

/** The process's root logger: JSON lines, with anything that could hold a secret redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name: 'pgproxy',
      level,
      redact: { paths: ['password', '*.password', 'secret', '*.secret', 'users[*].password', 'auth.users[*].password'], censor: '***' },
    },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}
