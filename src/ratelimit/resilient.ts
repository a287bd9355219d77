/**
 * Degraded mode. Wraps the Redis limiter: when a Redis call fails the limiter switches to
 * `degraded` and follows the policy —
 *   - `open`:   a local per-replica limiter with every limit divided by the replica count;
 *   - `closed`: refuse with LimiterUnavailableError (the client gets 503 limiter_unavailable).
 * While degraded, requests do not wait on Redis at all; a probe (PING every `probeMs`) switches back
 * to `normal` as soon as Redis answers. Both transitions are logged and visible in
 * tollgate_limiter_mode. Reservations remember their backend, so a correction made after recovery
 * for a request admitted locally goes to the local limiter (and vice versa).
 */
import type { Logger } from '../observability/logger.js';
import { limiterMode } from '../observability/metrics.js';
import { LocalLimiter } from './local.js';
import { RedisLimiter, timed, type RedisClient } from './redis.js';
import { LimiterUnavailableError, type AdmitResult, type Cost, type LimitCheck, type Limiter, type Reservation, type Usage } from './types.js';

export type FailurePolicy = 'open' | 'closed';

export interface ResilientOptions {
  readonly client: RedisClient;
  readonly prefix: string;
  readonly policy: FailurePolicy;
  /** Replicas sharing the limits; local limits in degraded `open` mode are divided by it. */
  readonly replicas: number;
  readonly logger: Logger;
  readonly probeMs?: number;
}

export class ResilientLimiter implements Limiter {
  private current: 'normal' | 'degraded' = 'normal';
  private readonly redis: RedisLimiter;
  private readonly local: LocalLimiter;
  private probe: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: ResilientOptions) {
    this.redis = new RedisLimiter(options.client, options.prefix);
    this.local = new LocalLimiter(Math.max(1, options.replicas), 'local');
    this.setMetric();
    // A connection known dead: go degraded before a request finds out; back as soon as it is ready.
    options.client.on('close', () => this.degrade(new Error('redis connection closed')));
    options.client.on('ready', () => void this.tryRecover());
    if (options.client.status !== 'ready') this.degrade(new Error(`redis not connected (${options.client.status})`));
  }

  get mode(): 'normal' | 'degraded' {
    return this.current;
  }

  private setMetric(): void {
    limiterMode.set({ mode: 'normal', backend: 'redis' }, this.current === 'normal' ? 1 : 0);
    limiterMode.set({ mode: 'degraded', backend: 'redis' }, this.current === 'degraded' ? 1 : 0);
  }

  private degrade(err: unknown): void {
    if (this.current === 'degraded' || this.closed) return;
    this.current = 'degraded';
    this.setMetric();
    this.options.logger.warn(
      { err: err instanceof Error ? err.message : String(err), policy: this.options.policy, replicas: this.options.replicas },
      this.options.policy === 'open'
        ? 'redis unreachable: limiter degraded to local per-replica limits (limits / replicas)'
        : 'redis unreachable: limiter degraded, refusing limited requests with 503 (fail-closed)',
    );
    this.probe = setInterval(() => void this.tryRecover(), this.options.probeMs ?? 500);
    this.probe.unref();
  }

  private async tryRecover(): Promise<void> {
    try {
      await timed('ping', () => this.options.client.ping());
    } catch {
      return;
    }
    if (this.current !== 'degraded') return;
    this.current = 'normal';
    if (this.probe) clearInterval(this.probe);
    this.probe = undefined;
    this.setMetric();
    this.options.logger.info('redis reachable again: limiter back to normal (shared limits)');
  }

  private unavailable(): never {
    throw new LimiterUnavailableError('The rate limiter is unavailable; try again shortly.');
  }

  async admit(checks: readonly LimitCheck[], cost: Cost, nowMs: number): Promise<AdmitResult> {
    if (this.current === 'normal') {
      try {
        return await this.redis.admit(checks, cost, nowMs);
      } catch (err) {
        this.degrade(err);
      }
    }
    if (this.options.policy === 'closed') this.unavailable();
    return this.local.admit(checks, cost, nowMs);
  }

  async extend(reservation: Reservation, more: Usage, nowMs: number): Promise<AdmitResult> {
    if (reservation.backend === 'redis' && this.current === 'normal') {
      try {
        return await this.redis.extend(reservation, more, nowMs);
      } catch (err) {
        this.degrade(err);
      }
    }
    if (reservation.backend === 'redis' && this.options.policy === 'closed') this.unavailable();
    return this.local.extend(reservation, more, nowMs);
  }

  async adjust(reservation: Reservation, delta: Usage, nowMs: number): Promise<void> {
    if (reservation.backend === 'local') return this.local.adjust(reservation, delta, nowMs);
    if (this.current !== 'normal') {
      // Redis down: the correction is lost for the shared window (the usage record is not: it is
      // buffered by the usage accountant). Keep the local view honest meanwhile.
      reservation.tokens += delta.tokens;
      reservation.cost += delta.cost;
      return;
    }
    try {
      await this.redis.adjust(reservation, delta, nowMs);
    } catch (err) {
      this.degrade(err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probe) clearInterval(this.probe);
    await this.redis.close();
    await this.local.close();
  }
}
