/**
 * External moderation hook: the request text (and, with `responses: nonStreamed`, the text of a
 * non-streamed answer) goes to an OpenAI-moderation-compatible endpoint
 * (`POST {model, input: [texts]}` answered by `{results: [{flagged, categories}]}`) with a timeout.
 * When the hook fails (timeout, connection error, non-2xx, unreadable answer) the guardrail's
 * failureMode decides: `closed` refuses the request, `open` lets it through (logged either way).
 */
import type { ModerationSpec } from '../config/types.js';

export interface CompiledModeration {
  readonly endpoint: string;
  readonly model: string | undefined;
  /** Bearer token read from the environment variable when the config was loaded. */
  readonly token: string | undefined;
  readonly timeoutMs: number;
  readonly failureMode: 'open' | 'closed';
  /** Whether non-streamed answers go to the hook too. */
  readonly responses: 'none' | 'nonStreamed';
}

export const DEFAULT_MODERATION_TIMEOUT_MS = 2000;

export function compileModeration(spec: ModerationSpec, env: NodeJS.ProcessEnv = process.env): CompiledModeration {
  return {
    endpoint: spec.endpoint,
    model: spec.model,
    token: spec.credentialEnv ? env[spec.credentialEnv] : undefined,
    timeoutMs: spec.timeoutMs ?? DEFAULT_MODERATION_TIMEOUT_MS,
    failureMode: spec.failureMode ?? 'closed',
    responses: spec.responses ?? 'none',
  };
}

/** What the hook said. `categories` are the flagged category names (no text). */
export type ModerationResult =
  | { readonly kind: 'clean' }
  | { readonly kind: 'flagged'; readonly categories: readonly string[] }
  | { readonly kind: 'failed'; readonly reason: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Asks the hook about `texts`. Never throws. */
export async function moderate(m: CompiledModeration, texts: readonly string[]): Promise<ModerationResult> {
  if (texts.length === 0) return { kind: 'clean' };
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (m.token) headers['authorization'] = `Bearer ${m.token}`;
  let res: Response;
  try {
    res = await fetch(m.endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify(m.model ? { model: m.model, input: texts } : { input: texts }),
      signal: AbortSignal.timeout(m.timeoutMs),
    });
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    return { kind: 'failed', reason: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unreachable' };
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    return { kind: 'failed', reason: `unreadable answer (HTTP ${res.status})` };
  }
  if (!res.ok) return { kind: 'failed', reason: `HTTP ${res.status}` };
  const results = isRecord(body) ? body['results'] : undefined;
  if (!Array.isArray(results) || results.length === 0) return { kind: 'failed', reason: 'answer without results' };
  const categories = new Set<string>();
  let flagged = false;
  for (const r of results) {
    if (!isRecord(r) || typeof r['flagged'] !== 'boolean') return { kind: 'failed', reason: 'result without flagged' };
    if (!r['flagged']) continue;
    flagged = true;
    const cats = r['categories'];
    if (isRecord(cats)) for (const [name, on] of Object.entries(cats)) if (on === true && categories.size < 32) categories.add(name.slice(0, 64));
  }
  return flagged ? { kind: 'flagged', categories: [...categories] } : { kind: 'clean' };
}
