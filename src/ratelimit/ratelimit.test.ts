import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { monthSpan } from './calendar.js';
import { get_encoding } from 'tiktoken';
import { CACHE_MIN_CHARS, CompletionHistory, countTokens, encodingFor, estimatePromptTokens, PROMPT_EXACT_CHARS, TokenCountCache } from './estimate.js';

function estimateExact(text: string): number {
  const enc = get_encoding('o200k_base');
  try {
    return enc.encode_ordinary(text).length + 3;
  } finally {
    enc.free();
  }
}
import { LocalLimiter } from './local.js';
import { DAY_MS, DAY_SLOT_MS, formatDuration, MINUTE_MS, MINUTE_SLOT_MS, rateLimitHeaders, refusal } from './plan.js';
import type { LimitCheck } from './types.js';

const rpm = (limit: number, key = 'k|rpm'): LimitCheck => ({
  key, name: 'requestsPerMinute', unit: 'requests', limit, windowMs: MINUTE_MS, slotMs: MINUTE_SLOT_MS, resetAtMs: 0, scope: 'key', scopeId: 'ns/k',
});
const tpm = (limit: number, key = 'k|tpm'): LimitCheck => ({
  key, name: 'tokensPerMinute', unit: 'tokens', limit, windowMs: MINUTE_MS, slotMs: MINUTE_SLOT_MS, resetAtMs: 0, scope: 'key', scopeId: 'ns/k',
});
const monthly = (limit: number, resetAtMs: number, key = 'k|tpmo'): LimitCheck => ({
  key, name: 'tokensPerMonth', unit: 'tokens', limit, windowMs: 0, slotMs: 0, resetAtMs, scope: 'ancestor', scopeId: 'ns/org',
});

describe('local limiter (sliding window counters)', () => {
  it('never admits more than the limit in any rolling window, whatever the arrival times', () => {
    const l = new LocalLimiter();
    const admitted: number[] = [];
    // Pseudo-random arrivals over 5 minutes, bursty.
    let t = 1_700_000_000_000;
    let seed = 7;
    for (let i = 0; i < 3000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      t += seed % 3 === 0 ? 0 : seed % 400;
      if (l.admitSync([rpm(50)], { requests: 1, tokens: 0 }, t).allowed) admitted.push(t);
    }
    for (let i = 0; i < admitted.length; i++) {
      let j = i;
      while (j < admitted.length && (admitted[j] as number) < (admitted[i] as number) + MINUTE_MS) j++;
      assert.ok(j - i <= 50, `window starting at ${i} holds ${j - i}`);
    }
    assert.ok(admitted.length >= 50 * 4, `admitted ${admitted.length}`); // limit is also reachable
    void l.close();
  });

  it('refuses when any check is over and charges nothing then (atomic across checks)', () => {
    const l = new LocalLimiter();
    const now = 1_000_000;
    const checks = [rpm(100), tpm(1000), monthly(5000, now + 10 * DAY_MS)];
    const ok = l.admitSync(checks, { requests: 1, tokens: 900 }, now);
    assert.equal(ok.allowed, true);
    const no = l.admitSync(checks, { requests: 1, tokens: 200 }, now + 10);
    assert.equal(no.allowed, false);
    if (!no.allowed) {
      assert.equal(no.denied, 1);
      assert.ok(no.retryAfterMs > 59_000 && no.retryAfterMs <= 61_000, String(no.retryAfterMs));
    }
    const after = l.admitSync(checks, { requests: 1, tokens: 100 }, now + 20);
    assert.equal(after.allowed, true);
    if (after.allowed) assert.deepEqual(after.states.map((s) => s.used), [2, 1000, 1000]); // the refused one charged nothing
    void l.close();
  });

  it('corrects reservations with real usage and releases on failure', () => {
    const l = new LocalLimiter();
    const now = 5_000_000;
    const r = l.admitSync([tpm(1000)], { requests: 1, tokens: 600 }, now);
    assert.ok(r.allowed);
    if (!r.allowed) return;
    l.adjustSync(r.reservation, { tokens: -500, cost: 0 }, now + 1000); // real usage 100
    assert.equal(l.admitSync([tpm(1000)], { requests: 1, tokens: 900 }, now + 2000).allowed, true);
    assert.equal(l.admitSync([tpm(1000)], { requests: 1, tokens: 1 }, now + 2000).allowed, false);
    void l.close();
  });

  it('refuses a request larger than the limit with no retry time', () => {
    const l = new LocalLimiter();
    const r = l.admitSync([tpm(100)], { requests: 1, tokens: 101 }, 0);
    assert.equal(r.allowed, false);
    if (!r.allowed) assert.equal(r.retryAfterMs, -1);
    void l.close();
  });

  it('divides limits by the replica count in degraded mode', () => {
    const l = new LocalLimiter(3);
    let n = 0;
    while (l.admitSync([rpm(10)], { requests: 1, tokens: 0 }, 0).allowed) n++;
    assert.equal(n, 3);
    void l.close();
  });

  it('uses day windows of 10-minute slots and sweeps idle state', () => {
    const l = new LocalLimiter();
    const day: LimitCheck = { ...rpm(2, 'k|rpd'), name: 'requestsPerDay', windowMs: DAY_MS, slotMs: DAY_SLOT_MS };
    assert.equal(l.admitSync([day], { requests: 1, tokens: 0 }, 0).allowed, true);
    assert.equal(l.admitSync([day], { requests: 1, tokens: 0 }, DAY_MS / 2).allowed, true);
    assert.equal(l.admitSync([day], { requests: 1, tokens: 0 }, DAY_MS - 1).allowed, false);
    assert.equal(l.admitSync([day], { requests: 1, tokens: 0 }, DAY_MS + DAY_SLOT_MS).allowed, true);
    l.sweep(10 * DAY_MS);
    assert.equal(l.size, 0);
    void l.close();
  });
});

describe('calendar months', () => {
  it('starts months at local midnight of the zone', () => {
    const utc = monthSpan(Date.parse('2026-11-30T23:30:00Z'), 'UTC');
    assert.equal(utc.id, '2026-11');
    assert.equal(new Date(utc.endMs).toISOString(), '2026-12-01T00:00:00.000Z');
    const berlin = monthSpan(Date.parse('2026-11-30T23:30:00Z'), 'Europe/Berlin');
    assert.equal(berlin.id, '2026-12');
    assert.equal(new Date(berlin.startMs).toISOString(), '2026-11-30T23:00:00.000Z');
    const dst = monthSpan(Date.parse('2026-03-15T12:00:00Z'), 'America/New_York');
    assert.equal(new Date(dst.startMs).toISOString(), '2026-03-01T05:00:00.000Z');
    assert.equal(new Date(dst.endMs).toISOString(), '2026-04-01T04:00:00.000Z');
    const dec = monthSpan(Date.parse('2026-12-31T12:00:00Z'), 'Asia/Tokyo');
    assert.equal(dec.id, '2026-12');
    assert.equal(new Date(dec.endMs).toISOString(), '2026-12-31T15:00:00.000Z');
  });
});

describe('token estimates', () => {
  it('picks the encoding per model family', () => {
    assert.equal(encodingFor('gpt-4o-mini'), 'o200k_base');
    assert.equal(encodingFor('openai/gpt-5'), 'o200k_base');
    assert.equal(encodingFor('gpt-4'), 'cl100k_base');
    assert.equal(encodingFor('text-embedding-3-small'), 'cl100k_base');
    assert.equal(encodingFor('meta-llama/Llama-3.1-8B-Instruct'), 'cl100k_base');
  });

  it('counts chat prompts like OpenAI (framing included) and embeddings inputs', () => {
    // "Hello world" is 2 tokens in o200k; 3 per message + 3 priming.
    assert.equal(estimatePromptTokens({ messages: [{ role: 'user', content: 'Hello world' }] }, 'gpt-4o'), 8);
    assert.equal(estimatePromptTokens({ input: ['Hello world', 'Hello'] }, 'text-embedding-3-small'), 3);
    assert.equal(estimatePromptTokens({ input: [[1, 2, 3]] }, 'text-embedding-3-small'), 3);
  });

  it('estimates huge prompts cheaply: encodes the head, extrapolates the rest with a 10% margin', () => {
    const text = 'The quick brown fox jumps over the lazy dog, again and again. '.repeat(Math.ceil((PROMPT_EXACT_CHARS * 5) / 62));
    const n = estimatePromptTokens({ messages: [{ role: 'user', content: 'x'.repeat(2000) }, { role: 'user', content: text }] }, 'gpt-4o');
    const exact = estimatePromptTokens({ messages: [{ role: 'user', content: 'x'.repeat(2000) }] }, 'gpt-4o') - 3 + estimateExact(text);
    assert.ok(n >= exact && n <= exact * 1.25, `estimate ${n}, exact ${exact}`);
  });

  it('repeated texts (system prompts, earlier turns) give the same counts from the cache as a fresh encode', () => {
    const system = 'You are a careful assistant. Answer in the language of the question and cite sources. '.repeat(3);
    assert.ok(system.length >= CACHE_MIN_CHARS);
    const first = countTokens('o200k_base', system);
    assert.equal(first, estimateExact(system) - 3);
    // A different string instance with the same text (what JSON.parse gives every request).
    const again = JSON.parse(JSON.stringify(system)) as string;
    assert.equal(countTokens('o200k_base', again), first);
    assert.notEqual(countTokens('cl100k_base', system), 0, 'caches are per encoding');
    const body = { messages: [{ role: 'system', content: system }, { role: 'user', content: 'Hello world' }] };
    assert.equal(estimatePromptTokens(body, 'gpt-4o'), first + 2 + 3 * 2 + 3);
  });

  it('the count cache is bounded by the characters it holds, oldest out first', () => {
    const cache = new TokenCountCache(100);
    cache.set('a'.repeat(40), 1);
    cache.set('b'.repeat(40), 2);
    cache.set('c'.repeat(40), 3);
    assert.equal(cache.size, 2);
    assert.equal(cache.get('a'.repeat(40)), undefined);
    assert.equal(cache.get('c'.repeat(40)), 3);
    cache.set('d'.repeat(101), 4);
    assert.equal(cache.get('d'.repeat(101)), undefined, 'a text larger than the cache is not kept');
  });

  it('reserves p95 of recent completions, capped by max_tokens, not all of max_tokens', () => {
    const h = new CompletionHistory();
    assert.equal(h.estimate('k', 'm', 4096, false), 256);
    assert.equal(h.estimate('k', 'm', 100, false), 100);
    for (let i = 1; i <= 100; i++) h.record('k', 'm', i);
    assert.equal(h.p95('k', 'm'), 97); // last 64 values: 37..100
    assert.equal(h.estimate('k', 'm', 4096, false), 97);
    assert.equal(h.estimate('k', 'm', 50, false), 50);
    assert.equal(h.estimate('k', 'm', 4096, true), 0);
  });
});

describe('rate limit headers and refusals', () => {
  it('reports the tightest check per unit in OpenAI format', () => {
    const checks = [rpm(60), tpm(1000), { ...tpm(500, 'x'), scope: 'ancestor' as const }];
    const h = rateLimitHeaders(checks, [{ used: 1, resetMs: 59_500 }, { used: 100, resetMs: 60_000 }, { used: 450, resetMs: 400 }]);
    assert.deepEqual(h, {
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-reset-requests': '1m0s',
      'x-ratelimit-limit-tokens': '500',
      'x-ratelimit-remaining-tokens': '50',
      'x-ratelimit-reset-tokens': '400ms',
    });
    assert.equal(formatDuration(3_723_000), '1h2m3s');
  });

  it('names the limit and scope and sets Retry-After', () => {
    const checks = [rpm(60), monthly(1000, Date.parse('2026-12-01T00:00:00Z'))];
    const e = refusal(checks, [{ used: 3, resetMs: 1 }, { used: 990, resetMs: 5 }], 1, 12_300, 50);
    assert.equal(e.code, 'insufficient_quota');
    assert.match(e.message, /tokensPerMonth.*parent account ns\/org.*limit 1000, used 990, requested 50/);
    assert.equal(e.headers?.['retry-after'], '13');
    const r = refusal([rpm(60)], [{ used: 60, resetMs: 1000 }], 0, 800, 1);
    assert.equal(r.code, 'rate_limit_exceeded');
    assert.equal(r.headers?.['x-ratelimit-remaining-requests'], '0');
  });
});
