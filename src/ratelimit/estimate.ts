/**
 * Token estimates for admission. Only called when a token limit applies to the request.
 *
 * Prompt: tiktoken with the model family's encoding (o200k_base for gpt-4o / gpt-4.1 / gpt-5 / o1 /
 * o3 / o4 families, cl100k_base for gpt-4, gpt-3.5 and text-embedding-*, cl100k_base as the
 * approximation for other engines such as Llama), plus OpenAI's chat framing (3 tokens per message,
 * 1 per name, 3 to prime the reply). Only the first PROMPT_EXACT_CHARS characters of a request are
 * encoded (tiktoken costs ~0.1-0.2 ms per KiB of CPU on the hot path); the rest is extrapolated
 * with the tokens-per-character ratio of the encoded part (at least 1/4; 1/3 when less than 1 KiB was
 * encoded) plus 10%, and corrected with the real usage afterwards. Images count a fixed
 * IMAGE_TOKENS each. Counts of repeated texts come from a bounded cache (TokenCountCache).
 *
 * Completion: a high percentile (p95) of recent completion sizes for this key and model, capped by
 * the request's max_tokens (max_completion_tokens). With no history yet, min(max_tokens,
 * DEFAULT_COMPLETION_ESTIMATE). Reserving all of max_tokens is what causes false 429s elsewhere.
 */
import { createRequire } from 'node:module';
import type { Tiktoken, TiktokenEncoding } from 'tiktoken';

export const PROMPT_EXACT_CHARS = 16 * 1024;
/** Safety margin on the extrapolated part of a huge prompt. */
export const REST_MARGIN = 1.1;
export const IMAGE_TOKENS = 1105;
export const DEFAULT_COMPLETION_ESTIMATE = 256;

/*
 * tiktoken is loaded on first use, not at import: loading its WASM module and building a BPE table
 * costs CPU and memory that a gateway without token limits should never pay. ratelimit/setup.ts
 * builds the encodings a config needs before the gateway serves, or right after a config change
 * adds token limits, so requests normally find them ready.
 *
 * Cold path, measured (2-core dev machine, Node 24, the first estimatePromptTokens call of a fresh
 * process): the first estimate for a gpt-4o-family model (o200k_base) takes ~0.2 s wall / ~0.35 s
 * CPU and adds ~75 MB RSS; for any other model (cl100k_base) ~0.15 s wall / ~0.25 s CPU and ~60 MB;
 * up to ~1 s on a loaded machine. Later estimates of a short chat prompt: ~30 µs. A token-limited
 * request that finds its encoding not built yet (a request racing a config change, or a caller
 * without the warm-up) builds it synchronously inside admission: that request, and every other
 * request of the process, waits for the build, once per encoding per process.
 */
type TiktokenModule = typeof import('tiktoken');
let tiktoken: TiktokenModule | undefined;
const encoders = new Map<TiktokenEncoding, Tiktoken>();

function encoder(name: TiktokenEncoding): Tiktoken {
  let e = encoders.get(name);
  if (!e) {
    tiktoken ??= createRequire(import.meta.url)('tiktoken') as TiktokenModule;
    e = tiktoken.get_encoding(name);
    encoders.set(name, e);
  }
  return e;
}

/** True once `name` is built (no request will pay for it). */
export function encoderReady(name: TiktokenEncoding): boolean {
  return encoders.has(name);
}

/**
 * Builds the given encodings now (synchronously: ~0.6 s of CPU for both, see above). Called before
 * serving, or once after a config change, so that token-limited requests do not.
 */
export function warmEncoders(names: readonly TiktokenEncoding[] = ['o200k_base', 'cl100k_base']): void {
  for (const name of names) encoder(name).encode_ordinary('warm');
}

const O200K = /^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o|gpt-oss)/;

/** The tiktoken encoding for a model name (the upstream model name is the better hint). */
export function encodingFor(model: string): TiktokenEncoding {
  const m = model.toLowerCase();
  const base = m.includes('/') ? m.slice(m.lastIndexOf('/') + 1) : m;
  if (O200K.test(base)) return 'o200k_base';
  return 'cl100k_base';
}

/**
 * Token counts of recently seen texts, per encoding. Chat requests re-send the same texts again and
 * again (system prompts, tool definitions, every earlier turn of a conversation), and tiktoken costs
 * ~0.1-0.2 ms of CPU per KiB, so a conversation of n turns would otherwise be tokenized O(n^2).
 * Only texts of at least CACHE_MIN_CHARS are cached (shorter ones encode faster than they hash);
 * bounded by the total characters held, oldest first out.
 */
export class TokenCountCache {
  private readonly counts = new Map<string, number>();
  private chars = 0;

  constructor(private readonly maxChars: number) {}

  get(text: string): number | undefined {
    return this.counts.get(text);
  }

  set(text: string, tokens: number): void {
    if (text.length > this.maxChars || this.counts.has(text)) return;
    this.counts.set(text, tokens);
    this.chars += text.length;
    while (this.chars > this.maxChars) {
      const oldest = this.counts.keys().next().value as string;
      this.counts.delete(oldest);
      this.chars -= oldest.length;
    }
  }

  get size(): number {
    return this.counts.size;
  }
}

export const CACHE_MIN_CHARS = 64;
/** About 8 MiB of strings per encoding. */
const CACHE_MAX_CHARS = 4 * 1024 * 1024;
const countCaches = new Map<TiktokenEncoding, TokenCountCache>();

/** Tokens of one text, through the cache for texts long enough to be worth it. */
export function countTokens(enc: TiktokenEncoding, text: string): number {
  if (text.length < CACHE_MIN_CHARS) return encoder(enc).encode_ordinary(text).length;
  let cache = countCaches.get(enc);
  if (!cache) {
    cache = new TokenCountCache(CACHE_MAX_CHARS);
    countCaches.set(enc, cache);
  }
  const known = cache.get(text);
  if (known !== undefined) return known;
  const n = encoder(enc).encode_ordinary(text).length;
  cache.set(text, n);
  return n;
}

/** Counts tokens of texts with a shared budget of exactly-encoded characters. */
class Counter {
  private exactLeft = PROMPT_EXACT_CHARS;
  private exactChars = 0;
  private exactTokens = 0;
  private restChars = 0;
  tokens = 0;
  constructor(private readonly enc: TiktokenEncoding) {}

  text(s: string): void {
    if (s.length === 0) return;
    if (s.length <= this.exactLeft) {
      const n = countTokens(this.enc, s);
      this.exactLeft -= s.length;
      this.exactChars += s.length;
      this.exactTokens += n;
      this.tokens += n;
    } else {
      this.exactLeft = 0;
      this.restChars += s.length;
    }
  }

  /** Tokens counted plus the estimate for text beyond the exact budget. */
  total(): number {
    if (this.restChars === 0) return this.tokens;
    // Never below 1/4 token per character (typical English): a repetitive head must not make a
    // long tail look cheap. CJK and code have higher ratios and keep them.
    const ratio = Math.max(0.25, this.exactChars >= 1024 ? this.exactTokens / this.exactChars : 1 / 3);
    return this.tokens + Math.ceil(this.restChars * ratio * REST_MARGIN);
  }
}

function contentTokens(content: unknown, c: Counter): void {
  if (typeof content === 'string') return c.text(content);
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (typeof part !== 'object' || part === null) continue;
    const p = part as Record<string, unknown>;
    if (typeof p['text'] === 'string') c.text(p['text']);
    else if (p['type'] === 'image_url' || p['type'] === 'input_image') c.tokens += IMAGE_TOKENS;
    else if (p['type'] === 'input_audio') c.tokens += IMAGE_TOKENS;
  }
}

/** Prompt tokens of a chat completion or embeddings body (already parsed once by the pipeline). */
export function estimatePromptTokens(body: Readonly<Record<string, unknown>>, model: string): number {
  const c = new Counter(encodingFor(model));
  const messages = body['messages'];
  if (Array.isArray(messages)) {
    for (const msg of messages) {
      c.tokens += 3;
      if (typeof msg !== 'object' || msg === null) continue;
      const m = msg as Record<string, unknown>;
      contentTokens(m['content'], c);
      if (typeof m['name'] === 'string') {
        c.text(m['name']);
        c.tokens += 1;
      }
      if (m['tool_calls'] !== undefined) c.text(JSON.stringify(m['tool_calls']));
    }
    c.tokens += 3;
    if (body['tools'] !== undefined) c.text(JSON.stringify(body['tools']));
    if (body['functions'] !== undefined) c.text(JSON.stringify(body['functions']));
    return c.total();
  }
  const input = body['input'];
  // The Responses API: `instructions` and `input` items ({role, content} messages and others).
  if (typeof body['instructions'] === 'string') c.text(body['instructions']);
  if (typeof input === 'string') c.text(input);
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (typeof item === 'string') c.text(item);
      else if (typeof item === 'number') c.tokens += 1; // token ids
      else if (Array.isArray(item)) c.tokens += item.length;
      else if (typeof item === 'object' && item !== null) {
        const it = item as Record<string, unknown>;
        c.tokens += 3;
        if (it['content'] !== undefined) contentTokens(it['content'], c);
        else c.text(JSON.stringify(it));
      }
    }
  }
  return c.total();
}

/** The completion cap a request sets (max_completion_tokens, else max_tokens), if any. */
export function maxCompletionTokens(body: Readonly<Record<string, unknown>>): number | undefined {
  const v = body['max_completion_tokens'] ?? body['max_tokens'] ?? body['max_output_tokens'];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
}

const HISTORY = 64;

/** Recent completion sizes per key x model (bounded ring buffers, bounded number of entries). */
export class CompletionHistory {
  private readonly rings = new Map<string, { values: number[]; next: number; p95: number | undefined }>();

  constructor(private readonly maxEntries = 10_000) {}

  record(key: string, model: string, completionTokens: number): void {
    const id = `${key}\u0000${model}`;
    let ring = this.rings.get(id);
    if (!ring) {
      if (this.rings.size >= this.maxEntries) {
        const oldest = this.rings.keys().next().value;
        if (oldest !== undefined) this.rings.delete(oldest);
      }
      ring = { values: [], next: 0, p95: undefined };
      this.rings.set(id, ring);
    }
    if (ring.values.length < HISTORY) ring.values.push(completionTokens);
    else ring.values[ring.next] = completionTokens;
    ring.next = (ring.next + 1) % HISTORY;
    ring.p95 = undefined;
  }

  /** p95 of recent completions, or undefined with no history. */
  p95(key: string, model: string): number | undefined {
    const ring = this.rings.get(`${key}\u0000${model}`);
    if (!ring || ring.values.length === 0) return undefined;
    if (ring.p95 === undefined) {
      // Sorted only when asked after a change.
      const sorted = [...ring.values].sort((a, b) => a - b);
      ring.p95 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)];
    }
    return ring.p95;
  }

  /** Completion tokens to reserve: p95 of history (or the default), capped by max_tokens. */
  estimate(key: string, model: string, maxTokens: number | undefined, embeddings: boolean): number {
    if (embeddings) return 0;
    const guess = this.p95(key, model) ?? DEFAULT_COMPLETION_ESTIMATE;
    return maxTokens === undefined ? guess : Math.min(maxTokens, guess);
  }
}
