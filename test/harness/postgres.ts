/**
 * A real PostgreSQL server for tests (Debian's `postgresql` package): its own temp dir made by
 * initdb, a random free port on 127.0.0.1, trust authentication for the user `tollgate`, and
 * kill/restart on the same port with the same data (a database outage). A missing installation
 * fails loudly.
 *
 * initdb and postgres refuse to run as root: as root, the server runs as the `postgres` system user
 * the Debian package creates (child_process uid/gid; the temp dir is handed to that user), so
 * `npm test` works in root containers too. As any other user it runs as that user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, waitFor } from '../../src/dev/local-stack.js';
import { realClockEnv } from '../../src/dev/real-clock.js';

export interface PostgresServer {
  readonly port: number;
  /** `postgres://tollgate@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly dir: string;
  /** A pool for assertions (reconnects by itself after restarts). */
  readonly pool: pg.Pool;
  /** SIGKILLs the server (as a crash or an outage would). */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The directory with initdb and postgres: the newest /usr/lib/postgresql/<v>/bin, else PATH. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const found = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) throw new Error('PostgreSQL is not installed: install the Debian package postgresql (test/run.sh does it)');
  return path.slice(0, path.lastIndexOf('/'));
}

/** uid/gid to run the server as: ourselves, or the `postgres` system user when we are root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) {
    throw new Error('running as root and there is no `postgres` user to run PostgreSQL as (install the Debian package postgresql, which creates it)');
  }
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = binDir();
  const user = runAs();
  const dir = await mkdtemp(join(tmpdir(), 'tg-pg-'));
  if (user) await chown(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const env = { ...realClockEnv(), LC_ALL: 'C' };
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'tollgate', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
    encoding: 'utf8',
    env,
    ...(user ?? {}),
  });
  if (init.status !== 0) {
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const proc = spawn(
      join(bin, 'postgres'),
      // fsync off: a test database, killed with SIGKILL at most (the OS keeps what was written).
      ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'max_connections=50'],
      { stdio: ['ignore', 'ignore', 'pipe'], env, ...(user ?? {}) },
    );
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    child = proc;
    await waitFor('postgres to accept connections', async () => {
      if (proc.exitCode !== null) throw new Error(`postgres exited: ${stderr}`);
      const probe = new pg.Client({ host: '127.0.0.1', port, user: 'tollgate', database: 'postgres', connectionTimeoutMillis: 1000 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await probe.end().catch(() => undefined);
      }
    });
  };
  const kill = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
    // The postmaster's children notice it is gone and exit; wait until the port is free again.
    await waitFor('postgres children to exit', async () => {
      const probe = new pg.Client({ host: '127.0.0.1', port, user: 'tollgate', database: 'postgres', connectionTimeoutMillis: 500 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.end();
        return false;
      } catch {
        return true;
      }
    });
  };
  try {
    await launch();
  } catch (err) {
    await kill().catch(() => undefined);
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    throw err;
  }
  const url = `postgres://tollgate@127.0.0.1:${port}/postgres`;
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return {
    port,
    url,
    dir,
    pool,
    kill,
    restart: launch,
    stop: async () => {
      await pool.end().catch(() => undefined);
      await kill();
      await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}
