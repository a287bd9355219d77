/**
 * Pure helpers between config and limiter: which checks a request must pass (key, every ancestor,
 * per-model entries, provider model), how a refusal reads, and the x-ratelimit-* headers.
 */
import type { LimitRule, LimitScope } from '../config/limits.js';
import { modelRules } from '../config/limits.js';
import type { KeyEntry, ModelRoute } from '../config/snapshot.js';
import { formatMicros } from '../billing/money.js';
import { gatewayError, type GatewayError } from '../errors.js';
import { daySpan, monthSpan } from './calendar.js';
import type { CheckState, LimitCheck, ScopeKind } from './types.js';

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
/** Sub-slot lengths: 60 slots per minute window, 144 per day window. */
export const MINUTE_SLOT_MS = 1_000;
export const DAY_SLOT_MS = 600_000;

function toCheck(rule: LimitRule, storageScope: string, scope: ScopeKind, scopeId: string, zone: string, nowMs: number): LimitCheck {
  const base = { name: rule.name, unit: rule.unit, limit: rule.limit, scope, scopeId };
  if (rule.window === 'minute') return { ...base, key: `${storageScope}|${rule.name}`, windowMs: MINUTE_MS, slotMs: MINUTE_SLOT_MS, resetAtMs: 0 };
  if (rule.window === 'day') return { ...base, key: `${storageScope}|${rule.name}`, windowMs: DAY_MS, slotMs: DAY_SLOT_MS, resetAtMs: 0 };
  const period = rule.window === 'month' ? monthSpan(nowMs, zone) : daySpan(nowMs, zone);
  return { ...base, key: `${storageScope}|${rule.name}|${period.id}`, windowMs: 0, slotMs: 0, resetAtMs: period.endMs };
}

function addScope(out: LimitCheck[], scope: LimitScope, kind: ScopeKind, model: string, nowMs: number): void {
  for (const rule of scope.rules) out.push(toCheck(rule, scope.id, kind, scope.id, scope.monthTimeZone, nowMs));
  const perModel = modelRules(scope, model);
  if (perModel) {
    for (const rule of perModel) out.push(toCheck(rule, `${scope.id}|model=${model}`, kind, scope.id, scope.monthTimeZone, nowMs));
  }
}

/** Every check of one request, the key's own first. */
export function buildChecks(key: KeyEntry, model: string, route: ModelRoute | undefined, nowMs: number): LimitCheck[] {
  const out: LimitCheck[] = [];
  key.limitScopes.forEach((scope, i) => addScope(out, scope, i === 0 ? 'key' : 'ancestor', model, nowMs));
  if (route) for (const rule of route.limits) out.push(toCheck(rule, route.limitScopeId, 'provider', route.limitScopeId, 'UTC', nowMs));
  return out;
}

/**
 * The checks of one MCP tool call: the tool-call rules of the key and of every ancestor (accounts
 * included), the key's own first, so siblings share their parents' budgets. Empty when none applies.
 */
export function toolCallChecks(key: KeyEntry, nowMs: number): LimitCheck[] {
  const out: LimitCheck[] = [];
  key.limitScopes.forEach((scope, i) => {
    for (const rule of scope.toolRules) out.push(toCheck(rule, scope.id, i === 0 ? 'key' : 'ancestor', scope.id, scope.monthTimeZone, nowMs));
  });
  return out;
}

/** Provider protection checks of one attempt's target. */
export function providerChecks(route: ModelRoute, nowMs: number): LimitCheck[] {
  return route.limits.map((rule) => toCheck(rule, route.limitScopeId, 'provider', route.limitScopeId, 'UTC', nowMs));
}

/** True when any check counts tokens or money (both need the tokens estimated and reconciled). */
export function hasTokenChecks(checks: readonly LimitCheck[]): boolean {
  return checks.some((c) => c.unit !== 'requests');
}

/** OpenAI's duration format for reset headers: `20ms`, `1s`, `6m0s`, `1h2m3s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  let s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * x-ratelimit-{limit,remaining,reset}-{requests,tokens}: for each unit, the check with the least
 * remaining (the one that will refuse first). Only checks with a known state are considered.
 */
export function rateLimitHeaders(checks: readonly LimitCheck[], states: readonly CheckState[], out: Record<string, string> = {}): Record<string, string> {
  for (const unit of ['requests', 'tokens'] as const) {
    let best = -1;
    let bestRemaining = Infinity;
    for (let i = 0; i < states.length; i++) {
      const c = checks[i];
      if (!c || c.unit !== unit) continue;
      const remaining = Math.max(0, c.limit - (states[i] as CheckState).used);
      if (remaining < bestRemaining) {
        bestRemaining = remaining;
        best = i;
      }
    }
    if (best < 0) continue;
    const c = checks[best] as LimitCheck;
    out[`x-ratelimit-limit-${unit}`] = String(c.limit);
    out[`x-ratelimit-remaining-${unit}`] = String(Math.floor(bestRemaining));
    out[`x-ratelimit-reset-${unit}`] = formatDuration((states[best] as CheckState).resetMs);
  }
  return out;
}

export function scopeLabel(c: LimitCheck): string {
  if (c.scope === 'provider') return `provider model ${c.scopeId.replace(/^provider:/, '')}`;
  if (c.scope === 'ancestor') return `parent account ${c.scopeId}`;
  return `API key ${c.scopeId}`;
}

/** Calendar budgets (tokensPerMonth, costPerMonth, costPerDay) answer with OpenAI's quota error. */
function quota(c: LimitCheck): boolean {
  return c.windowMs === 0 && c.unit !== 'requests';
}

/**
 * The 429 for a refused check, naming the limit, with Retry-After and x-ratelimit-* headers.
 * `requested` and the check's numbers are in the check's unit (micro-units for money, shown as
 * decimals of `currency`).
 */
export function refusal(
  checks: readonly LimitCheck[],
  states: readonly CheckState[],
  denied: number,
  retryAfterMs: number,
  requested: number,
  currency = 'USD',
): GatewayError {
  const c = checks[denied] as LimitCheck;
  const used = states[denied]?.used ?? 0;
  const headers = rateLimitHeaders(checks, states);
  const what = c.unit === 'requests' ? 'requests' : c.unit === 'tokens' ? 'tokens' : currency;
  const n = (v: number): string => (c.unit === 'cost' ? formatMicros(v) : String(v));
  if (retryAfterMs < 0) {
    return gatewayError(
      quota(c) ? 'insufficient_quota' : 'rate_limit_exceeded',
      `Request too large for ${c.name} of ${scopeLabel(c)}: limit ${n(c.limit)} ${what}, requested ${n(requested)}. Reduce the prompt or max_tokens.`,
      headers,
    );
  }
  if (c.unit === 'cost') {
    headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
    return gatewayError(
      'insufficient_quota',
      `You exceeded the ${c.name === 'costPerMonth' ? 'monthly' : 'daily'} budget (${c.name}) of ${scopeLabel(c)}: limit ${n(c.limit)} ${currency}, used ${n(used)}, requested ${n(requested)}. It resets at ${new Date(c.resetAtMs).toISOString()}.`,
      headers,
    );
  }
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  headers['retry-after'] = String(seconds);
  headers['retry-after-ms'] = String(Math.ceil(retryAfterMs));
  if (c.name === 'tokensPerMonth') {
    return gatewayError(
      'insufficient_quota',
      `You exceeded the monthly token budget (tokensPerMonth) of ${scopeLabel(c)}: limit ${c.limit}, used ${used}, requested ${requested}. It resets at ${new Date(c.resetAtMs).toISOString()}.`,
      headers,
    );
  }
  return gatewayError(
    'rate_limit_exceeded',
    `Rate limit reached for ${c.name} of ${scopeLabel(c)}: limit ${c.limit}, used ${used}, requested ${requested}. Please try again in ${formatDuration(retryAfterMs)}.`,
    headers,
  );
}
