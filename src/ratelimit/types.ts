/**
 * The limiter contract. One `admit` call checks and reserves every limit of a request atomically:
 * the key's, every ancestor's, the per-model ones and the provider model's. Two implementations
 * with the same semantics: Redis (one EVALSHA, shared by all replicas) and in-process (one replica).
 *
 * Algorithm (both implementations): rolling windows are sliding-window counters with sub-slots
 * (minute: 60 slots of 1 s, day: 144 slots of 10 min). The usage of a window is the sum of the
 * slots that overlap it (the oldest counted in full), so it never under-counts: no rolling window
 * ever holds more than the limit, and a refused client waits at most one slot longer. A request is
 * admitted only if usage + cost <= limit for every check, and then charged to the current slot of
 * every check. Months are calendar months in the scope's time zone: a plain counter per month.
 */
import type { LimitName, LimitUnit } from '../config/limits.js';

/** Which budget holder a check belongs to, relative to the request. */
export type ScopeKind = 'key' | 'ancestor' | 'provider';

/** One limit to enforce for one request, already resolved to a storage key. */
export interface LimitCheck {
  /** Storage key (without the backend's prefix). Unique per scope, rule and (for months) month. */
  readonly key: string;
  readonly name: LimitName;
  readonly unit: LimitUnit;
  readonly limit: number;
  /** Rolling window length, or 0 for a calendar-month counter. */
  readonly windowMs: number;
  /** Sub-slot length of a rolling window. */
  readonly slotMs: number;
  /** Calendar months: epoch ms when the month ends (the counter resets). */
  readonly resetAtMs: number;
  readonly scope: ScopeKind;
  /** `namespace/name` of the ApiKey/account, or the provider scope id. */
  readonly scopeId: string;
}

/** What one request costs. */
export interface Cost {
  readonly requests: number;
  readonly tokens: number;
  /** Money, in micro-units of the gateway currency (checks of unit `cost`). Default 0. */
  readonly cost?: number;
  /**
   * Edge of a budget: lets calendar budgets (month, calendar day; tokens or money) shrink the
   * completion part instead of refusing (see `Shrink`). With it, `tokens` and `cost` are ignored:
   * the amounts come from the shrink fields.
   */
  readonly shrink?: Shrink;
}

/**
 * The parts of a request's reservation, so a budget near its end can admit a shorter answer.
 * Both limiter implementations run the same steps (local.ts admitSync, redis-script.ts admit):
 *  1. For every calendar check (windowMs 0) of unit tokens or cost, the completion tokens that still
 *     fit after the prompt: floor((limit - used - prompt part) / rate), where the rate is 1 for
 *     tokens and `completionRate` micro-units per token for money (minus one token if rounding the
 *     money up would not fit). The smallest of these is the `cap` (NO_CAP when no such check).
 *  2. The completion reserved is `completionTokens`, or the cap when it is smaller and at least
 *     `minCompletion` (a useful answer). Below the minimum the request asks for
 *     min(completionTokens, minCompletion): the smallest useful answer, which does not fit, so it
 *     is refused (and the refusal names that smallest amount).
 *  3. Amounts: tokens = promptTokens + completion, cost = promptCost + ceil(completion x rate);
 *     then every check is tested and charged as usual.
 */
export interface Shrink {
  readonly promptTokens: number;
  /** Micro-units (rounded up) of the prompt at the admission price. */
  readonly promptCost: number;
  /** The completion the gateway would reserve (estimate, capped by max_tokens). */
  readonly completionTokens: number;
  /** Smallest answer worth admitting; below it the request is refused. */
  readonly minCompletion: number;
  /** Micro-units per completion token (a double), 0 when the model has no price. */
  readonly completionRate: number;
}

/** `cap` when no calendar budget limits the completion. */
export const NO_CAP = Number.MAX_SAFE_INTEGER;

/** Amount a check is charged for a cost. */
export function amountFor(unit: LimitCheck['unit'], requests: number, tokens: number, cost: number): number {
  return unit === 'requests' ? requests : unit === 'tokens' ? tokens : cost;
}

/** Tokens and money (micro-units) of a reservation change. */
export interface Usage {
  readonly tokens: number;
  readonly cost: number;
}

/** State of one check after the call (for x-ratelimit-* headers). */
export interface CheckState {
  readonly used: number;
  /** Time until the window is back to empty (rolling) or the month ends. */
  readonly resetMs: number;
}

/** Where a reservation lives, so its corrections go to the same place. */
export type Backend = 'redis' | 'local';

/** What was charged, kept until the request's real usage is known. */
export interface Reservation {
  readonly backend: Backend;
  readonly checks: readonly LimitCheck[];
  /** Slot index (rolling) charged for each check, or -1 for month counters. */
  readonly slots: readonly number[];
  /** Tokens charged so far (admission + extensions). */
  tokens: number;
  /** Money charged so far, micro-units. */
  cost: number;
}

export type AdmitResult =
  | {
      readonly allowed: true;
      readonly reservation: Reservation;
      readonly states: readonly CheckState[];
      /** Completion tokens reserved (shrink only: may be less than asked). */
      readonly completion: number;
      /** Completion tokens that fit in every calendar budget (NO_CAP when none applies). */
      readonly cap: number;
    }
  | {
      readonly allowed: false;
      /** Index in the checks of the first limit that refused. */
      readonly denied: number;
      /** When retrying can succeed; -1 when the cost exceeds the limit itself (never). */
      readonly retryAfterMs: number;
      readonly states: readonly CheckState[];
      /** Completion tokens the refused amounts were computed with (shrink). */
      readonly completion: number;
    };

/** Refusal because the limiter cannot decide (Redis down and the policy is fail-closed). */
export class LimiterUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LimiterUnavailableError';
  }
}

export interface Limiter {
  /** Checks every limit and, if all allow, charges `cost` to all of them atomically. */
  admit(checks: readonly LimitCheck[], cost: Cost, nowMs: number): Promise<AdmitResult>;
  /**
   * Reserves `more` tokens and money for an admitted request (a stream that outgrew its
   * reservation). Only the token and money checks are consulted. On success the reservation grows.
   */
  extend(reservation: Reservation, more: Usage, nowMs: number): Promise<AdmitResult>;
  /** Corrects a reservation by `delta` (real usage minus reserved; negative releases). */
  adjust(reservation: Reservation, delta: Usage, nowMs: number): Promise<void>;
  /** `normal` or `degraded` (Redis unreachable). */
  readonly mode: 'normal' | 'degraded';
  close(): Promise<void>;
}
