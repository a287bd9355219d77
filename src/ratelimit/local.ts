/**
 * In-process limiter: the same sliding-window-counter and month-counter semantics as the Redis Lua
 * script (redis-script.ts), for a single replica without Redis and for degraded mode. State is one
 * small object per (scope, rule); idle entries are swept so memory is bounded by configured scopes.
 */
import { amountFor, NO_CAP, type AdmitResult, type Backend, type CheckState, type Cost, type LimitCheck, type Limiter, type Reservation, type Usage } from './types.js';

/** A rolling window: slot index -> amount, with the running sum and the lowest/highest slot present. */
export interface SlidingState {
  readonly slots: Map<number, number>;
  sum: number;
  lo: number;
  hi: number;
  /** Slots per window and slot length, for sweeping. */
  readonly n: number;
  readonly slotMs: number;
}

export interface CounterState {
  used: number;
  expiresAtMs: number;
}

type State = SlidingState | CounterState;

function isSliding(s: State): s is SlidingState {
  return (s as SlidingState).slots !== undefined;
}

/** Drops slots that left the window; returns the usage of the window ending at `nowMs`. */
export function slidingUsage(s: SlidingState, windowMs: number, slotMs: number, nowMs: number): number {
  const n = windowMs / slotMs;
  const cur = Math.floor(nowMs / slotMs);
  const floor = cur - n;
  if (s.slots.size === 0) return 0;
  if (s.hi < floor) {
    s.slots.clear();
    s.sum = 0;
    return 0;
  }
  for (let j = s.lo; j < floor; j++) {
    const v = s.slots.get(j);
    if (v !== undefined) {
      s.sum -= v;
      s.slots.delete(j);
    }
  }
  if (s.lo < floor) s.lo = floor;
  // Slots floor..cur cover every instant of the window (now - window, now]: counting the oldest slot
  // in full never under-counts, so no window ever holds more than the limit (at the price of up to
  // one slot of extra wait).
  return s.sum;
}

/** Time until enough usage leaves the window for `need` more units. */
export function slidingRetryAfter(s: SlidingState, windowMs: number, slotMs: number, nowMs: number, need: number): number {
  const n = windowMs / slotMs;
  const cur = Math.floor(nowMs / slotMs);
  let freed = 0;
  for (let j = cur - n; j <= cur; j++) {
    freed += s.slots.get(j) ?? 0;
    if (freed >= need) return Math.max(1, (j + n + 1) * slotMs - nowMs);
  }
  return windowMs;
}

export function slidingCharge(s: SlidingState, slotMs: number, nowMs: number, amount: number): number {
  const cur = Math.floor(nowMs / slotMs);
  if (s.slots.size === 0) s.lo = cur;
  s.slots.set(cur, (s.slots.get(cur) ?? 0) + amount);
  s.sum += amount;
  s.hi = cur;
  return cur;
}

/** Corrects a past charge in `slot` by `delta`; a positive delta for an expired slot goes to now. */
export function slidingAdjust(s: SlidingState, windowMs: number, slotMs: number, nowMs: number, slot: number, delta: number): void {
  slidingUsage(s, windowMs, slotMs, nowMs);
  const v = s.slots.get(slot);
  if (v !== undefined) {
    const next = Math.max(0, v + delta);
    s.slots.set(slot, next);
    s.sum += next - v;
  } else if (delta > 0) {
    slidingCharge(s, slotMs, nowMs, delta);
  }
}

function resetOf(check: LimitCheck, s: State | undefined, nowMs: number): number {
  if (check.windowMs === 0) return Math.max(0, check.resetAtMs - nowMs);
  if (!s || !isSliding(s) || s.slots.size === 0) return 0;
  const n = check.windowMs / check.slotMs;
  return Math.max(0, (s.hi + n + 1) * check.slotMs - nowMs);
}

export class LocalLimiter implements Limiter {
  readonly mode = 'normal' as const;
  private readonly states = new Map<string, State>();
  private readonly sweeper: NodeJS.Timeout;

  /**
   * @param divisor limits are divided by this (degraded mode: the replica count), never below 1.
   * @param backend the label written into reservations.
   */
  constructor(
    private readonly divisor = 1,
    private readonly backend: Backend = 'local',
  ) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), 60_000).unref();
  }

  private limitOf(check: LimitCheck): number {
    return this.divisor === 1 ? check.limit : Math.max(1, Math.floor(check.limit / this.divisor));
  }

  private state(check: LimitCheck, nowMs: number, create: boolean): State | undefined {
    let s = this.states.get(check.key);
    if (s && !isSliding(s) && s.expiresAtMs <= nowMs) {
      this.states.delete(check.key);
      s = undefined;
    }
    if (!s && create) {
      s = check.windowMs === 0 ? { used: 0, expiresAtMs: check.resetAtMs } : { slots: new Map(), sum: 0, lo: 0, hi: 0, n: check.windowMs / check.slotMs, slotMs: check.slotMs };
      this.states.set(check.key, s);
    }
    return s;
  }

  private usage(check: LimitCheck, s: State | undefined, nowMs: number): number {
    if (!s) return 0;
    return isSliding(s) ? slidingUsage(s, check.windowMs, check.slotMs, nowMs) : s.used;
  }

  admit(checks: readonly LimitCheck[], cost: Cost, nowMs: number): Promise<AdmitResult> {
    return Promise.resolve(this.admitSync(checks, cost, nowMs));
  }

  /** Synchronous core (the Redis script does the same in one EVALSHA, step for step). */
  admitSync(checks: readonly LimitCheck[], cost: Cost, nowMs: number): AdmitResult {
    const used: number[] = [];
    for (const check of checks) used.push(this.usage(check, this.state(check, nowMs, false), nowMs));
    let tokens = cost.tokens;
    let money = cost.cost ?? 0;
    let completion = 0;
    let cap = NO_CAP;
    const shrink = cost.shrink;
    if (shrink) {
      // Steps 1-3 of Shrink (types.ts): what still fits in every calendar budget.
      for (let i = 0; i < checks.length; i++) {
        const check = checks[i] as LimitCheck;
        if (check.windowMs !== 0 || check.unit === 'requests') continue;
        const fixed = check.unit === 'tokens' ? shrink.promptTokens : shrink.promptCost;
        const rate = check.unit === 'tokens' ? 1 : shrink.completionRate;
        const room = this.limitOf(check) - (used[i] ?? 0) - fixed;
        let allow: number;
        if (room < 0) allow = -1;
        else if (rate <= 0) allow = NO_CAP;
        else {
          allow = Math.floor(room / rate);
          if (allow > 0 && Math.ceil(allow * rate) > room) allow -= 1;
        }
        if (allow < cap) cap = allow;
      }
      completion = shrink.completionTokens;
      if (cap < completion) completion = cap >= shrink.minCompletion ? cap : Math.min(completion, shrink.minCompletion);
      tokens = shrink.promptTokens + completion;
      money = shrink.promptCost + Math.ceil(completion * shrink.completionRate);
    }
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i] as LimitCheck;
      const amount = amountFor(check.unit, cost.requests, tokens, money);
      const u = used[i] ?? 0;
      const limit = this.limitOf(check);
      if (amount > 0 && u + amount > limit) {
        const s = this.state(check, nowMs, false);
        let retryAfterMs: number;
        if (amount > limit) retryAfterMs = -1;
        else if (check.windowMs === 0) retryAfterMs = Math.max(1, check.resetAtMs - nowMs);
        else retryAfterMs = s && isSliding(s) ? slidingRetryAfter(s, check.windowMs, check.slotMs, nowMs, u + amount - limit) : check.windowMs;
        const states: CheckState[] = [];
        for (let j = 0; j <= i; j++) {
          const c = checks[j] as LimitCheck;
          states.push({ used: Math.ceil(used[j] ?? 0), resetMs: resetOf(c, this.state(c, nowMs, false), nowMs) });
        }
        return { allowed: false, denied: i, retryAfterMs, states, completion };
      }
    }
    const slots: number[] = [];
    const states: CheckState[] = [];
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i] as LimitCheck;
      const amount = amountFor(check.unit, cost.requests, tokens, money);
      const s = this.state(check, nowMs, true) as State;
      if (isSliding(s)) slots.push(amount > 0 ? slidingCharge(s, check.slotMs, nowMs, amount) : Math.floor(nowMs / check.slotMs));
      else {
        s.used += amount;
        slots.push(-1);
      }
      states.push({ used: Math.ceil((used[i] ?? 0) + amount), resetMs: resetOf(check, s, nowMs) });
    }
    return { allowed: true, reservation: { backend: this.backend, checks, slots, tokens, cost: money }, states, completion, cap };
  }

  async extend(reservation: Reservation, more: Usage, nowMs: number): Promise<AdmitResult> {
    // Only token and money checks; the extension is charged to the current slot. Later corrections
    // go to the admission slot (the window sum stays exact; only which second holds the tokens differs).
    const result = this.admitSync(reservation.checks.filter((c) => c.unit !== 'requests'), { requests: 0, tokens: more.tokens, cost: more.cost }, nowMs);
    if (result.allowed) {
      reservation.tokens += more.tokens;
      reservation.cost += more.cost;
    }
    return result;
  }

  adjust(reservation: Reservation, delta: Usage, nowMs: number): Promise<void> {
    this.adjustSync(reservation, delta, nowMs);
    return Promise.resolve();
  }

  adjustSync(reservation: Reservation, delta: Usage, nowMs: number): void {
    if (delta.tokens === 0 && delta.cost === 0) return;
    reservation.checks.forEach((check, i) => {
      if (check.unit === 'requests') return;
      const d = check.unit === 'tokens' ? delta.tokens : delta.cost;
      if (d === 0) return;
      const s = this.state(check, nowMs, d > 0);
      if (!s) return;
      if (isSliding(s)) slidingAdjust(s, check.windowMs, check.slotMs, nowMs, reservation.slots[i] ?? -1, d);
      else s.used = Math.max(0, s.used + d);
    });
    reservation.tokens += delta.tokens;
    reservation.cost += delta.cost;
  }

  /** Forgets windows that are empty or expired (bounded memory). */
  sweep(nowMs: number): void {
    for (const [key, s] of this.states) {
      if (isSliding(s) ? s.slots.size === 0 || (s.hi + s.n + 1) * s.slotMs <= nowMs : s.expiresAtMs <= nowMs) this.states.delete(key);
    }
  }

  /** Number of stored windows (tests). */
  get size(): number {
    return this.states.size;
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }
}
