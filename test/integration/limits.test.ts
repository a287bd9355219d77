/**
 * Limits, quotas and usage end to end: two real Envoy + Tollgate stacks sharing one real Redis,
 * fake providers, the official openai client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { estimatePromptTokens } from '../../src/ratelimit/estimate.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { startStack, type Stack } from '../harness/stack.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { apiKeyDoc } from '../harness/key-docs.js';

const PROMPT = [{ role: 'user' as const, content: 'count me please' }];
const month = (): string => new Date().toISOString().slice(0, 7);

const FILES: Record<string, string> = {
  'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: primary }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models:
    - name: gpt-4o-mini
    - name: renamed
      upstreamModel: upstream-renamed
    - name: protected
      limits: { requestsPerMinute: 3 }
    - name: protected-shared
      limits: { requestsPerMinute: 2 }
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: secondary }
spec:
  type: openai
  endpoint: "{{FAKE:secondary}}"
  priority: 1
  models:
    - name: protected-shared
`,
  'keys.yaml': [
    apiKeyDoc('exact', '  limits: { tokensPerMinute: 3000 }', 'sk-exact-0001'),
    apiKeyDoc('rpm', '  limits: { requestsPerMinute: 50 }', 'sk-rpm-0001'),
    apiKeyDoc('org', '  accountOnly: true\n  limits: { requestsPerMinute: 6 }'),
    apiKeyDoc('team-a', '  parent: org\n  limits: { requestsPerMinute: 100 }', 'sk-team-a-0001'),
    apiKeyDoc('team-b', '  parent: org', 'sk-team-b-0001'),
    apiKeyDoc('hdr', '  limits: { requestsPerMinute: 10, tokensPerMinute: 100000 }', 'sk-hdr-0001'),
    apiKeyDoc('stream', '  limits: { tokensPerDay: 1000000 }', 'sk-stream-0001'),
    apiKeyDoc('cut', '  limits: { tokensPerMonth: 400, midStreamPolicy: error }', 'sk-cut-0001'),
    apiKeyDoc('finish', '  limits: { tokensPerMonth: 400, midStreamPolicy: finish }', 'sk-finish-0001'),
    apiKeyDoc('fit', '  limits: { tokensPerMinute: 300 }', 'sk-fit-0001'),
    apiKeyDoc('prov', '  description: no limits of its own', 'sk-prov-0001'),
    apiKeyDoc('prov2', '  description: no limits of its own', 'sk-prov2-0001'),
    apiKeyDoc('outage', '  limits: { requestsPerMinute: 1000 }', 'sk-outage-0001'),
  ].join(''),
};

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err.status ?? -1;
    throw err;
  }
}

describe('limits, quotas and usage (2 gateways, 1 Redis)', () => {
  let redis: RedisServer;
  let a: Stack; // fail-open, 2 replicas
  let b: Stack; // fail-closed
  const usageKey = (key: string): string => `tollgate:{tollgate}:usage:${month()}:default/${key}`;

  before(async () => {
    redis = await startRedis();
    const common = ['--redis-url', redis.url, '--replicas', '2', '--usage-flush-ms', '200', '--redis-timeout-ms', '3000'];
    const fakes = { primary: { chunks: 5, chunkIntervalMs: 1 }, secondary: { chunks: 5, chunkIntervalMs: 1 } };
    a = await startStack({ files: FILES, fakes, gatewayArgs: [...common, '--limiter-failure-policy', 'open'] });
    b = await startStack({ files: FILES, fakes, gatewayArgs: [...common, '--limiter-failure-policy', 'closed'] });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it('exactness: many concurrent clients on two gateways stay within 5% of a TPM limit and never above an RPM limit', async (t) => {
    const stacks = [a, b];
    const run = async (key: string, workers: number, attempts: number, maxTokens?: number) => {
      let admitted = 0;
      let tokens = 0;
      const other: number[] = [];
      await Promise.all(
        Array.from({ length: workers }, async (_, w) => {
          const client = (stacks[w % 2] as Stack).client(key);
          for (let i = 0; i < attempts; i++) {
            try {
              const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT, ...(maxTokens ? { max_tokens: maxTokens } : {}) });
              admitted++;
              tokens += r.usage?.total_tokens ?? 0;
            } catch (err) {
              if (!(err instanceof OpenAI.APIError) || err.status !== 429) throw err;
              if (err.code !== 'rate_limit_exceeded') other.push(err.status);
            }
          }
        }),
      );
      return { admitted, tokens, other };
    };
    const tpm = await run('sk-exact-0001', 16, 26, 5);
    t.diagnostic(`TPM 3000: admitted ${tpm.admitted} requests, ${tpm.tokens} tokens`);
    assert.deepEqual(tpm.other, []);
    assert.ok(tpm.tokens >= 3000 * 0.95 && tpm.tokens <= 3000 * 1.05, `admitted ${tpm.tokens} tokens for a 3000 TPM limit`);
    const rpm = await run('sk-rpm-0001', 16, 8);
    assert.equal(rpm.admitted, 50, 'exactly the RPM limit is admitted across both gateways');
  });

  it('hierarchy: a child is refused when siblings exhausted the parent budget', async () => {
    for (let i = 0; i < 6; i++) {
      await a.client('sk-team-a-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT });
    }
    const err = await b.client('sk-team-b-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof OpenAI.APIError, 'team-b must be refused');
    assert.equal(err.status, 429);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.match(err.message, /requestsPerMinute of parent account default\/org/);
    assert.ok(Number(err.headers?.get('retry-after')) >= 1);
    assert.equal(err.headers?.get('x-ratelimit-remaining-requests'), '0');
  });

  it('provider protection: a ModelProvider model limit holds across keys and both gateways', async () => {
    const codes: number[] = [];
    for (const [stack, key] of [[a, 'sk-prov-0001'], [b, 'sk-prov2-0001'], [a, 'sk-prov-0001'], [b, 'sk-prov-0001']] as const) {
      codes.push(await status(stack.client(key).chat.completions.create({ model: 'protected', messages: PROMPT })));
    }
    assert.deepEqual(codes, [200, 200, 200, 429]);
    const err = await a.client('sk-prov-0001').chat.completions.create({ model: 'protected', messages: PROMPT }).catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError && err.status === 429, String(err));
    assert.match(err.message, /requestsPerMinute of provider model default\/primary:protected/);
  });

  it('provider protection: a provider at its limit fails over to another provider of the model', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push(await status(a.client('sk-prov-0001').chat.completions.create({ model: 'protected-shared', messages: PROMPT })));
    assert.deepEqual(codes, [200, 200, 200, 200]);
    assert.equal(a.fakes['primary']!.received('/chat/completions').filter((r) => (r.body as { model?: string }).model === 'protected-shared').length, 2);
    assert.equal(a.fakes['secondary']!.received('/chat/completions').length, 2);
  });

    it('headers: x-ratelimit-* on every response, remaining decreasing', async () => {
    const client = a.client('sk-hdr-0001');
    // The first request of a key reserves the default completion estimate; later ones reserve the p95
    // of real completions. Warm it so remaining-tokens compares like with like.
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT });
    const seen: { req: number; tok: number }[] = [];
    for (let i = 0; i < 3; i++) {
      const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT }).withResponse();
      const h = response.headers;
      assert.equal(h.get('x-ratelimit-limit-requests'), '10');
      assert.equal(h.get('x-ratelimit-limit-tokens'), '100000');
      assert.match(h.get('x-ratelimit-reset-requests') ?? '', /^(\d+ms|\d+s|\d+m\d+s)$/);
      assert.match(h.get('x-ratelimit-reset-tokens') ?? '', /^(\d+ms|\d+s|\d+m\d+s)$/);
      seen.push({ req: Number(h.get('x-ratelimit-remaining-requests')), tok: Number(h.get('x-ratelimit-remaining-tokens')) });
    }
    assert.deepEqual(seen.map((s) => s.req), [8, 7, 6]);
    assert.ok((seen[0] as { tok: number }).tok > (seen[1] as { tok: number }).tok && (seen[1] as { tok: number }).tok > (seen[2] as { tok: number }).tok, JSON.stringify(seen));
  });

  it('streaming usage: Redis totals equal what the upstream reported; the client sees usage only if it asked', async () => {
    const fake = a.fakes['primary']!;
    const before = fake.reported.length;
    const client = a.client('sk-stream-0001');
    const chunksOf = async (withUsage: boolean, model = 'gpt-4o-mini') => {
      const stream = await client.chat.completions.create({
        model,
        messages: PROMPT,
        stream: true,
        ...(withUsage ? { stream_options: { include_usage: true } } : {}),
      });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      return chunks;
    };
    // A provider model name differs from the client's: the attempt's rewritten body still asks for usage.
    const plain = await chunksOf(false, 'renamed');
    assert.ok(plain.length >= 7);
    assert.ok(plain.every((c) => !c.usage), 'usage leaked to a client that did not ask');
    assert.equal(plain.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Hello from the Tollgate fake');
    const asked = await chunksOf(true);
    const last = asked.at(-1);
    assert.equal(last?.choices.length, 0);
    assert.equal(last?.usage?.completion_tokens, 5);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT });
    const reported = fake.reported.slice(before);
    assert.equal(reported.length, 3, 'the upstream was asked for usage on every stream');
    // An upstream that never sends usage: the gateway counts the streamed text (5 content chunks).
    fake.behaviour.sendUsage = false;
    await chunksOf(false);
    fake.behaviour.sendUsage = true;
    const expectPrompt = reported.reduce((s, r) => s + r.promptTokens, 0) + estimatePromptTokens({ messages: PROMPT }, 'gpt-4o-mini');
    const expectCompletion = reported.reduce((s, r) => s + r.completionTokens, 0) + 5;
    const deadline = Date.now() + 5000;
    let totals: Record<string, string> = {};
    while (Date.now() < deadline) {
      totals = await redis.client.hgetall(usageKey('stream'));
      if (totals['requests'] === '4') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(totals['requests'], '4');
    assert.equal(Number(totals['prompt_tokens']), expectPrompt);
    assert.equal(Number(totals['completion_tokens']), expectCompletion);
    assert.equal(totals['estimated'], '1');
  });

  it('no false 429: requests that fit are admitted although max_tokens alone exceeds the budget', async () => {
    const client = b.client('sk-fit-0001');
    let used = 0;
    for (let i = 0; i < 14; i++) {
      const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT, max_tokens: 4096 });
      used += r.usage?.total_tokens ?? 0;
    }
    assert.ok(used <= 300 && used > 200, `used ${used}`);
  });

  const overshoot = async (key: string, name: string, stack: Stack) => {
    const fake = stack.fakes['primary']!;
    const client = stack.client(key);
    // Warm the completion history (and spend a little): short answers.
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT, max_tokens: 200 });
    fake.behaviour.chunks = 60;
    fake.behaviour.chunkIntervalMs = 5;
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, async () => {
        try {
          const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT, max_tokens: 200, stream: true });
          let n = 0;
          for await (const c of s) if (c.choices[0]?.delta.content) n++;
          return n === 60 ? 'complete' : `short ${n}`;
        } catch (err) {
          if (err instanceof OpenAI.APIError && err.status === 429) return 'refused';
          return `error: ${err instanceof Error ? err.message : String(err)}`;
        }
      }),
    );
    fake.behaviour.chunks = 5;
    fake.behaviour.chunkIntervalMs = 1;
    await new Promise((r) => setTimeout(r, 300));
    const counter = Number(await redis.client.get(`tollgate:{tollgate}:rl:default/${name}|tokensPerMonth|${month()}`));
    return { outcomes, counter };
  };
  // Prompt underestimate per request: what the fake bills minus the gateway's tiktoken estimate.
  const promptError = Math.max(0, Math.ceil(JSON.stringify(PROMPT).length / 4) - estimatePromptTokens({ messages: PROMPT }, 'gpt-4o-mini'));

  it('overshoot (midStreamPolicy error): concurrent streams against a nearly spent budget stop within the documented bound', async (t) => {
    const { outcomes, counter } = await overshoot('sk-cut-0001', 'cut', a);
    t.diagnostic(`charged ${counter} of 400; prompt error ${promptError}; outcomes ${outcomes.join(',')}`);
    // Bound: limit + per in-flight stream (prompt estimate error + the one chunk that crossed).
    assert.ok(counter <= 400 + 10 * (promptError + 1), `charged ${counter} (outcomes ${outcomes.join(',')})`);
    assert.ok(counter >= 300, `budget should be nearly used, charged ${counter}`);
    assert.ok(outcomes.some((o) => o === 'complete'), outcomes.join(','));
    assert.ok(outcomes.some((o) => o.startsWith('error') || o.startsWith('short')), `some streams must be stopped: ${outcomes.join(',')}`);
    assert.ok(!outcomes.includes('refused'), 'all 10 fit their (p95) reservation at admission');
    // Cut streams are reset upstream too: the provider stops generating.
    assert.ok((a.fakes['primary']?.abortedStreams ?? 0) >= 1, 'the upstream saw cut streams closed early');
  });

  it('overshoot (midStreamPolicy finish): every admitted stream completes; overshoot bounded by max_tokens minus reservation', async (t) => {
    const { outcomes, counter } = await overshoot('sk-finish-0001', 'finish', b);
    t.diagnostic(`charged ${counter} of 400; outcomes ${outcomes.join(',')}`);
    assert.ok(outcomes.every((o) => o === 'complete' || o === 'refused'), outcomes.join(','));
    const completed = outcomes.filter((o) => o === 'complete').length;
    assert.ok(counter <= 400 + completed * (200 - 5 + promptError), `charged ${counter}`);
    assert.ok(counter > 400, 'finish lets admitted streams run past the budget');
    // Once over, the next request is refused with insufficient_quota.
    const err = await b.client('sk-finish-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT }).catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError && err.status === 429 && err.code === 'insufficient_quota', String(err));
  });

  it('Redis killed mid-test: fail-open keeps serving with local limits, fail-closed answers 503, both recover, no usage lost', async () => {
    const openClient = a.client('sk-outage-0001');
    const closedClient = b.client('sk-outage-0001');
    let ok = 0;
    for (let i = 0; i < 5; i++) if ((await status(openClient.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT }))) === 200) ok++;
    await redis.kill();
    const during = await Promise.all(Array.from({ length: 20 }, () => status(openClient.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT }))));
    assert.deepEqual([...new Set(during)], [200], 'fail-open serves every request');
    ok += during.length;
    const closedErr = await closedClient.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT }).catch((e: unknown) => e);
    assert.ok(closedErr instanceof OpenAI.APIError && closedErr.status === 503 && closedErr.code === 'limiter_unavailable', String(closedErr));
    const metrics = await (await fetch(`${a.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_limiter_mode\{mode="degraded",backend="redis"\} 1/);
    assert.ok(a.gateway.running, `fail-open gateway exited; see ${a.gateway.logFile}`);
    assert.ok(b.gateway.running, `fail-closed gateway exited; see ${b.gateway.logFile}`);

    await redis.restart();
    const deadline = Date.now() + 15_000;
    for (const stack of [a, b]) {
      for (;;) {
        const m = await (await fetch(`${stack.adminUrl}/metrics`)).text();
        if (/tollgate_limiter_mode\{mode="normal",backend="redis"\} 1/.test(m)) break;
        if (Date.now() > deadline) throw new Error('a gateway did not recover');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(await status(closedClient.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT })), 200);
    ok += 1;
    // Logs are written in batches (at most ~100 ms late).
    await waitFor('degraded and recovery log lines', async () => {
      const logs = await a.logs();
      return (
        logs.some((l) => String(l['msg']).startsWith('redis unreachable: limiter degraded to local')) &&
        logs.some((l) => String(l['msg']).startsWith('redis reachable again'))
      );
    }, 5000);
    // Usage records made during the outage were kept in memory and flushed after recovery.
    const until = Date.now() + 10_000;
    let requests = 0;
    while (Date.now() < until) {
      requests = Number(await redis.client.hget(usageKey('outage'), 'requests'));
      if (requests >= ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(requests, ok);
  });

  it('SIGTERM flushes buffered usage records', async () => {
    const c = await startStack({
      files: FILES,
      fakes: { primary: { chunks: 5, chunkIntervalMs: 1 }, secondary: { chunks: 5, chunkIntervalMs: 1 } },
      gatewayArgs: ['--redis-url', redis.url, '--usage-flush-ms', '600000', '--usage-flush-records', '100000'],
    });
    try {
      const beforeCount = Number((await redis.client.hget(usageKey('stream'), 'requests')) ?? 0);
      for (let i = 0; i < 3; i++) await c.client('sk-stream-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT });
      assert.equal(Number((await redis.client.hget(usageKey('stream'), 'requests')) ?? 0), beforeCount, 'nothing flushed yet');
      await c.gateway.stop('SIGTERM');
      assert.equal(Number(await redis.client.hget(usageKey('stream'), 'requests')), beforeCount + 3);
    } finally {
      await c.stop();
    }
  });
});
