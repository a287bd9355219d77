/**
 * Budgets in money and the edge of a budget, end to end: real Envoy + Tollgate (two gateways sharing
 * one real Redis), fake providers, the official openai client.
 *
 * Edge of a budget (issue 17): when what is left covers the prompt plus MIN_ANSWER_TOKENS, the
 * request is admitted and its answer capped (max_completion_tokens) to what is left, in tokens or in
 * money through the output price: no false refusal, and the budget is not overshot (up to the prompt
 * estimate's error, which is zero when the provider counts like tiktoken).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { waitFor } from '../../src/dev/local-stack.js';
import { estimatePromptTokens } from '../../src/ratelimit/estimate.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startStack, type Stack } from '../harness/stack.js';
import { apiKeyDoc } from '../harness/key-docs.js';

const HELLO = [{ role: 'user' as const, content: 'hello' }];
// The fake bills ceil(chars of the messages JSON / 4) prompt tokens; the gateway estimates with tiktoken.
const fakePrompt = Math.ceil(JSON.stringify(HELLO).length / 4);
const estimate = estimatePromptTokens({ messages: HELLO }, 'gpt-4o-mini');
const promptError = Math.max(0, fakePrompt - estimate);
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
      pricing: { input: "10", output: "30" }
    - name: vllm-model
`,
  'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  pricing:
    currency: USD
    models:
      - { model: "vllm-*", input: "1", output: "2" }
`,
  'keys.yaml': [
    apiKeyDoc('tiny', '  limits: { tokensPerMonth: 60 }', 'sk-tiny-0001'),
    apiKeyDoc('client-cap', '  limits: { tokensPerMonth: 100000 }', 'sk-client-cap-0001'),
    apiKeyDoc('edge', '  limits: { tokensPerMonth: 300 }', 'sk-edge-0001'),
    apiKeyDoc('low', '  limits: { tokensPerMonth: 20 }', 'sk-low-0001'),
    apiKeyDoc('money', '  limits: { costPerMonth: "0.001" }', 'sk-money-0001'),
    apiKeyDoc('team', '  accountOnly: true\n  limits: { costPerMonth: "0.02" }'),
    apiKeyDoc('team-a', '  parent: team', 'sk-team-a-0001'),
    apiKeyDoc('team-b', '  parent: team', 'sk-team-b-0001'),
    apiKeyDoc('daily', '  limits: { costPerDay: "0.0005" }', 'sk-daily-0001'),
    apiKeyDoc('streams', '  limits: { costPerMonth: "0.01", midStreamPolicy: error }', 'sk-streams-0001'),
  ].join(''),
};

describe('budgets in money and the edge of a budget (2 gateways, 1 Redis)', () => {
  let redis: RedisServer;
  let a: Stack;
  let b: Stack;

  before(async () => {
    redis = await startRedis();
    const args = ['--redis-url', redis.url, '--usage-flush-ms', '100'];
    const fakes = { primary: { chunks: 100, chunkIntervalMs: 0 } };
    a = await startStack({ files: FILES, fakes, gatewayArgs: args });
    b = await startStack({ files: FILES, fakes, gatewayArgs: args });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  const counter = async (key: string, rule: string): Promise<number> => Number((await redis.client.get(`tollgate:{tollgate}:rl:default/${key}|${rule}|${month()}`)) ?? 0);
  const lastBody = (stack: Stack): Record<string, unknown> => stack.fakes['primary']?.received('/chat/completions').at(-1)?.body as Record<string, unknown>;

  it('no false refusal: tokensPerMonth 60, "hello" without max_tokens is answered, cut to what is left (finish_reason length)', async () => {
    const r = await a.client('sk-tiny-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO });
    const cap = 60 - estimate;
    assert.equal(lastBody(a)['max_completion_tokens'], cap, 'the upstream was asked for at most what is left');
    assert.equal(r.choices[0]?.finish_reason, 'length');
    assert.equal(r.usage?.completion_tokens, cap);
    assert.ok((r.usage?.total_tokens ?? 0) <= 60 + promptError, `used ${r.usage?.total_tokens}`);
    // Spent: the next one is refused with OpenAI's quota error.
    const err = await b.client('sk-tiny-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO }).catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError && err.status === 429 && err.code === 'insufficient_quota', String(err));
  });

  it('the client\'s own smaller max_tokens is left alone; a larger one is lowered', async () => {
    await a.client('sk-client-cap-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO, max_tokens: 7 });
    assert.equal(lastBody(a)['max_tokens'], 7);
    assert.equal(lastBody(a)['max_completion_tokens'], undefined, 'no field added when the budget is not near');
    const r = await a.client('sk-edge-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO, max_tokens: 5000 });
    assert.equal(lastBody(a)['max_tokens'], 300 - estimate, 'lowered to what is left of 300');
    assert.equal(r.usage?.completion_tokens, 100, 'the fake answers 100 tokens: not cut');
  });

  it('below a useful minimum the request is refused (insufficient_quota), not admitted with a useless answer', async () => {
    const err = await a.client('sk-low-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO }).catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError && err.status === 429 && err.code === 'insufficient_quota', String(err));
  });

  it('money: costPerMonth "0.001" caps the answer through the output price, then refuses with the money named', async () => {
    // input 10 / output 30 per 1M tokens: 10 and 30 micro-units per token.
    const r = await a.client('sk-money-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO });
    const cap = Math.floor((1000 - estimate * 10) / 30);
    assert.equal(lastBody(a)['max_completion_tokens'], cap);
    assert.equal(r.choices[0]?.finish_reason, 'length');
    // Reconciled with the real cost right after the response ends.
    const real = fakePrompt * 10 + cap * 30;
    await waitFor('reconciled money budget', async () => (await counter('money', 'costPerMonth')) === real);
    const spent = await counter('money', 'costPerMonth');
    assert.ok(spent <= 1000 + promptError * 10, `spent ${spent} of 1000`);
    // The access log line carries the exact cost of the request (decimal of the currency) and its tokens.
    await waitFor('access log line', async () => (await a.logs()).some((l) => l['msg'] === 'request' && l['consumer'] === 'default/money' && l['status'] === 200));
    const line = (await a.logs()).find((l) => l['msg'] === 'request' && l['consumer'] === 'default/money' && l['status'] === 200);
    assert.equal(line?.['cost'], String(real / 1e6));
    assert.equal(line?.['promptTokens'], fakePrompt);
    assert.equal(line?.['completionTokens'], cap);
    const err = await b.client('sk-money-0001').chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO }).catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.APIError && err.status === 429 && err.code === 'insufficient_quota', String(err));
    assert.match(err.message, /monthly budget \(costPerMonth\) of API key default\/money: limit 0\.001\d* USD/);
  });

  it('costPerDay counts in the key\'s calendar day and refuses with the daily budget named', async () => {
    // vllm-model is priced by the GatewayConfig default table (1 / 2 per 1M): 1 and 2 micro-units per token.
    const client = a.client('sk-daily-0001');
    let refused: unknown;
    for (let i = 0; i < 20 && refused === undefined; i++) {
      refused = await client.chat.completions.create({ model: 'vllm-model', messages: HELLO, max_tokens: 20 }).then(() => undefined, (e: unknown) => e);
    }
    assert.ok(refused instanceof OpenAI.APIError && refused.status === 429 && refused.code === 'insufficient_quota', String(refused));
    assert.match(refused.message, /daily budget \(costPerDay\)/);
    const day = new Date().toISOString().slice(0, 10);
    const spent = Number(await redis.client.get(`tollgate:{tollgate}:rl:default/daily|costPerDay|${day}`));
    assert.ok(spent > 0 && spent <= 500, `spent ${spent} of 500 micro-units`);
  });

  it('money mid-stream: concurrent streams that outgrow their reservations are stopped when the money runs out (midStreamPolicy error)', async (t) => {
    const fake = a.fakes['primary'] as NonNullable<Stack['fakes'][string]>;
    const client = a.client('sk-streams-0001');
    // Short answers first: the completion history makes reservations small (p95 of 5 tokens).
    fake.behaviour.chunks = 5;
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO });
    fake.behaviour.chunks = 400;
    fake.behaviour.chunkIntervalMs = 2;
    t.after(() => {
      fake.behaviour.chunks = 100;
      fake.behaviour.chunkIntervalMs = 0;
    });
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, async () => {
        try {
          const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO, stream: true, max_tokens: 400 });
          let n = 0;
          for await (const c of s) if (c.choices[0]?.delta.content) n++;
          return `complete ${n}`;
        } catch (err) {
          return err instanceof OpenAI.APIError && err.status === 429 ? 'refused' : `stopped: ${err instanceof Error ? err.message : String(err)}`;
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const spent = await counter('streams', 'costPerMonth');
    t.diagnostic(`spent ${spent} of 10000; ${outcomes.join(', ')}`);
    assert.ok(outcomes.some((o) => o.startsWith('stopped')), `some streams were stopped by the money budget: ${outcomes.join(', ')}`);
    // Bound: the limit plus, per stream in flight, the prompt estimate error and the chunk that crossed.
    assert.ok(spent <= 10_000 + 5 * (promptError * 10 + 30), `spent ${spent} of 10000`);
    assert.ok(spent >= 9_000, `the budget was used, spent ${spent}`);
  });

  it('an account\'s money budget holds across two gateways: concurrent children never overshoot it, every admitted answer is billed exactly', async (t) => {
    const fake = a.fakes['primary'] as NonNullable<Stack['fakes'][string]>;
    const fakeB = b.fakes['primary'] as NonNullable<Stack['fakes'][string]>;
    fake.behaviour.chunks = 40;
    fakeB.behaviour.chunks = 40;
    t.after(() => {
      fake.behaviour.chunks = 100;
      fakeB.behaviour.chunks = 100;
    });
    let admitted = 0;
    let refused = 0;
    let billed = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        const client = (w % 2 === 0 ? a : b).client(w % 4 < 2 ? 'sk-team-a-0001' : 'sk-team-b-0001');
        for (let i = 0; i < 6; i++) {
          try {
            const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO });
            admitted++;
            billed += (r.usage?.prompt_tokens ?? 0) * 10 + (r.usage?.completion_tokens ?? 0) * 30;
          } catch (err) {
            if (!(err instanceof OpenAI.APIError) || err.status !== 429 || err.code !== 'insufficient_quota') throw err;
            refused++;
          }
        }
      }),
    );
    // Concurrent requests can be refused while others' reservations are in flight (documented); once
    // they settled, one client spends what is left until the budget refuses it.
    const last = b.client('sk-team-b-0001');
    let lastError: unknown;
    for (let i = 0; i < 40 && lastError === undefined; i++) {
      try {
        const r = await last.chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO });
        admitted++;
        billed += (r.usage?.prompt_tokens ?? 0) * 10 + (r.usage?.completion_tokens ?? 0) * 30;
      } catch (err) {
        lastError = err;
      }
    }
    assert.ok(lastError instanceof OpenAI.APIError && lastError.code === 'insufficient_quota', String(lastError));
    await waitFor('reconciled team budget', async () => (await counter('team', 'costPerMonth')) === billed);
    const spent = await counter('team', 'costPerMonth');
    t.diagnostic(`admitted ${admitted}, refused concurrently ${refused}, billed ${billed} micro-units, budget counter ${spent} of 20000`);
    assert.ok(admitted > 0);
    assert.equal(spent, billed, 'the shared budget holds exactly what the provider billed');
    assert.ok(spent <= 20_000 + admitted * promptError * 10, `overshoot: ${spent} of 20000`);
    assert.ok(spent >= 20_000 - (estimate * 10 + 16 * 30), `a false refusal left ${20_000 - spent} unspent`);
    // tollgate_cost_total (micro-units) of both gateways together is the same money.
    let metric = 0;
    for (const s of [a, b]) {
      const text = await (await fetch(`${s.adminUrl}/metrics`)).text();
      for (const line of text.split('\n')) {
        if (line.startsWith('tollgate_cost_total{') && /consumer="default\/team-[ab]"/.test(line)) metric += Number(line.split(' ').at(-1));
      }
    }
    assert.equal(metric, billed);
  });
});
