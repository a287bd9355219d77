/**
 * A real redis-server for tests: random free port, its own temp dir, append-only file with fsync on
 * every write (so a SIGKILL loses nothing that was acknowledged), and kill/restart on the same port.
 * A missing redis-server fails loudly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitFor } from '../../src/dev/local-stack.js';
import { realClockEnv } from '../../src/dev/real-clock.js';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** A plain client for assertions (reconnects by itself after restarts). */
  readonly client: Redis;
  /** SIGKILLs the server (as a crash would). */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function binary(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) {
    throw new Error('redis-server is not installed: install the Debian package redis-server (test/run.sh does it)');
  }
  return path;
}

export async function startRedis(): Promise<RedisServer> {
  const bin = binary();
  const dir = await mkdtemp(join(tmpdir(), 'tg-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const proc = spawn(
      bin,
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no', '--daemonize', 'no'],
      // Redis keeps the real clock when the tests run under faketime (it hangs under libfaketime,
      // and a gateway whose clock disagrees with Redis's is a case the limiter must handle).
      { stdio: 'ignore', env: realClockEnv() },
    );
    child = proc;
    await waitFor('redis-server to answer PING', async () => {
      if (proc.exitCode !== null) throw new Error('redis-server exited');
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } finally {
        probe.disconnect();
      }
    });
  };
  const kill = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  await launch();
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => undefined);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client,
    kill,
    restart: launch,
    stop: async () => {
      client.disconnect();
      await kill();
      await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}
