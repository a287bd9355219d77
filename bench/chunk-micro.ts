/**
 * Micro-benchmark of the per-chunk work on a streamed chat completion whose chunks are inspected
 * (token limits, or `--stream-usage=all`): the SSE usage meter alone and the whole limits
 * `responseBody` step (meter + reservation check), CPU µs per chunk.
 *
 *   npm run build && node dist/bench/chunk-micro.js [--seconds=1] [--baseline=<response-usage.js>]
 *
 * `--baseline` loads another build of src/usage/response-usage.ts (for example the previous commit's,
 * compiled to a temporary directory) and measures its meter on the same input, so both numbers come
 * from one process on one machine state. A few seconds of one core; never timed in tests.
 *
 * Input: a realistic 100-chunk OpenAI stream as Envoy delivers it at a few tens of chunks/s, one
 * event per body chunk (role chunk, 97 content chunks of a few tokens, finish chunk, the usage-only
 * chunk the gateway asked for, `[DONE]`), with `"usage":null` in every chunk as OpenAI sends it when
 * `stream_options.include_usage` is set. Other inputs split every event in two chunks, or carry ten
 * events per chunk.
 */
import { pathToFileURL } from 'node:url';
import type { KeyEntry } from '../src/config/snapshot.js';
import { LimitsStep, RequestAccounting } from '../src/pipeline/limits.js';
import type { RequestContext } from '../src/pipeline/context.js';
import { createLogger } from '../src/observability/logger.js';
import { LocalLimiter } from '../src/ratelimit/local.js';
import { MINUTE_MS, MINUTE_SLOT_MS } from '../src/ratelimit/plan.js';
import type { LimitCheck } from '../src/ratelimit/types.js';
import { MemoryUsageSink, UsageAccountant } from '../src/usage/accountant.js';
import * as current from '../src/usage/response-usage.js';

interface MeterLike {
  push(chunk: Buffer, end: boolean): Buffer | undefined;
  readonly usage: { readonly completionTokens: number } | undefined;
  readonly counted: number;
}
type MeterClass = new (strip: boolean) => MeterLike;

const WORDS = ['Hello', ' there', ',', ' the', ' answer', ' is', ' forty', '-two', '.', ' Indeed', ' it', ' depends'];

/** One realistic OpenAI stream, one event per chunk. */
export function openAiStream(contentChunks = 97): Buffer[] {
  const base = '{"id":"chatcmpl-CJb7Kx4wQz9mVtR2nHs8pLd3eFgYa","object":"chat.completion.chunk","created":1764067200,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559",';
  const event = (rest: string): Buffer => Buffer.from(`data: ${base}${rest}}\n\n`);
  const out = [event('"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Qm3x"')];
  for (let i = 0; i < contentChunks; i++) {
    const text = (WORDS[i % WORDS.length] as string) + (i % 3 === 0 ? (WORDS[(i + 5) % WORDS.length] as string) : '');
    out.push(event(`"choices":[{"index":0,"delta":{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"a${i}Zk"`));
  }
  out.push(event('"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"p0"'));
  out.push(event('"choices":[],"usage":{"prompt_tokens":31,"completion_tokens":131,"total_tokens":162,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"Ww"'));
  out.push(Buffer.from('data: [DONE]\n\n'));
  return out;
}

/** Ten events per chunk (a fast upstream, or Envoy reading several writes at once). */
function batched(chunks: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < chunks.length; i += 10) out.push(Buffer.concat(chunks.slice(i, i + 10)));
  return out;
}

/** Every chunk cut in two at its middle (events split across body chunks). */
function splitInTwo(chunks: readonly Buffer[]): Buffer[] {
  return chunks.flatMap((c) => [c.subarray(0, c.length >> 1), c.subarray(c.length >> 1)]);
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Runs `once` (one whole stream) repeatedly for about `seconds`; returns CPU µs per chunk. */
function measure(seconds: number, chunksPerRun: number, once: () => void): number {
  for (let i = 0; i < 300; i++) once(); // warm-up: let the optimising compiler settle
  let runs = 0;
  const start = cpuMicros();
  const deadline = start + seconds * 1e6;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 100; i++) once();
    runs += 100;
    now = cpuMicros();
  }
  return (now - start) / (runs * chunksPerRun);
}

function meterRun(Meter: MeterClass, chunks: readonly Buffer[], strip: boolean): () => void {
  return () => {
    const m = new Meter(strip);
    const last = chunks.length - 1;
    for (let i = 0; i <= last; i++) m.push(chunks[i] as Buffer, i === last);
    if (m.usage?.completionTokens !== 131) throw new Error('meter missed the usage event');
  };
}

/** The limits step's responseBody for a token-limited stream whose reservation covers it. */
function limitsRun(chunks: readonly Buffer[]): () => void {
  const logger = createLogger('chunk-micro');
  logger.level = 'silent';
  const step = new LimitsStep({
    limiter: new LocalLimiter(),
    usage: new UsageAccountant({ sink: new MemoryUsageSink(), logger, intervalMs: 60_000, maxRecords: 1000 }),
    logger,
    streamUsage: 'all',
  });
  const check: LimitCheck = { key: 'k|tpm', name: 'tokensPerMinute', unit: 'tokens', limit: 1e12, windowMs: MINUTE_MS, slotMs: MINUTE_SLOT_MS, resetAtMs: 0, scope: 'key', scopeId: 'ns/k' };
  const key = { name: 'ns/k', midStreamPolicy: 'error' } as unknown as KeyEntry;
  return () => {
    const acc = new RequestAccounting(key, [check]);
    acc.tokenLimited = true;
    acc.injectedUsage = true;
    acc.promptEstimate = 31;
    acc.completionEstimate = 256;
    acc.reservation = { backend: 'local', checks: [check], slots: [0], tokens: 287, cost: 0 };
    acc.meter = new current.SseUsageMeter(true);
    const ctx = { accounting: acc } as RequestContext;
    const last = chunks.length - 1;
    for (let i = 0; i <= last; i++) {
      const d = step.responseBody(ctx, chunks[i] as Buffer, i === last);
      if (d instanceof Promise) throw new Error('unexpected extension');
    }
  };
}

async function main(): Promise<void> {
  const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
  const seconds = Number(args.get('seconds') ?? 1);
  const chunks = openAiStream();
  const split = splitInTwo(chunks);
  const tens = batched(chunks);
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  console.log(`stream: ${chunks.length} chunks, ${bytes} bytes (${Math.round(bytes / chunks.length)} per chunk); node ${process.version}; ${seconds} s per row`);
  const meters: [string, MeterClass][] = [['current', current.SseUsageMeter]];
  const baseline = args.get('baseline');
  if (baseline) {
    const mod = (await import(pathToFileURL(baseline).href)) as { SseUsageMeter: MeterClass };
    meters.unshift(['baseline', mod.SseUsageMeter]);
  }
  const rows: [string, number][] = [];
  for (const [name, Meter] of meters) {
    rows.push([`${name} meter, usage stripped (gateway injected it)`, measure(seconds, chunks.length, meterRun(Meter, chunks, true))]);
    rows.push([`${name} meter, usage passed through`, measure(seconds, chunks.length, meterRun(Meter, chunks, false))]);
    rows.push([`${name} meter, every event split in two chunks (stripped; per half)`, measure(seconds, split.length, meterRun(Meter, split, true))]);
    rows.push([`${name} meter, ten events per chunk (stripped; per event)`, measure(seconds, chunks.length, meterRun(Meter, tens, true))]);
  }
  rows.push(['current limits responseBody (token-limited, meter + reservation check)', measure(seconds, chunks.length, limitsRun(chunks))]);
  for (const [name, us] of rows) console.log(`${us.toFixed(3).padStart(8)} µs CPU/chunk  ${name}`);
}

await main();
