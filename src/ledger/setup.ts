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

/** `leading`: the status Lease holder flag (Kubernetes mode with a Lease), else undefined. */
export function startLedger(settings: LimitSettings, logger: Logger, store: ConfigStore, leading?: () => boolean): LedgerRuntime | undefined {
  if (!settings.ledgerUrl || !settings.redisUrl) return undefined;
  const log = logger.child({ component: 'ledger' });
  const pool = new pg.Pool({ connectionString: settings.ledgerUrl, max: 4, connectionTimeoutMillis: 5000 });
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
  const writer = new LedgerWriter({ pool, redis, prefix: settings.redisPrefix, logger: log, election, currency: () => store.current()?.currency ?? 'USD' });
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
