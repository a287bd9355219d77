/**
 * Guardrails as the hot path sees them: compiled once per snapshot from GatewayConfig
 * spec.guardrails (regexes built here, never per request), plus the per-request selection for a key
 * and a model.
 */
import type { KeyEntry } from '../config/snapshot.js';
import { PII_KINDS, type GuardrailAction, type GuardrailSpec } from '../config/types.js';
import { ModelMatcher } from '../config/wildcard.js';
import { keywordDetector, patternDetector, PII_DETECTORS, type Detector } from './detectors.js';
import { compileModeration, type CompiledModeration } from './moderation.js';
import { normalize } from './normalize.js';

export interface CompiledRule {
  readonly detector: Detector;
  readonly action: GuardrailAction;
}

export interface CompiledGuardrail {
  readonly name: string;
  readonly global: boolean;
  /** undefined = every model. */
  readonly models: ModelMatcher | undefined;
  readonly request: boolean;
  readonly response: boolean;
  readonly rules: readonly CompiledRule[];
  /** Longest match any rule can make: the streaming window, in normalised characters. */
  readonly window: number;
  /** External moderation of the request text. */
  readonly moderation: CompiledModeration | undefined;
}

export interface GuardrailIndex {
  readonly byName: ReadonlyMap<string, CompiledGuardrail>;
  readonly global: readonly CompiledGuardrail[];
}

export const EMPTY_GUARDRAILS: GuardrailIndex = { byName: new Map(), global: [] };

export const DEFAULT_MASK = '****';
export const DEFAULT_PATTERN_MAX_LENGTH = 64;

/** Compiles one guardrail; the messages of what does not compile (the guardrail is then refused). */
export function compileGuardrail(spec: GuardrailSpec): CompiledGuardrail | string[] {
  const mask = spec.mask ?? DEFAULT_MASK;
  const rules: CompiledRule[] = [];
  const errors: string[] = [];
  if (spec.keywords) {
    const words = spec.keywords.words.map((w) => normalize(w).text).filter((w) => w.length > 0);
    if (words.length === 0) errors.push('keywords: every word is empty after normalisation');
    else rules.push({ detector: keywordDetector(words, mask), action: spec.keywords.action });
  }
  for (const p of spec.patterns ?? []) {
    const d = patternDetector(p.name, p.regex, p.maxLength ?? DEFAULT_PATTERN_MAX_LENGTH, mask);
    if (typeof d === 'string') errors.push(d);
    else rules.push({ detector: d, action: p.action });
  }
  for (const kind of PII_KINDS) {
    const action = spec.pii?.[kind];
    if (action) rules.push({ detector: PII_DETECTORS[kind], action });
  }
  if (errors.length > 0) return errors;
  return {
    name: spec.name,
    global: spec.global ?? false,
    models: spec.models ? new ModelMatcher(spec.models) : undefined,
    request: spec.request ?? true,
    response: spec.response ?? true,
    rules,
    window: rules.reduce((m, r) => Math.max(m, r.detector.maxLength), 1),
    moderation: spec.moderation ? compileModeration(spec.moderation) : undefined,
  };
}

/** Problems that make a GatewayConfig's guardrails unusable (bad regexes), as `field: message`. */
export function guardrailIssues(specs: readonly GuardrailSpec[] | undefined): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  (specs ?? []).forEach((spec, i) => {
    const c = compileGuardrail(spec);
    if (Array.isArray(c)) for (const message of c) out.push({ field: `spec.guardrails[${i}]`, message });
    const responses: string | undefined = spec.moderation?.responses;
    if (responses !== undefined && responses !== 'none' && responses !== 'nonStreamed') {
      out.push({
        field: `spec.guardrails[${i}].moderation.responses`,
        message: `must be none or nonStreamed, got "${responses}": the hook judges whole answers, so only non-streamed ones can be held for it; a streamed answer reaches the client as it is generated (the keyword, pattern and PII rules do check streams, through the window)`,
      });
    } else if (responses === 'nonStreamed' && spec.response === false) {
      out.push({ field: `spec.guardrails[${i}].moderation.responses`, message: 'nonStreamed needs response checks on (response: false turns them off for this guardrail)' });
    }
  });
  return out;
}

/** Compiles every guardrail of a GatewayConfig (those that do not compile are left out; parse refuses them first). */
export function compileGuardrails(specs: readonly GuardrailSpec[] | undefined): GuardrailIndex {
  if (!specs || specs.length === 0) return EMPTY_GUARDRAILS;
  const byName = new Map<string, CompiledGuardrail>();
  const global: CompiledGuardrail[] = [];
  for (const spec of specs) {
    const c = compileGuardrail(spec);
    if (Array.isArray(c)) continue;
    byName.set(c.name, c);
    if (c.global) global.push(c);
  }
  return { byName, global };
}

/** The guardrails of one request: global ones and the key chain's, for this model. */
export interface Selection {
  readonly request: readonly CompiledGuardrail[];
  readonly response: readonly CompiledGuardrail[];
}

const NONE: Selection = { request: [], response: [] };

/**
 * Selects the guardrails for a key and a model (after mapping). A name the key references that the
 * GatewayConfig does not define is returned as an error: the request must fail closed.
 */
export function selectGuardrails(index: GuardrailIndex, key: KeyEntry, model: string, tenant: readonly string[] = []): Selection | { missing: string } {
  if (index.global.length === 0 && key.guardrails.length === 0 && tenant.length === 0) return NONE;
  const chosen: CompiledGuardrail[] = [];
  for (const g of index.global) if (!g.models || g.models.matches(model)) chosen.push(g);
  for (const names of [key.guardrails, tenant]) {
    for (const name of names) {
      const g = index.byName.get(name);
      if (!g) return { missing: name };
      if (!g.global && !chosen.includes(g) && (!g.models || g.models.matches(model))) chosen.push(g);
    }
  }
  if (chosen.length === 0) return NONE;
  return { request: chosen.filter((g) => g.request), response: chosen.filter((g) => g.response) };
}
