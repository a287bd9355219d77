/**
 * The one pino logger. Credentials are redacted by path as a second line of defence: the code never
 * logs them on purpose, and prompts and completions are never logged at all.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'authorization',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["api-key"]',
  'req.headers.authorization',
  'apiKey',
  'credential',
  'key',
];

/** Creates the process logger; level from TOLLGATE_LOG_LEVEL (default info). */
export function createLogger(name = 'tollgate', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level: process.env['TOLLGATE_LOG_LEVEL'] ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, destination ?? stdoutDestination());
}

/**
 * Stdout, written asynchronously in batches: one access-log line per request made a write syscall
 * per request, the largest single item in the ext_proc CPU profile (docs/benchmarks.md). Lines wait
 * at most 100 ms; pino flushes synchronously on exit.
 */
function stdoutDestination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100 });
}
