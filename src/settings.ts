/** Process settings from the command line and environment (flags win). */
import { parseArgs } from 'node:util';

export interface Settings {
  /** Directory of config files (file mode). */
  readonly configDir: string;
  /** ext_proc gRPC address: `unix:/path` or `host:port`. */
  readonly extprocAddress: string;
  readonly adminHost: string;
  readonly adminPort: number;
  /** Time given to open streams on shutdown. */
  readonly shutdownGraceMs: number;
}

const env = process.env;

/** Reads settings; throws with a readable message on bad values. */
export function readSettings(argv: readonly string[]): Settings {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'config-dir': { type: 'string' },
      'extproc-address': { type: 'string' },
      'admin-host': { type: 'string' },
      'admin-port': { type: 'string' },
      'shutdown-grace-seconds': { type: 'string' },
    },
    strict: true,
  });
  const configDir = values['config-dir'] ?? env['TOLLGATE_CONFIG_DIR'];
  if (!configDir) throw new Error('--config-dir (or TOLLGATE_CONFIG_DIR) is required');
  return {
    configDir,
    extprocAddress: values['extproc-address'] ?? env['TOLLGATE_EXTPROC_ADDRESS'] ?? '127.0.0.1:9002',
    adminHost: values['admin-host'] ?? env['TOLLGATE_ADMIN_HOST'] ?? '0.0.0.0',
    adminPort: toInt('admin-port', values['admin-port'] ?? env['TOLLGATE_ADMIN_PORT'] ?? '9090'),
    shutdownGraceMs: 1000 * toInt('shutdown-grace-seconds', values['shutdown-grace-seconds'] ?? env['TOLLGATE_SHUTDOWN_GRACE_SECONDS'] ?? '30'),
  };
}

function toInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${text}"`);
  return n;
}
