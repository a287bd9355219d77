/**
 * Compiled limits: the runtime form of ApiKey.spec.limits and ModelProvider model limits. Built once
 * per snapshot so a request only walks small arrays. Pure; knows nothing of Redis.
 */
import { parseMicros } from '../billing/money.js';
import type { BudgetLimits, KeyLimits, MidStreamPolicy, ModelLimits } from './types.js';
import { compileWildcard, type WildcardPattern } from './wildcard.js';

/** `cost` is counted in micro-units of the gateway currency. */
export type LimitUnit = 'requests' | 'tokens' | 'cost';
/**
 * `minute` and `day` are rolling windows; `month` and `calendarDay` are calendar periods in the
 * scope's time zone (plain counters that reset at the period's end).
 */
export type LimitWindow = 'minute' | 'day' | 'month' | 'calendarDay';
/** The user-facing field a rule comes from; also the label of rejection metrics. */
export type LimitName =
  | 'requestsPerMinute'
  | 'requestsPerDay'
  | 'tokensPerMinute'
  | 'tokensPerDay'
  | 'tokensPerMonth'
  | 'costPerMonth'
  | 'costPerDay'
  /** MCP tool calls (src/mcp/); never part of a model request's checks. */
  | 'toolCallsPerMinute'
  | 'toolCallsPerDay'
  | 'toolCallsPerMonth';

export interface LimitRule {
  readonly name: LimitName;
  readonly unit: LimitUnit;
  readonly window: LimitWindow;
  readonly limit: number;
}

const RULE_SHAPES: readonly { readonly name: LimitName; readonly unit: LimitUnit; readonly window: LimitWindow }[] = [
  { name: 'requestsPerMinute', unit: 'requests', window: 'minute' },
  { name: 'requestsPerDay', unit: 'requests', window: 'day' },
  { name: 'tokensPerMinute', unit: 'tokens', window: 'minute' },
  { name: 'tokensPerDay', unit: 'tokens', window: 'day' },
  { name: 'tokensPerMonth', unit: 'tokens', window: 'month' },
  { name: 'costPerMonth', unit: 'cost', window: 'month' },
  { name: 'costPerDay', unit: 'cost', window: 'calendarDay' },
];

/** MCP tool-call rules: counted per tools/call, never by model requests. */
const TOOL_RULE_SHAPES: readonly { readonly name: LimitName; readonly unit: LimitUnit; readonly window: LimitWindow }[] = [
  { name: 'toolCallsPerMinute', unit: 'requests', window: 'minute' },
  { name: 'toolCallsPerDay', unit: 'requests', window: 'day' },
  { name: 'toolCallsPerMonth', unit: 'requests', window: 'month' },
];

const NO_RULES: readonly LimitRule[] = Object.freeze([]);

/** The tool-call rules of one scope (absent fields = no rule). */
export function compileToolRules(limits: KeyLimits | undefined): readonly LimitRule[] {
  if (!limits || (limits.toolCallsPerMinute === undefined && limits.toolCallsPerDay === undefined && limits.toolCallsPerMonth === undefined)) return NO_RULES;
  const rules: LimitRule[] = [];
  for (const shape of TOOL_RULE_SHAPES) {
    const value = limits[shape.name as 'toolCallsPerMinute' | 'toolCallsPerDay' | 'toolCallsPerMonth'];
    if (typeof value === 'number') rules.push({ ...shape, limit: value });
  }
  return rules;
}

/** Rules of one scope, compiled from the user's fields (absent fields = no rule). */
export function compileRules(limits: BudgetLimits | undefined): readonly LimitRule[] {
  if (!limits) return [];
  const rules: LimitRule[] = [];
  for (const shape of RULE_SHAPES) {
    const value = limits[shape.name as keyof BudgetLimits];
    if (typeof value === 'number') rules.push({ ...shape, limit: value });
    else if (typeof value === 'string') {
      // Money budgets: micro-units (the schema pattern keeps them below 2^53).
      const micros = parseMicros(value);
      if (micros !== undefined) rules.push({ ...shape, limit: Number(micros) });
    }
  }
  return rules;
}

/** Extra rules for one model pattern on a key. */
export interface ModelScopeRules {
  readonly pattern: string;
  readonly matcher: WildcardPattern;
  readonly rules: readonly LimitRule[];
}

/** One budget holder in a key's lineage (the key itself or an ancestor). */
export interface LimitScope {
  /** `namespace/name` of the ApiKey (or account). Also the Redis key component. */
  readonly id: string;
  readonly rules: readonly LimitRule[];
  readonly perModel: readonly ModelScopeRules[];
  /** MCP tool-call rules (toolCallsPer{Minute,Day,Month}); model requests never see them. */
  readonly toolRules: readonly LimitRule[];
  /** IANA zone of calendar months for tokensPerMonth. */
  readonly monthTimeZone: string;
}

export function compileScope(id: string, limits: KeyLimits | undefined): LimitScope {
  return {
    id,
    rules: compileRules(limits),
    perModel: compileWildcardRules(limits?.perModel ?? []),
    toolRules: compileToolRules(limits),
    monthTimeZone: limits?.monthTimeZone ?? 'UTC',
  };
}

/** Compiles per-model entries (first match applies, in the user's order). */
export function compileWildcardRules(perModel: readonly ModelLimits[]): readonly ModelScopeRules[] {
  return perModel.map((m) => ({ pattern: m.model, matcher: compileWildcard(m.model), rules: compileRules(m) }));
}

/** Rules of a scope that apply to `model`: the scope's own plus the first matching per-model entry. */
export function modelRules(scope: LimitScope, model: string): readonly LimitRule[] | undefined {
  for (const entry of scope.perModel) if (entry.matcher.test(model)) return entry.rules;
  return undefined;
}

/** True if a scope chain has any token rule (then tokens must be estimated and reconciled). */
export function chainHasTokenRules(scopes: readonly LimitScope[]): boolean {
  return scopes.some((s) => s.rules.some(isTokenRule) || s.perModel.some((m) => m.rules.some(isTokenRule)));
}

/** True if a scope chain limits MCP tool calls anywhere (the key or an ancestor). */
export function chainHasToolRules(scopes: readonly LimitScope[]): boolean {
  return scopes.some((s) => s.toolRules.length > 0);
}

export function chainHasRules(scopes: readonly LimitScope[]): boolean {
  return scopes.some((s) => s.rules.length > 0 || s.perModel.some((m) => m.rules.length > 0));
}

/** Token and money rules both need the request's tokens estimated and reconciled. */
function isTokenRule(r: LimitRule): boolean {
  return r.unit !== 'requests';
}

/** True if a scope chain has a money budget. */
export function chainHasCostRules(scopes: readonly LimitScope[]): boolean {
  return scopes.some((s) => s.rules.some((r) => r.unit === 'cost') || s.perModel.some((m) => m.rules.some((r) => r.unit === 'cost')));
}

/** Checks an IANA time zone name with the runtime's ICU data. */
export function isValidTimeZone(zone: string): boolean {
  if (validZones.has(zone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    return false;
  }
  // Bounded: zone names come from config, but a config could hold many distinct bad-but-valid ones.
  if (validZones.size < 1000) validZones.add(zone);
  return true;
}
const validZones = new Set<string>();

export type { MidStreamPolicy };
