/**
 * Per-model request parameter rules (ModelProvider models[].parameters), applied to the body the
 * provider gets, after any translation: drop parameters the engine rejects, rename them (o-series:
 * max_tokens -> max_completion_tokens), and add defaults the client did not set. Only models with
 * rules pay for it (one parse and one serialisation of the outgoing body).
 */
import type { ParameterRules } from '../config/types.js';

/** Applies `rules` to a JSON object (mutates and returns it). */
export function applyRules(body: Record<string, unknown>, rules: ParameterRules): Record<string, unknown> {
  for (const name of rules.drop ?? []) delete body[name];
  for (const [from, to] of Object.entries(rules.rename ?? {})) {
    if (!(from in body)) continue;
    if (!(to in body)) body[to] = body[from];
    delete body[from];
  }
  for (const [name, value] of Object.entries(rules.defaults ?? {})) if (!(name in body)) body[name] = value;
  return body;
}

/** Applies `rules` to serialised JSON; bytes that are not a JSON object pass unchanged. */
export function applyRulesToBytes(bytes: Buffer, rules: ParameterRules): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bytes;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return bytes;
  return Buffer.from(JSON.stringify(applyRules(parsed as Record<string, unknown>, rules)));
}
