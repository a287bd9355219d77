/**
 * Scanning text with compiled guardrails: every rule's regex over the normalised text, validated
 * candidates become findings; `mask` findings are replaced in the original text, a `block` finding
 * stops everything, `log` findings are only reported.
 */
import type { CompiledGuardrail, CompiledRule } from './compile.js';
import { normalize, originalRange, type Normalized } from './normalize.js';

/** One match, in normalised coordinates. Never carries the matched text. */
export interface Finding {
  readonly guardrail: CompiledGuardrail;
  readonly rule: CompiledRule;
  readonly start: number;
  readonly end: number;
}

/** Appends every finding of `guardrails` in `norm` to `out`. */
export function findAll(norm: string, guardrails: readonly CompiledGuardrail[], out: Finding[]): void {
  for (const guardrail of guardrails) {
    for (const rule of guardrail.rules) {
      if (rule.detector.precheck && !rule.detector.precheck(norm)) continue;
      const re = rule.detector.regex;
      const validate = rule.detector.validate;
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(norm)) !== null) {
        const text = m[0];
        if (text.length === 0) {
          re.lastIndex++;
          continue;
        }
        if (!validate || validate(text)) out.push({ guardrail, rule, start: m.index, end: m.index + text.length });
      }
      re.lastIndex = 0;
    }
  }
}

/** Replaces the `mask` findings (normalised coordinates) in `original[0, limit)`; overlapping ones merge. */
export function maskText(original: string, norm: Normalized, findings: readonly Finding[], limit = original.length): string {
  const ranges: [number, number, string][] = [];
  for (const f of findings) {
    if (f.rule.action !== 'mask') continue;
    const [s, e] = originalRange(norm, f.start, f.end);
    if (s >= limit) continue;
    ranges.push([s, Math.min(e, limit), f.rule.detector.mask]);
  }
  if (ranges.length === 0) return limit === original.length ? original : original.slice(0, limit);
  ranges.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let out = '';
  let pos = 0;
  for (const [s, e, mask] of ranges) {
    if (e <= pos) continue; // inside a range already masked
    if (s >= pos) {
      out += original.slice(pos, s) + mask;
    }
    pos = e;
  }
  return out + original.slice(pos, limit);
}

/** The outcome of checking one complete text. */
export interface TextVerdict {
  /** The first `block` finding, if any. */
  readonly blocked: Finding | undefined;
  /** The text with `mask` findings replaced (the input itself when nothing was masked). */
  readonly text: string;
  readonly findings: readonly Finding[];
}

/** Checks one complete text (a request message, a non-streamed answer). */
export function checkText(text: string, guardrails: readonly CompiledGuardrail[]): TextVerdict {
  const norm = normalize(text);
  const findings: Finding[] = [];
  findAll(norm.text, guardrails, findings);
  if (findings.length === 0) return { blocked: undefined, text, findings };
  const blocked = findings.find((f) => f.rule.action === 'block');
  return { blocked, text: blocked ? text : maskText(text, norm, findings), findings };
}
