/**
 * Provider choice with failover. The request stage opens a plan; Envoy's retry policy then sends
 * the request into the attempt stage once per attempt, and each attempt asks `next()` where to go:
 *
 * 1. the lowest priority tier that still has an available target not tried by this request,
 *    balanced with the configured strategy (or the external endpoint picker, with fallback);
 * 2. when every available target was tried, the least-tried one again, after an exponential
 *    backoff with full jitter;
 * 3. when nothing is available (every target ejected or resting), the least recently failed target
 *    that may still take a request as a last resort (not resting after a 429 with Retry-After,
 *    within its `probeBudgetPerSecond`, not hard-open): an outage of the only provider of a model
 *    does not turn into a cool-down of refusals once the provider is back;
 * 4. when not even that, a 503 with Retry-After.
 *
 * Availability comes from the HealthTracker (circuit breaker, Retry-After resting), per target: a
 * model at a provider (or at one discovered endpoint), see targetId() in plan.ts.
 */
import { randomUUID } from 'node:crypto';
import type { ModelRoute, ResilienceConfig, RouteTier } from '../config/snapshot.js';
import { gatewayError, type GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { failoversTotal, upstreamAttemptsTotal } from '../observability/metrics.js';
import type { RequestBody } from '../pipeline/request-body.js';
import { upstreamFor } from '../providers/front-doors.js';
import type { Operation } from '../providers/types.js';
import { backoffMs, pickTarget } from './balancer.js';
import type { AttemptResult, FinalErrorClass, HealthTracker } from './health.js';
import { PlanRegistry, targetId, targetOf, type AttemptRecord, type Candidate, type RequestPlan } from './plan.js';

/** Ready endpoints of Services (EndpointSlice discovery). */
export interface EndpointSource {
  /** `ip:port` of the ready endpoints of a Service port; empty when none or unknown. */
  endpoints(namespace: string, service: string, port: number): readonly string[];
}

/** An external endpoint picker (see protos/tollgate/picker/v1/picker.proto). */
export interface EndpointPicker {
  /** Resolves the chosen candidate id, or undefined to fall back to the built-in choice. */
  pick(plan: RequestPlan, candidates: readonly Candidate[], view: HealthTracker): Promise<string | undefined>;
}

export interface AttemptChoice {
  readonly plan: RequestPlan;
  readonly attempt: AttemptRecord;
  /** Wait before sending (backoff between attempts to the same target). */
  readonly backoffMs: number;
}

export interface RouterDeps {
  readonly health: HealthTracker;
  readonly logger: Logger;
  readonly endpoints?: EndpointSource;
  /** The picker for a configured address (the caller caches clients). */
  readonly picker?: (address: string, timeoutMs: number) => EndpointPicker;
  readonly now?: () => number;
  readonly random?: () => number;
}

const MAX_TURN_KEYS = 10_000;

/**
 * Target ids of routes (they live as long as their snapshot): one string per route, not one per
 * request, so the health maps hash it once.
 */
const ROUTE_IDS = new WeakMap<ModelRoute, string>();
function routeTargetId(route: ModelRoute): string {
  let id = ROUTE_IDS.get(route);
  if (id === undefined) {
    id = targetId(route.provider.name, route.upstreamModel);
    ROUTE_IDS.set(route, id);
  }
  return id;
}
const NOTHING_TRIED: ReadonlyMap<string, number> = new Map();

export class ResilientRouter {
  readonly plans: PlanRegistry;
  private readonly turns = new Map<string, number>();
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly deps: RouterDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.plans = new PlanRegistry(this.now);
  }

  get health(): HealthTracker {
    return this.deps.health;
  }

  /** Request stage: registers the plan of a request, or refuses when nothing can serve it now. */
  open(input: {
    readonly requestId: string;
    readonly model: string;
    readonly operation: Operation;
    readonly body: RequestBody;
    readonly tiers: readonly RouteTier[];
    readonly config: ResilienceConfig;
  }): RequestPlan | GatewayError {
    const all = input.tiers.flatMap((t) => this.candidatesOf(t));
    if (all.length === 0) {
      return gatewayError('provider_unavailable', `No ready endpoint serves the model '${input.model}' right now.`, { 'retry-after': '1' });
    }
    if (!all.some((c) => this.deps.health.isAvailable(c.id)) && !this.lastResort(all, input.config)) {
      return this.unavailable(input.model, all, input.config, input.requestId);
    }
    // A translated provider's response is translated by the attempt stage: never direct.
    const sole = (all[0] as Candidate).route;
    const direct = all.length === 1 && upstreamFor(input.operation, sole.provider.type, sole.upstreamModel).kind === 'passthrough' && sole.reasoningTags === undefined;
    const plan: RequestPlan = {
      id: randomUUID(),
      requestId: input.requestId,
      model: input.model,
      operation: input.operation,
      body: input.body,
      tiers: input.tiers,
      config: input.config,
      createdMs: this.now(),
      attempts: [],
      winner: undefined,
      direct,
      ...(direct ? { sole: all[0] } : {}),
    };
    this.plans.put(plan);
    return plan;
  }

  /** Attempt stage: where this attempt goes. Asynchronous only when an external picker is asked. */
  next(plan: RequestPlan): AttemptChoice | GatewayError | Promise<AttemptChoice | GatewayError> {
    const tried = new Map<string, number>();
    for (const a of plan.attempts) tried.set(a.candidate.id, (tried.get(a.candidate.id) ?? 0) + 1);
    let pool: Candidate[] = [];
    let fallback: Candidate[] = [];
    const everything: Candidate[] = [];
    for (const tier of plan.tiers) {
      const available = this.candidatesOf(tier).filter((c) => {
        everything.push(c);
        return this.deps.health.isAvailable(c.id);
      });
      const untried = available.filter((c) => !tried.has(c.id));
      if (untried.length > 0) {
        pool = untried;
        break;
      }
      if (fallback.length === 0 && available.length > 0) fallback = available;
    }
    if (pool.length === 0 && fallback.length > 0) {
      const least = Math.min(...fallback.map((c) => tried.get(c.id) ?? 0));
      pool = fallback.filter((c) => (tried.get(c.id) ?? 0) === least);
    }
    if (pool.length === 0) {
      const last = this.lastResort(everything, plan.config);
      if (!last) return this.unavailable(plan.model, everything, plan.config, plan.requestId, plan.attempts.at(-1)?.result);
      return this.begin(plan, [last], last, tried, true);
    }
    const picker = plan.config.endpointPicker && this.deps.picker && pool.length > 1
      ? this.deps.picker(plan.config.endpointPicker.address, plan.config.endpointPicker.timeoutMs)
      : undefined;
    if (!picker) return this.begin(plan, pool, this.builtIn(plan, pool), tried);
    return picker.pick(plan, pool, this.deps.health).then(
      (id) => {
        const chosen = id === undefined ? undefined : pool.find((c) => c.id === id);
        if (!chosen) this.deps.logger.info({ decision: 'picker-fallback', requestId: plan.requestId, picked: id }, 'routing decision');
        return this.begin(plan, pool, chosen ?? this.builtIn(plan, pool), tried);
      },
      () => this.begin(plan, pool, this.builtIn(plan, pool), tried),
    );
  }

  /**
   * A direct plan's one attempt (RequestPlan.direct): its only target, which open() found available
   * or allowed as a last resort. Envoy retries it on the same target; no further choice is made.
   */
  beginDirect(plan: RequestPlan): AttemptChoice {
    const sole = plan.sole;
    if (!plan.direct || !sole) throw new Error('beginDirect on a plan with several targets');
    return this.begin(plan, [sole], sole, NOTHING_TRIED, !this.deps.health.isAvailable(sole.id));
  }

  /** The attempt's outcome is known (its response headers, or a failure before them). */
  result(plan: RequestPlan, attempt: AttemptRecord, result: AttemptResult): void {
    if (attempt.result) return;
    attempt.result = result;
    upstreamAttemptsTotal.inc({ provider: attempt.candidate.route.provider.name, model: attempt.candidate.route.upstreamModel, result: result.ok ? 'success' : result.reason });
    this.deps.health.onAttemptResult(attempt.candidate.id, result, plan.config, plan.requestId);
    if (result.ok) plan.winner = attempt.candidate;
  }

  /**
   * A direct request's tries that Envoy retried on its target before `attempt`'s final try (whose
   * result is recorded next): health counts each of them.
   */
  retried(plan: RequestPlan, attempt: AttemptRecord, count: number, finalOk: boolean): void {
    // Envoy never makes more than maxAttempts tries; a bigger count is not Envoy's and is capped.
    const tries = Math.min(count, plan.config.maxAttempts - 1);
    if (tries > 0) this.deps.health.onRetriedTries(attempt.candidate.id, tries, finalOk, plan.config, plan.requestId);
  }

  /**
   * After a failed attempt: when it was the last one allowed and there was more than one, the one
   * error the client gets (a summary of every attempt, no provider names or addresses). Undefined
   * while attempts remain, and for a single attempt (its own error goes through unchanged).
   */
  exhausted(plan: RequestPlan, attempt: AttemptRecord, final?: FinalErrorClass): GatewayError | undefined {
    if (attempt.result?.ok !== false || attempt.number < plan.config.maxAttempts || attempt.number < 2) return undefined;
    if (final) return this.passOn(plan, plan.attempts.length, final);
    const statuses = plan.attempts.map((a) => (a.result && !a.result.ok ? (a.result.status ?? a.result.reason) : 'no answer'));
    return this.summary(plan, plan.attempts.length, `HTTP ${statuses.join(', ')}`);
  }

  /**
   * A direct request (one target, see RequestPlan.direct) after Envoy retried it: the one error the
   * client gets when every attempt failed. Only the last attempt's status is known here.
   */
  exhaustedDirect(plan: RequestPlan, attempts: number, lastStatus: number, final?: FinalErrorClass): GatewayError | undefined {
    if (attempts < 2) return undefined;
    if (final) return this.passOn(plan, attempts, final);
    return this.summary(plan, attempts, `last: HTTP ${lastStatus}`);
  }

  /**
   * Seconds until some target of the plan may take a request again (cool-down or rest after a 429),
   * for a `retry-after` the provider did not give; undefined when one is available now.
   */
  retryAfterSeconds(plan: RequestPlan): number | undefined {
    const waitMs = this.waitMs(plan.tiers.flatMap((t) => this.candidatesOf(t)), plan.config);
    return waitMs > 0 ? Math.ceil(waitMs / 1000) : undefined;
  }

  /** The last attempt was throttled or overloaded: its own error goes to the client (no summary). */
  private passOn(plan: RequestPlan, attempts: number, final: FinalErrorClass): undefined {
    this.deps.logger.warn({ decision: 'exhausted', requestId: plan.requestId, attempts, final }, 'routing decision');
    return undefined;
  }

  private summary(plan: RequestPlan, attempts: number, statuses: string): GatewayError {
    const waitMs = this.waitMs(plan.tiers.flatMap((t) => this.candidatesOf(t)), plan.config);
    const message = `All ${attempts} upstream attempts for the model '${plan.model}' failed (${statuses}). Retry later.`;
    this.deps.logger.warn({ decision: 'exhausted', requestId: plan.requestId, attempts, statuses }, 'routing decision');
    return waitMs > 0
      ? gatewayError('provider_unavailable', message, { 'retry-after': String(Math.ceil(waitMs / 1000)) })
      : gatewayError('provider_unavailable', message);
  }

  /** The attempt's HTTP stream is over (finished, broke off, or abandoned before an answer). */
  end(attempt: AttemptRecord): void {
    this.deps.health.onAttemptEnd(attempt.candidate.id, { hadResponse: attempt.result !== undefined });
  }

  /** Request stage: the response went downstream; no more attempts will come. */
  settle(plan: RequestPlan): void {
    plan.body = undefined;
  }

  close(planId: string): void {
    this.plans.delete(planId);
  }

  private begin(plan: RequestPlan, pool: readonly Candidate[], chosen: Candidate, tried: ReadonlyMap<string, number>, lastResort = false): AttemptChoice {
    const previous = plan.attempts.at(-1);
    const number = plan.attempts.length + 1;
    const retriesOfTarget = tried.get(chosen.id) ?? 0;
    const wait = retriesOfTarget > 0 ? backoffMs(retriesOfTarget, plan.config.backoffBaseMs, plan.config.backoffMaxMs, this.random) : 0;
    if (previous) {
      const reason = previous.result ? (previous.result.ok ? 'unknown' : previous.result.reason) : 'no_response';
      failoversTotal.inc({ provider: previous.candidate.route.provider.name, model: previous.candidate.route.upstreamModel, reason });
      this.deps.logger.info(
        {
          decision: 'failover',
          requestId: plan.requestId,
          attempt: number,
          from: previous.candidate.id,
          to: chosen.id,
          reason,
          status: previous.result && !previous.result.ok ? previous.result.status : undefined,
          backoffMs: wait,
          candidates: pool.length,
        },
        'routing decision',
      );
    }
    const attempt: AttemptRecord = { number, candidate: chosen, result: undefined };
    plan.attempts.push(attempt);
    if (lastResort) this.deps.health.takeLastResort(chosen.id, plan.config, plan.requestId);
    this.deps.health.onAttemptStart(targetOf(chosen), plan.requestId);
    return { plan, attempt, backoffMs: wait };
  }

  private builtIn(plan: RequestPlan, pool: readonly Candidate[]): Candidate {
    const turn = this.turns.get(plan.model) ?? 0;
    if (this.turns.size >= MAX_TURN_KEYS && !this.turns.has(plan.model)) this.turns.clear();
    this.turns.set(plan.model, turn + 1);
    return pickTarget({ candidates: pool, strategy: plan.config.strategy, view: (id) => this.deps.health.view(id), turn, random: this.random });
  }

  /** Targets of a tier: each provider, or each ready endpoint of a discovered Service. */
  private candidatesOf(tier: RouteTier): Candidate[] {
    const out: Candidate[] = [];
    for (const route of tier.routes) {
      const svc = route.provider.service;
      if (!svc) {
        out.push({ id: routeTargetId(route), route, weight: route.provider.weight, address: undefined });
        continue;
      }
      const addresses = this.deps.endpoints?.endpoints(svc.namespace, svc.name, svc.port) ?? [];
      for (const address of addresses) {
        out.push({ id: targetId(`${route.provider.name}@${address}`, route.upstreamModel), route, weight: route.provider.weight / addresses.length, address });
      }
    }
    return out;
  }

  /**
   * Nothing available: the least recently failed target that may still take a request as a last
   * resort (HealthTracker.lastResortWaitMs), or undefined.
   */
  private lastResort(all: readonly Candidate[], config: ResilienceConfig): Candidate | undefined {
    let best: Candidate | undefined;
    let bestFailedMs = Number.POSITIVE_INFINITY;
    for (const c of all) {
      if (this.deps.health.lastResortWaitMs(c.id, config) > 0) continue;
      const failedMs = this.deps.health.lastFailureMs(c.id);
      if (failedMs < bestFailedMs) {
        best = c;
        bestFailedMs = failedMs;
      }
    }
    return best;
  }

  /** Milliseconds until some target of `all` may take a request again (available or last resort). */
  private waitMs(all: readonly Candidate[], config: ResilienceConfig): number {
    let best = Number.POSITIVE_INFINITY;
    for (const c of all) {
      best = Math.min(best, this.deps.health.isAvailable(c.id) ? 0 : this.deps.health.lastResortWaitMs(c.id, config));
      if (best === 0) return 0;
    }
    return Number.isFinite(best) ? best : 0;
  }

  private unavailable(model: string, all: readonly Candidate[], config: ResilienceConfig, requestId: string, previous?: AttemptResult): GatewayError {
    const retryAfter = String(Math.max(1, Math.ceil(this.waitMs(all, config) / 1000)));
    this.deps.logger.warn({ decision: 'no-candidate', requestId, model, targets: all.map((c) => c.id), retryAfterSeconds: Number(retryAfter) }, 'routing decision');
    // This request's last attempt was throttled and every target now rests: a throttle, not an outage
    // (429 like the provider's own, so clients back off as they would against it).
    if (previous && !previous.ok && previous.status === 429) {
      return gatewayError('provider_rate_limited', `Every provider of the model '${model}' is rate limiting this gateway; retry after ${retryAfter} s.`, { 'retry-after': retryAfter });
    }
    return gatewayError(
      'provider_unavailable',
      `Every provider of the model '${model}' is cooling down after failures or asked to wait (Retry-After); retry after ${retryAfter} s.`,
      { 'retry-after': retryAfter },
    );
  }
}
