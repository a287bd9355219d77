/**
 * Builds the limits step from settings: Redis limiter (with degraded mode) and Redis usage sink
 * when a Redis URL is set, else the in-process limiter and in-memory usage totals. Token encoders
 * (tiktoken) are built only when the config has a token limit (see warmEncodersFor).
 */
import type { TiktokenEncoding } from 'tiktoken';
import type { Snapshot } from '../config/snapshot.js';
import type { ConfigStore } from '../config/store.js';
import type { Logger } from '../observability/logger.js';
import { limiterMode } from '../observability/metrics.js';
import { LimitsStep } from '../pipeline/limits.js';
import type { LimitSettings } from '../settings.js';
import { MemoryUsageSink, UsageAccountant, type UsageSink } from '../usage/accountant.js';
import { RedisUsageSink } from '../usage/redis-sink.js';
import { watchUnpricedModels } from '../billing/unpriced.js';
import { encoderReady, encodingFor, warmEncoders } from './estimate.js';
import { LocalLimiter } from './local.js';
import { createRedisClient, whenReady, type RedisClient } from './redis.js';
import { ResilientLimiter } from './resilient.js';
import type { Limiter } from './types.js';

export interface LimitsRuntime {
  readonly step: LimitsStep;
  readonly limiter: Limiter;
  readonly accountant: UsageAccountant;
  /** The Redis client when limits are shared through Redis (other shared state may use it). */
  readonly redis: RedisClient | undefined;
  /** Flushes usage (SIGTERM) and closes connections. */
  close(): Promise<void>;
}

/**
 * The tiktoken encodings a snapshot's token-limited requests will need (those of its served
 * models), or none when no key has a token limit.
 */
export function encodingsNeeded(snapshot: Snapshot): TiktokenEncoding[] {
  let limited = false;
  for (const key of snapshot.keysByHash.values()) {
    if (key.hasTokenLimits) {
      limited = true;
      break;
    }
  }
  if (!limited) return [];
  return [...new Set(snapshot.servedModels.map(encodingFor))];
}

/**
 * Builds the encodings the config needs: now for the config in force (before the gateway serves),
 * and after every config change that needs one more (on the next turn of the event loop, which it
 * then holds for the build: ~0.15-0.25 s per encoding once, up to ~1 s on a loaded machine; see
 * ratelimit/estimate.ts). A config without token limits never loads tiktoken. Returns the
 * unsubscribe function.
 */
export function warmEncodersFor(store: ConfigStore, log: Logger): () => void {
  const warm = (): void => {
    const snapshot = store.current();
    const missing = snapshot ? encodingsNeeded(snapshot).filter((e) => !encoderReady(e)) : [];
    if (missing.length === 0) return;
    const started = performance.now();
    warmEncoders(missing);
    log.info({ encodings: missing, ms: Math.round(performance.now() - started) }, 'token encoders loaded');
  };
  warm();
  return store.onSwap(() => setImmediate(warm));
}

export async function createLimits(settings: LimitSettings, logger: Logger, store: ConfigStore): Promise<LimitsRuntime> {
  const log = logger.child({ component: 'limits' });
  const stopWarming = warmEncodersFor(store, log);
  const stopUnpriced = watchUnpricedModels(store, logger.child({ component: 'billing' }));
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
    // With a ledger the stream is bounded and a full stream is counted; without, it is a ring nobody reads.
    sink = new RedisUsageSink(
      client,
      settings.redisPrefix,
      settings.ledgerUrl ? { maxBatches: settings.ledgerBacklogMaxBatches, logger: logger.child({ component: 'ledger' }) } : undefined,
    );
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
    redis: client,
    close: async () => {
      stopWarming();
      stopUnpriced();
      await accountant.stop();
      await limiter.close();
      if (client) await client.quit().catch(() => client?.disconnect());
    },
  };
}
