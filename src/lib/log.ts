import pino, { type Logger } from 'pino';

/** The process's root logger: JSON lines, with anything that could hold a secret redacted. */
export function createLogger(level: string, pretty = false, destination?: pino.DestinationStream): Logger {
  if (pretty && destination === undefined) {
    destination = pino.transport({ target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:standard' } }) as pino.DestinationStream;
  }
  return pino(
    {
      name: 'pgproxy',
      level,
      redact: { paths: ['password', '*.password', 'secret', '*.secret', 'query_password', '*.query_password', 'users[*].password', 'auth.users[*].password'], censor: '***' },
    },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}
