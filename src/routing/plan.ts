/**
 * State shared between the two ext_proc stages of one request: the request stage stores a plan
 * (the candidates, the parsed body, the attempts so far) under a random id it sends to the attempt
 * stage in a gateway-owned header (overwritten on the way in, removed before the provider), and each
 * attempt stage reads and updates it. Nothing secret travels in headers; the plan stays in memory.
 *
 * Bounded: a plan is removed when its request finishes; a TTL and a size cap are the safety net.
 */
import type { ModelRoute, ResilienceConfig, RouteTier } from '../config/snapshot.js';
import type { RequestBody } from '../pipeline/request-body.js';
import type { Operation } from '../providers/types.js';
import { routingPlans } from '../observability/metrics.js';
import type { AttemptResult, TargetRef } from './health.js';

/** Header carrying the plan id from the request stage to the attempt stage. */
export const PLAN_HEADER = 'x-tollgate-plan';

/** One place a request can go: a model at a provider, or at one discovered endpoint of it. */
export interface Candidate {
  /** Health key, see targetId(): `provider#upstreamModel`, or `provider@ip:port#upstreamModel`. */
  readonly id: string;
  readonly route: ModelRoute;
  readonly weight: number;
  /** `ip:port` replacing the provider endpoint's authority (discovered endpoints only). */
  readonly address: string | undefined;
}

/**
 * The health key of a model at a provider (`host` = the provider name) or at one discovered
 * endpoint of it (`host` = `provider@ip:port`): circuit, cool-down and Retry-After rest are kept per
 * (provider, upstream model), so one model failing never takes the provider's other models out.
 */
export function targetId(host: string, upstreamModel: string): string {
  return `${host}#${upstreamModel}`;
}

/** The target of a candidate, for the health tracker (id and metric labels). */
export function targetOf(c: Candidate): TargetRef {
  const provider = c.route.provider.name;
  return { id: c.id, provider, model: c.route.upstreamModel, host: c.address === undefined ? provider : `${provider}@${c.address}` };
}

export interface AttemptRecord {
  readonly number: number;
  readonly candidate: Candidate;
  result: AttemptResult | undefined;
}

export interface RequestPlan {
  readonly id: string;
  readonly requestId: string;
  readonly model: string;
  readonly operation: Operation;
  /** Dropped once a response went downstream (no more attempts can come). */
  body: RequestBody | undefined;
  readonly tiers: readonly RouteTier[];
  readonly config: ResilienceConfig;
  readonly createdMs: number;
  readonly attempts: AttemptRecord[];
  winner: Candidate | undefined;
  /**
   * The request can go to exactly one target: the request stage rewrites it itself and Envoy sends
   * it straight to the provider (retries, if any, go to the same target), without the attempt stage.
   */
  direct?: boolean;
  /** The one target of a direct plan. */
  sole?: Candidate;
}

const DEFAULT_TTL_MS = 30 * 60_000;
const DEFAULT_MAX_PLANS = 100_000;

export class PlanRegistry {
  private readonly plans = new Map<string, RequestPlan>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly ttlMs = DEFAULT_TTL_MS,
    private readonly maxPlans = DEFAULT_MAX_PLANS,
  ) {}

  get size(): number {
    return this.plans.size;
  }

  put(plan: RequestPlan): void {
    if (this.plans.size >= this.maxPlans) this.sweep();
    this.plans.set(plan.id, plan);
    routingPlans.set(this.plans.size);
  }

  get(id: string): RequestPlan | undefined {
    const plan = this.plans.get(id);
    if (plan && this.now() - plan.createdMs > this.ttlMs) {
      this.delete(id);
      return undefined;
    }
    return plan;
  }

  delete(id: string): void {
    this.plans.delete(id);
    routingPlans.set(this.plans.size);
  }

  /** Drops expired plans; if still full, the oldest (insertion order) go. */
  private sweep(): void {
    const cutoff = this.now() - this.ttlMs;
    for (const [id, plan] of this.plans) if (plan.createdMs < cutoff) this.plans.delete(id);
    while (this.plans.size >= this.maxPlans) {
      const oldest = this.plans.keys().next().value;
      if (oldest === undefined) break;
      this.plans.delete(oldest);
    }
  }
}
