/**
 * Health of upstream targets, in this replica's memory: circuit breaker (consecutive failures ->
 * open for a cool-down -> one half-open probe -> closed again), Retry-After resting, outstanding
 * attempts and an EWMA of time to first byte. Fed by the attempt stage from each attempt's response
 * headers and end. A target is one model at one provider, (provider, upstream model), or at one
 * discovered endpoint of a provider: one model failing or rate-limited says nothing about the
 * provider's other models, so it takes only its own target out.
 *
 * A target that is out can still take a request as a *last resort* when nothing else can serve the
 * model (see lastResortWaitMs): at most `probeBudgetPerSecond` of them, never while it rests after a
 * 429 with Retry-After, and never when the budget is 0 (hard-open).
 *
 * Connection-level failures (connect refused or timed out, TLS, DNS, a reset before any byte, as
 * Envoy's access log reports them) say the *host* (the provider, or one discovered endpoint) is
 * unreachable for every model: `consecutiveFailures` of them in a row, on any of its models, take
 * the host out for a cool-down (doubling while it keeps failing); any answer from it (a success or
 * an error status other than 503, which may be Envoy's own) brings it back.
 *
 * Every state change is a decision: logged with its reason and counted in metrics, labelled with
 * the target's provider and upstream model (bounded by config; endpoints are not labels; a whole
 * host's decisions have model="*").
 */
import type { ResilienceConfig } from '../config/snapshot.js';
import type { Logger } from '../observability/logger.js';
import { circuitOpenTargets, circuitTransitionsTotal, upstreamAttemptsTotal, upstreamOutstanding } from '../observability/metrics.js';

/** Why an attempt failed. */
/** `retried`: a try Envoy retried on the same target (direct path); its kind (5xx, reset, connect failure, timeout) is not reported. */
export type FailureReason = 'http_429' | 'http_5xx' | 'timeout' | 'reset' | 'broken_stream' | 'retried';

export type AttemptResult =
  | { readonly ok: true; readonly ttfbMs: number }
  | { readonly ok: false; readonly reason: FailureReason; readonly status?: number; readonly retryAfterMs?: number };

export type CircuitState = 'closed' | 'open' | 'half-open';

/** Which target an attempt goes to: its health key and the names that label its metrics. */
export interface TargetRef {
  /** Health key: see targetId() in plan.ts. */
  readonly id: string;
  /** Provider name (namespace/name). */
  readonly provider: string;
  /** The model as the provider knows it. */
  readonly model: string;
  /** The provider name, or `provider@ip:port` for a discovered endpoint: what connection failures count against. */
  readonly host: string;
}

/** Connection health of a host (a provider, or one discovered endpoint), shared by its targets. */
interface HostState {
  readonly id: string;
  readonly provider: string;
  /** Connection-level failures in a row (any answer resets it). */
  consecutive: number;
  /** Cool-downs in a row: each doubles the next. */
  trips: number;
  /** Out until then (0 = never out). */
  openUntilMs: number;
}

/** What the balancer may read about a target. */
export interface TargetView {
  readonly outstanding: number;
  /** EWMA of time to first byte in ms, undefined before the first sample. */
  readonly ewmaTtfbMs: number | undefined;
  /** EWMA of tokens per second of finished responses, undefined before the first sample. */
  readonly ewmaTokensPerSecond: number | undefined;
}

interface TargetState extends TargetView {
  readonly id: string;
  readonly provider: string;
  readonly model: string;
  readonly host: string;
  /** now() of the last failed attempt (0 = never): the least recently failed is the last resort. */
  lastFailureMs: number;
  /** Last-resort budget: a token bucket of `probeBudgetPerSecond`, refilled continuously. */
  probeTokens: number;
  probeRefilledMs: number;
  circuit: CircuitState;
  consecutiveFailures: number;
  /** 2xx responses in a row that broke off after their first byte (from the access log). */
  consecutiveBroken: number;
  /** Outcomes of the last attempts (true = failed), a ring of `failureWindow` entries. */
  recent: boolean[];
  recentNext: number;
  recentFailures: number;
  /** Failed probes in a row: each doubles the cool-down. */
  trips: number;
  openUntilMs: number;
  probeInFlight: boolean;
  restUntilMs: number;
  outstanding: number;
  ewmaTtfbMs: number | undefined;
  ewmaTokensPerSecond: number | undefined;
  lastUsedMs: number;
}

/** Smoothing of the EWMAs: weight of the newest sample. */
export const EWMA_ALPHA = 0.3;
const MAX_TARGETS = 10_000;
/** Hard-open, a target whose half-open probe is in flight: try again in this long. */
const HARD_OPEN_RETRY_MS = 1000;
const IDLE_EVICT_MS = 60 * 60_000;

export interface HealthDeps {
  readonly logger: Logger;
  readonly now?: () => number;
}

export class HealthTracker {
  private readonly targets = new Map<string, TargetState>();
  private readonly hosts = new Map<string, HostState>();
  private readonly now: () => number;

  constructor(private readonly deps: HealthDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Read-only view for balancing; unknown targets look idle and unmeasured. */
  view(id: string): TargetView {
    return this.targets.get(id) ?? IDLE;
  }

  circuit(id: string): CircuitState {
    return this.targets.get(id)?.circuit ?? 'closed';
  }

  /**
   * Whether a new attempt may go to the target now: closed and not resting, or open with its
   * cool-down over and no probe in flight (that attempt becomes the half-open probe).
   */
  isAvailable(id: string): boolean {
    const t = this.targets.get(id);
    if (!t) return this.hosts.size === 0 || (this.hosts.get(hostOf(id))?.openUntilMs ?? 0) <= this.now();
    const now = this.now();
    if (t.restUntilMs > now) return false;
    if (this.hosts.size !== 0 && (this.hosts.get(t.host)?.openUntilMs ?? 0) > now) return false;
    this.refreshRest(t, now);
    if (t.circuit === 'closed') return true;
    if (t.circuit === 'open') return now >= t.openUntilMs;
    return !t.probeInFlight;
  }

  /** Milliseconds until the earliest of `ids` may take traffic again (for Retry-After). */
  msUntilAvailable(ids: readonly string[]): number {
    const now = this.now();
    let best = Number.POSITIVE_INFINITY;
    for (const id of ids) {
      const t = this.targets.get(id);
      if (!t) {
        best = Math.min(best, Math.max(0, (this.hosts.get(hostOf(id))?.openUntilMs ?? 0) - now));
        continue;
      }
      const until = Math.max(t.restUntilMs, t.circuit === 'open' ? t.openUntilMs : 0, this.hosts.get(t.host)?.openUntilMs ?? 0);
      best = Math.min(best, Math.max(0, until - now));
    }
    return Number.isFinite(best) ? best : 0;
  }

  /** now() of the target's last failed attempt; 0 when it never failed (or is unknown). */
  lastFailureMs(id: string): number {
    return this.targets.get(id)?.lastFailureMs ?? 0;
  }

  /**
   * For a target that is out (isAvailable false): 0 when a client request may still be sent to it
   * now as a last resort, else the milliseconds until one may (or until it is back). Never while it
   * rests after a 429 with Retry-After (the provider asked for that wait); with a budget of 0
   * (hard-open) only when its cool-down is over; otherwise when a token of the per-target budget
   * `probeBudgetPerSecond` is left.
   */
  lastResortWaitMs(id: string, config: ResilienceConfig): number {
    const t = this.targets.get(id);
    const now = this.now();
    if (t && t.restUntilMs > now) return t.restUntilMs - now;
    const budget = config.probeBudgetPerSecond;
    // Hard-open: only the end of the cool-down (a second when its probe is in flight right now).
    if (budget <= 0) return this.msUntilAvailable([id]) || HARD_OPEN_RETRY_MS;
    if (!t) return 0;
    const tokens = this.refill(t, budget, now);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / budget);
  }

  /** Spends one token of the target's last-resort budget (the router checked lastResortWaitMs). */
  takeLastResort(id: string, config: ResilienceConfig, requestId: string): void {
    const t = this.targets.get(id);
    if (!t) return;
    t.probeTokens = this.refill(t, config.probeBudgetPerSecond, this.now()) - 1;
    this.decide(t, 'last-resort', { requestId, circuit: t.circuit, reason: 'no other target can serve the model' });
  }

  /** An attempt starts towards the target. */
  onAttemptStart(target: TargetRef, requestId: string): void {
    const t = this.state(target);
    t.outstanding++;
    upstreamOutstanding.inc({ provider: t.provider, model: t.model });
    t.lastUsedMs = this.now();
    if (t.circuit === 'open' && t.lastUsedMs >= t.openUntilMs) {
      t.circuit = 'half-open';
      this.decide(t, 'probe', { requestId, reason: 'cool-down over' });
    }
    if (t.circuit === 'half-open') t.probeInFlight = true;
  }

  /** The attempt's outcome is known (response headers, or a failure before them). */
  onAttemptResult(id: string, result: AttemptResult, config: ResilienceConfig, requestId: string): void {
    const t = this.targets.get(id);
    if (!t) return;
    const now = this.now();
    this.remember(t, !result.ok && !(result.reason === 'http_429' && (result.retryAfterMs ?? 0) > 0), config);
    if (!result.ok) t.lastFailureMs = now;
    // Any answer (even an error status) proves the host is reachable. A connection-level failure
    // also arrives here (Envoy's own 503) and resets nothing: it is counted from the access log.
    if (result.ok || !(result.status === 503 || result.status === undefined)) this.hostAnswered(t.host, requestId);
    if (result.ok) {
      t.ewmaTtfbMs = t.ewmaTtfbMs === undefined ? result.ttfbMs : t.ewmaTtfbMs + EWMA_ALPHA * (result.ttfbMs - t.ewmaTtfbMs);
      t.consecutiveFailures = 0;
      if (t.circuit !== 'closed') {
        const reason = t.circuit === 'open' ? 'last-resort attempt succeeded' : 'probe succeeded';
        this.setCircuit(t, 'closed');
        this.forget(t);
        t.trips = 0;
        t.probeInFlight = false;
        this.decide(t, 'returned', { requestId, reason });
      }
      return;
    }
    if (result.reason === 'http_429' && result.retryAfterMs !== undefined && result.retryAfterMs > 0) {
      const restMs = Math.min(result.retryAfterMs, config.maxRetryAfterMs);
      const wasResting = t.restUntilMs > now;
      t.restUntilMs = Math.max(t.restUntilMs, now + restMs);
      if (t.circuit === 'half-open') t.probeInFlight = false;
      if (!wasResting) {
        circuitOpenTargets.inc({ provider: t.provider, model: t.model });
        this.decide(t, 'rested', { requestId, reason: 'http_429 with Retry-After', restMs });
      }
      return;
    }
    this.recordFailure(t, result.reason, config, requestId);
  }

  /**
   * Tries of a direct request that Envoy retried on the same target before the final one (known
   * from the final response's try count). Call before onAttemptResult of the final try. Each is a
   * failure in the failure-rate window; when the final try failed too they also count towards
   * consecutive failures (as every try of a failover request does). When the final try succeeded
   * they do not eject by themselves: the target answered, and it was the only one.
   */
  onRetriedTries(id: string, count: number, finalOk: boolean, config: ResilienceConfig, requestId: string): void {
    const t = this.targets.get(id);
    if (!t || count <= 0) return;
    upstreamAttemptsTotal.inc({ provider: t.provider, model: t.model, result: 'retried' }, count);
    t.lastFailureMs = this.now();
    for (let i = 0; i < count; i++) {
      this.remember(t, true, config);
      if (!finalOk) this.recordFailure(t, 'retried', config, requestId);
    }
  }

  /** The attempt's stream is over; `hadResponse` is false when it ended before any answer. */
  onAttemptEnd(id: string, outcome: { readonly hadResponse: boolean }): void {
    const t = this.targets.get(id);
    if (!t) return;
    t.outstanding = Math.max(0, t.outstanding - 1);
    upstreamOutstanding.dec({ provider: t.provider, model: t.model });
    // A probe abandoned without any answer (client gone) proves nothing: let the next request probe.
    if (t.circuit === 'half-open' && t.probeInFlight && !outcome.hadResponse) t.probeInFlight = false;
  }

  /**
   * A response that had started broke off on the provider's side (from Envoy's access log of the
   * attempt): a failure of the target, counted like one before the first byte.
   */
  onBrokenStream(id: string, reason: string, config: ResilienceConfig): void {
    const t = this.targets.get(id);
    if (!t) return;
    t.consecutiveBroken++;
    t.lastFailureMs = this.now();
    this.deps.logger.info({ decision: 'stream-broken', target: id, provider: t.provider, model: t.model, reason, consecutiveBroken: t.consecutiveBroken }, 'routing decision');
    upstreamAttemptsTotal.inc({ provider: t.provider, model: t.model, result: 'broken_after_first_byte' });
    this.remember(t, true, config);
    // Its response headers were a success (which reset consecutiveFailures), so broken streams
    // have their own count, reset only by a stream that ended cleanly.
    if (t.consecutiveBroken >= config.consecutiveFailures) {
      t.consecutiveFailures = Math.max(t.consecutiveFailures, config.consecutiveFailures - 1);
      t.consecutiveBroken = 0;
      this.recordFailure(t, 'broken_stream', config, '-');
    } else if (config.failureRatePercent > 0) {
      this.recordFailure(t, 'broken_stream', config, '-');
    }
  }

  /**
   * An attempt (or direct request) to `id` failed at the connection level, before any response byte
   * (from Envoy's access log): counted against the target's host, for every model it serves.
   */
  onConnectionFailure(id: string, reason: string, config: ResilienceConfig): void {
    const t = this.targets.get(id);
    if (!t) return;
    const now = this.now();
    let h = this.hosts.get(t.host);
    if (!h) {
      if (this.hosts.size >= MAX_TARGETS) this.evictHosts(now);
      h = { id: t.host, provider: t.provider, consecutive: 0, trips: 0, openUntilMs: 0 };
      this.hosts.set(t.host, h);
    }
    h.consecutive++;
    if (h.openUntilMs > now || h.consecutive < config.consecutiveFailures) return;
    h.trips++;
    h.openUntilMs = now + cooldownFor(h.trips, config);
    circuitTransitionsTotal.inc({ provider: h.provider, model: '*', decision: 'host-ejected' });
    this.deps.logger.info(
      { decision: 'host-ejected', host: h.id, provider: h.provider, target: id, reason, consecutiveFailures: h.consecutive, cooldownMs: h.openUntilMs - now },
      'routing decision',
    );
  }

  /** A 2xx response that reached its end (from Envoy's access log of the attempt). */
  onCleanStream(id: string): void {
    const t = this.targets.get(id);
    if (t) t.consecutiveBroken = 0;
  }

  /** Feeds tokens per second of a finished response (when usage is known). */
  recordTokens(id: string, tokens: number, generationMs: number): void {
    const t = this.targets.get(id);
    if (t && generationMs > 0) this.recordThroughput(t, tokens, generationMs);
  }

  /** The host answered: its connection failures are forgiven, and a host that was out is back. */
  private hostAnswered(hostId: string, requestId: string): void {
    const h = this.hosts.get(hostId);
    if (!h || h.consecutive === 0) return;
    const wasOut = h.trips > 0;
    h.consecutive = 0;
    h.trips = 0;
    h.openUntilMs = 0;
    if (!wasOut) return;
    circuitTransitionsTotal.inc({ provider: h.provider, model: '*', decision: 'host-returned' });
    this.deps.logger.info({ decision: 'host-returned', host: h.id, provider: h.provider, requestId, reason: 'answered' }, 'routing decision');
  }

  private evictHosts(now: number): void {
    for (const [id, h] of this.hosts) if (h.openUntilMs <= now && h.trips === 0) this.hosts.delete(id);
    if (this.hosts.size >= MAX_TARGETS) this.hosts.clear();
  }

  /** Ends a rest whose time is up: logged once, and the open-targets gauge follows. */
  private refreshRest(t: TargetState, now: number): void {
    if (t.restUntilMs !== 0 && t.restUntilMs <= now) {
      t.restUntilMs = 0;
      circuitOpenTargets.dec({ provider: t.provider, model: t.model });
      this.decide(t, 'returned', { reason: 'Retry-After elapsed' });
    }
  }

  /** Tokens of the last-resort budget left at `now` (capacity: one second's worth). */
  private refill(t: TargetState, budget: number, now: number): number {
    t.probeTokens = Math.min(budget, t.probeTokens + (Math.max(0, now - t.probeRefilledMs) * budget) / 1000);
    t.probeRefilledMs = now;
    return t.probeTokens;
  }

  private recordThroughput(t: TargetState, tokens: number, ms: number): void {
    const tps = (1000 * tokens) / ms;
    t.ewmaTokensPerSecond = t.ewmaTokensPerSecond === undefined ? tps : t.ewmaTokensPerSecond + EWMA_ALPHA * (tps - t.ewmaTokensPerSecond);
  }

  private recordFailure(t: TargetState, reason: FailureReason, config: ResilienceConfig, requestId: string): void {
    const now = this.now();
    t.consecutiveFailures++;
    if (t.circuit === 'half-open') {
      t.trips++;
      t.probeInFlight = false;
      t.openUntilMs = now + cooldownFor(t.trips, config);
      this.setCircuit(t, 'open');
      this.decide(t, 'reopened', { requestId, reason, cooldownMs: t.openUntilMs - now });
      return;
    }
    if (t.circuit !== 'closed') return;
    const byCount = t.consecutiveFailures >= config.consecutiveFailures;
    const byRate =
      config.failureRatePercent > 0 &&
      t.recent.length >= config.failureMinRequests &&
      t.recentFailures * 100 >= config.failureRatePercent * t.recent.length;
    if (byCount || byRate) {
      t.trips = 1;
      t.openUntilMs = now + cooldownFor(t.trips, config);
      this.setCircuit(t, 'open');
      this.decide(t, 'ejected', {
        requestId,
        reason,
        rule: byCount ? 'consecutive_failures' : 'failure_rate',
        consecutiveFailures: t.consecutiveFailures,
        failureRatePercent: t.recent.length === 0 ? 0 : Math.round((100 * t.recentFailures) / t.recent.length),
        cooldownMs: t.openUntilMs - now,
      });
      this.forget(t);
    }
  }

  /** Records one outcome in the target's window (only when the failure-rate rule is on). */
  private remember(t: TargetState, failed: boolean, config: ResilienceConfig): void {
    if (config.failureRatePercent <= 0) return;
    const size = config.failureWindow;
    if (t.recent.length > size) this.forget(t); // the window shrank with a config change
    if (t.recent.length < size) {
      t.recent.push(failed);
    } else {
      const i = t.recentNext % t.recent.length;
      if (t.recent[i]) t.recentFailures--;
      t.recent[i] = failed;
    }
    t.recentNext = (t.recentNext + 1) % size;
    if (failed) t.recentFailures++;
  }

  private forget(t: TargetState): void {
    t.recent = [];
    t.recentNext = 0;
    t.recentFailures = 0;
  }

  private setCircuit(t: TargetState, next: CircuitState): void {
    const wasOut = t.circuit !== 'closed';
    const isOut = next !== 'closed';
    t.circuit = next;
    if (!wasOut && isOut) circuitOpenTargets.inc({ provider: t.provider, model: t.model });
    if (wasOut && !isOut) circuitOpenTargets.dec({ provider: t.provider, model: t.model });
  }

  private decide(t: TargetState, decision: string, fields: Record<string, unknown>): void {
    circuitTransitionsTotal.inc({ provider: t.provider, model: t.model, decision });
    this.deps.logger.info({ decision, target: t.id, provider: t.provider, model: t.model, ...fields }, 'routing decision');
  }

  private state({ id, provider, model, host }: TargetRef): TargetState {
    let t = this.targets.get(id);
    if (t) {
      this.refreshRest(t, this.now());
      return t;
    }
    if (this.targets.size >= MAX_TARGETS) this.evictIdle();
    t = {
      id,
      provider,
      model,
      host,
      lastFailureMs: 0,
      probeTokens: Number.POSITIVE_INFINITY,
      probeRefilledMs: this.now(),
      circuit: 'closed',
      consecutiveFailures: 0,
      consecutiveBroken: 0,
      recent: [],
      recentNext: 0,
      recentFailures: 0,
      trips: 0,
      openUntilMs: 0,
      probeInFlight: false,
      restUntilMs: 0,
      outstanding: 0,
      ewmaTtfbMs: undefined,
      ewmaTokensPerSecond: undefined,
      lastUsedMs: this.now(),
    };
    this.targets.set(id, t);
    return t;
  }

  /** Drops targets unused for an hour (endpoints that went away); keeps the map bounded. */
  private evictIdle(): void {
    const cutoff = this.now() - IDLE_EVICT_MS;
    for (const [id, t] of this.targets) {
      if (t.outstanding === 0 && t.lastUsedMs < cutoff && t.circuit === 'closed' && t.restUntilMs === 0) this.targets.delete(id);
    }
    if (this.targets.size >= MAX_TARGETS) {
      const oldest = this.targets.keys().next().value;
      if (oldest !== undefined) this.targets.delete(oldest);
    }
  }
}

/** The host part of a target id (`host#model`, see targetId() in plan.ts; hosts contain no `#`). */
function hostOf(id: string): string {
  const i = id.indexOf('#');
  return i === -1 ? id : id.slice(0, i);
}

const DELAY_SECONDS = /^\d+(\.\d+)?$/;
const IDLE: TargetView = Object.freeze({ outstanding: 0, ewmaTtfbMs: undefined, ewmaTokensPerSecond: undefined });

/** Cool-down after `trips` openings in a row: doubles each time, capped. */
export function cooldownFor(trips: number, config: ResilienceConfig): number {
  return Math.min(config.maxCooldownMs, config.cooldownMs * 2 ** Math.max(0, trips - 1));
}

/** Parses Retry-After (delay seconds or an HTTP date) into ms; undefined when absent or invalid. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const trimmed = value.trim();
  if (DELAY_SECONDS.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Maps an attempt's response status to its outcome for health and failover. */
/**
 * How a failed final answer should reach the client. `throttled` (429) and `overloaded` (Anthropic's
 * 529; Bedrock's ServiceUnavailableException 503 and ModelNotReadyException 429, told apart by
 * `x-amzn-errortype`) go through as the provider's own error in the client's API, so the client's
 * SDK retries them as it would against the provider; anything else after several attempts becomes
 * the gateway's one summary 503.
 */
export type FinalErrorClass = 'throttled' | 'overloaded';

export function finalErrorClass(status: number, errorType: string | undefined): FinalErrorClass | undefined {
  if (status === 529) return 'overloaded';
  if (errorType !== undefined && (errorType.startsWith('ServiceUnavailableException') || errorType.startsWith('ModelNotReadyException'))) return 'overloaded';
  if (status === 429) return 'throttled';
  return undefined;
}

export function classify(status: number, retryAfter: string | undefined, ttfbMs: number): AttemptResult {
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(retryAfter, Date.now());
    return retryAfterMs === undefined ? { ok: false, reason: 'http_429', status } : { ok: false, reason: 'http_429', status, retryAfterMs };
  }
  if (status === 504 || status === 408) return { ok: false, reason: 'timeout', status };
  if (status >= 500 || !Number.isFinite(status)) return { ok: false, reason: 'http_5xx', status };
  return { ok: true, ttfbMs };
}
