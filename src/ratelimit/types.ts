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
}

export type AdmitResult =
  | { readonly allowed: true; readonly reservation: Reservation; readonly states: readonly CheckState[] }
  | {
      readonly allowed: false;
      /** Index in the checks of the first limit that refused. */
      readonly denied: number;
      /** When retrying can succeed; -1 when the cost exceeds the limit itself (never). */
      readonly retryAfterMs: number;
      readonly states: readonly CheckState[];
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
   * Reserves `tokens` more for an admitted request (a stream that outgrew its reservation). Only the
   * token checks are consulted. On success `reservation.tokens` grows.
   */
  extend(reservation: Reservation, tokens: number, nowMs: number): Promise<AdmitResult>;
  /** Corrects a reservation's tokens by `delta` (real usage minus reserved; negative releases). */
  adjust(reservation: Reservation, delta: number, nowMs: number): Promise<void>;
  /** `normal` or `degraded` (Redis unreachable). */
  readonly mode: 'normal' | 'degraded';
  close(): Promise<void>;
}
