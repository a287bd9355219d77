/**
 * Builds the limits step from settings: Redis limiter (with degraded mode) and Redis usage sink
 * when a Redis URL is set, else the in-process limiter and in-memory usage totals.
 */
import type { Logger } from '../observability/logger.js';
import { limiterMode } from '../observability/metrics.js';
import { LimitsStep } from '../pipeline/limits.js';
import type { LimitSettings } from '../settings.js';
import { MemoryUsageSink, UsageAccountant, type UsageSink } from '../usage/accountant.js';
import { RedisUsageSink } from '../usage/redis-sink.js';
import { warmEncoders } from './estimate.js';
import { LocalLimiter } from './local.js';
import { createRedisClient, whenReady, type RedisClient } from './redis.js';
import { ResilientLimiter } from './resilient.js';
import type { Limiter } from './types.js';

export interface LimitsRuntime {
  readonly step: LimitsStep;
  readonly limiter: Limiter;
  readonly accountant: UsageAccountant;
  /** Flushes usage (SIGTERM) and closes connections. */
  close(): Promise<void>;
}

export async function createLimits(settings: LimitSettings, logger: Logger): Promise<LimitsRuntime> {
  const log = logger.child({ component: 'limits' });
  const warmStart = Date.now();
  warmEncoders();
  log.debug({ ms: Date.now() - warmStart }, 'token encoders loaded');
  let client: RedisClient | undefined;
  let limiter: Limiter;
  let sink: UsageSink;
  if (settings.redisUrl) {
    client = createRedisClient({
      url: settings.redisUrl,
      mode: settings.redisMode,
      ...(settings.redisSentinelName ? { sentinelName: settings.redisSentinelName } : {}),
      sentinels: settings.redisSentinels,
      commandTimeoutMs: settings.redisTimeoutMs,
      prefix: settings.redisPrefix,
    });
    if (!(await whenReady(client, 3000))) log.warn('redis not reachable at startup; starting in degraded mode');
    limiter = new ResilientLimiter({ client, prefix: settings.redisPrefix, policy: settings.failurePolicy, replicas: settings.replicas, logger: log });
    sink = new RedisUsageSink(client, settings.redisPrefix);
    log.info({ mode: settings.redisMode, policy: settings.failurePolicy, replicas: settings.replicas }, 'limits shared through redis');
  } else {
    limiter = new LocalLimiter();
    limiterMode.set({ mode: 'normal', backend: 'local' }, 1);
    sink = new MemoryUsageSink();
    log.info('no redis configured: in-process limiter and usage totals (single replica)');
  }
  const accountant = new UsageAccountant({
    sink,
    logger: log,
    intervalMs: settings.usageFlushMs,
    maxRecords: settings.usageFlushRecords,
  });
  accountant.start();
  const step = new LimitsStep({ limiter, usage: accountant, logger: log, streamUsage: settings.streamUsage });
  return {
    step,
    limiter,
    accountant,
    close: async () => {
      await accountant.stop();
      await limiter.close();
      if (client) await client.quit().catch(() => client?.disconnect());
    },
  };
}
