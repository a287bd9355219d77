/**
 * Starts the usage ledger when --ledger-url is set: a PostgreSQL pool, a Redis connection of its own
 * (stream reads carry whole batches; the limiter's connection keeps its short command timeout), the
 * writer election (the status Lease in Kubernetes mode, else a Redis lock) and the writer.
 */
import pg from 'pg';
import type { ConfigStore } from '../config/store.js';
import type { Logger } from '../observability/logger.js';
import { createRedisClient, type RedisClient } from '../ratelimit/redis.js';
import type { LimitSettings } from '../settings.js';
import { LeaseElection, RedisLockElection } from './election.js';
import { LedgerWriter } from './writer.js';

export interface LedgerRuntime {
  readonly pool: pg.Pool;
  readonly writer: LedgerWriter;
  close(): Promise<void>;
}

/**
 * The ledger's connection pool (writer and reports). JIT is off for its sessions: report queries
 * run for milliseconds to a few seconds, and JIT compilation cost more than it saved (about 270 ms
 * of an 820 ms account-subtree query over 10M rows, bench/ledger-reports.ts).
 */
export function ledgerPoolConfig(url: string): pg.PoolConfig {
  return { connectionString: url, max: 4, connectionTimeoutMillis: 5000, options: '-c jit=off' };
}

/** `leading`: the status Lease holder flag (Kubernetes mode with a Lease), else undefined. */
export function startLedger(settings: LimitSettings, logger: Logger, store: ConfigStore, leading?: () => boolean): LedgerRuntime | undefined {
  if (!settings.ledgerUrl || !settings.redisUrl) return undefined;
  const log = logger.child({ component: 'ledger' });
  const pool = new pg.Pool(ledgerPoolConfig(settings.ledgerUrl));
  // An idle client that loses its connection emits here; the next query reports the failure.
  pool.on('error', (err) => log.warn({ err: err.message }, 'ledger connection lost'));
  const redis: RedisClient = createRedisClient({
    url: settings.redisUrl,
    mode: settings.redisMode,
    ...(settings.redisSentinelName ? { sentinelName: settings.redisSentinelName } : {}),
    sentinels: settings.redisSentinels,
    commandTimeoutMs: 10_000,
    prefix: settings.redisPrefix,
  });
  const election = leading ? new LeaseElection(leading) : new RedisLockElection(redis, settings.redisPrefix);
  // Test hook (docs/billing.md "Tests"): SIGKILL this process right after a COMMIT, before XACK.
  const sigkillAfterCommit = process.env['TOLLGATE_TEST_LEDGER_SIGKILL_AFTER_COMMIT'] === '1';
  if (sigkillAfterCommit) log.warn('TEST HOOK TOLLGATE_TEST_LEDGER_SIGKILL_AFTER_COMMIT is set: this process kills itself after its first ledger COMMIT');
  const writer = new LedgerWriter({
    pool, redis, prefix: settings.redisPrefix, logger: log, election, currency: () => store.current()?.currency ?? 'USD',
    backlogBound: settings.ledgerBacklogMaxBatches,
    ...(sigkillAfterCommit ? { faultAfterCommit: 'sigkill' as const } : {}),
  });
  writer.start();
  log.info({ election: leading ? 'lease' : 'redis-lock' }, 'usage ledger enabled (PostgreSQL)');
  return {
    pool,
    writer,
    close: async () => {
      await writer.stop();
      await pool.end().catch(() => undefined);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
