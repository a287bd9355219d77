/**
 * Transparent failover through real Envoy: the primary provider fails in different ways, the client
 * gets one good answer from the secondary, and each provider sees its own key and model name.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { APIError } from 'openai';
import type { FakeBehaviour } from '../../src/dev/fake-provider.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { twoProviders } from '../harness/resilience.js';
import { startStack, TEST_KEY, type Stack } from '../harness/stack.js';

const HEALTHY: FakeBehaviour = { latencyMs: 0, chunks: 3, chunkIntervalMs: 5, status: undefined, record: true };

function reset(stack: Stack, primary: Partial<FakeBehaviour>): void {
  for (const fake of Object.values(stack.fakes)) {
    Object.assign(fake.behaviour, HEALTHY, { retryAfterSeconds: undefined, resetBeforeHeaders: undefined, resetAfterChunks: undefined, hang: undefined });
    fake.requests.length = 0;
  }
  Object.assign(stack.fakes['primary']!.behaviour, primary);
}

function assertServedBySecondary(stack: Stack, primaryHit: boolean): void {
  const secondary = stack.fakes['secondary']!.received('/chat/completions');
  assert.equal(secondary.length, 1, 'the secondary got exactly one attempt');
  assert.equal(secondary[0]!.headers['authorization'], 'Bearer sk-upstream-secondary');
  assert.equal((secondary[0]!.body as { model: string }).model, 'secondary-model');
  assert.ok(!JSON.stringify(secondary[0]!.headers).includes(TEST_KEY), 'client key leaked upstream');
  const primary = stack.fakes['primary']!.received('/chat/completions');
  if (primaryHit) {
    assert.equal(primary.length, 1, 'the primary was tried once');
    assert.equal(primary[0]!.headers['authorization'], 'Bearer sk-upstream-primary');
    assert.equal((primary[0]!.body as { model: string }).model, 'primary-model');
  }
}

describe('failover to the next provider', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: twoProviders({ primaryExtra: '  firstByteTimeoutSeconds: 1\n' }),
      fakes: { primary: HEALTHY, secondary: HEALTHY },
    });
  });
  after(() => stack?.stop());
  beforeEach(() => reset(stack, {}));

  const faults: [string, Partial<FakeBehaviour>, boolean][] = [
    ['429', { status: 429 }, true],
    ['500', { status: 500 }, true],
    ['a reset before the first byte', { resetBeforeHeaders: true }, true],
    ['a hang before the first byte', { hang: true }, true],
  ];
  for (const [what, fault, primaryHit] of faults) {
    it(`primary answers ${what}: one 200 from the secondary (non-streaming)`, async () => {
      reset(stack, fault);
      const completion = await stack.client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(completion.model, 'secondary-model');
      assert.equal(completion.choices[0]?.message.content, 'Hello from the');
      assertServedBySecondary(stack, primaryHit);
    });
    it(`primary answers ${what}: one complete stream from the secondary (streaming)`, async () => {
      reset(stack, fault);
      const stream = await stack.client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], stream: true });
      let text = '';
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        assert.equal(chunk.model, 'secondary-model');
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(text, 'Hello from the');
      assert.equal(finish, 'stop');
      assertServedBySecondary(stack, primaryHit);
    });
  }

  it('logs the failover decision with its reason and counts it', async () => {
    reset(stack, { status: 503 });
    const { response } = await stack.client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
    const requestId = response.headers.get('x-request-id');
    let logs: Record<string, unknown>[] = [];
    await waitFor('the access log line', async () => {
      logs = await stack.logs();
      return logs.some((l) => l['msg'] === 'request' && l['requestId'] === requestId);
    });
    const failover = logs.find((l) => l['decision'] === 'failover' && l['requestId'] === requestId);
    assert.ok(failover, 'a failover decision is logged');
    assert.equal(failover['from'], 'default/primary#primary-model');
    assert.equal(failover['to'], 'default/secondary#secondary-model');
    assert.equal(failover['reason'], 'http_5xx');
    assert.equal(failover['status'], 503);
    const access = logs.find((l) => l['msg'] === 'request' && l['requestId'] === requestId)!;
    assert.equal(access['provider'], 'default/secondary');
    assert.equal(access['attempts'], 2);
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_failovers_total\{provider="default\/primary",model="primary-model",reason="http_5xx"\} [1-9]/);
  });

  it('all providers failing: one OpenAI-shaped error after the attempt limit (3), within the time bound', async () => {
    reset(stack, { status: 500 });
    stack.fakes['secondary']!.behaviour.status = 502;
    const started = Date.now();
    const err = await stack
      .client()
      .chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }] })
      .then(() => undefined, (e: unknown) => e);
    const elapsed = Date.now() - started;
    assert.ok(err instanceof APIError, `expected an API error, got ${String(err)}`);
    assert.equal(err.status, 503);
    const body = err.error as { message: string; type: string; code: string };
    assert.equal(body.code, 'provider_unavailable');
    assert.equal(body.type, 'api_error');
    assert.equal(body.message, "All 3 upstream attempts for the model 'chat' failed (HTTP 500, 502, 500). Retry later.");
    const attempts = stack.fakes['primary']!.requests.length + stack.fakes['secondary']!.requests.length;
    assert.equal(attempts, 3, 'exactly maxAttempts upstream attempts');
    // Default back-off: Envoy 25-250 ms between tries plus <= 100 ms before the repeat of a provider.
    assert.ok(elapsed < 3000, `took ${elapsed} ms`);
  });

  it('all providers failing, streaming: the same single error before any stream starts', async () => {
    reset(stack, { status: 503 });
    stack.fakes['secondary']!.behaviour.status = 429;
    const err = await stack
      .client()
      .chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], stream: true })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof APIError && err.status === 503, `got ${String(err)}`);
    assert.equal((err.error as { code: string }).code, 'provider_unavailable');
    assert.equal(stack.fakes['primary']!.requests.length + stack.fakes['secondary']!.requests.length, 3);
  });

  it("every provider throttling: the client gets a 429 (the last provider's, or provider_rate_limited with Retry-After when all rest), not the 503 summary", async () => {
    reset(stack, { status: 429 });
    stack.fakes['secondary']!.behaviour.status = 429;
    const err = await stack
      .client()
      .chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }] })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof APIError && err.status === 429, `got ${String(err)}`);
    assert.equal(stack.fakes['primary']!.requests.length + stack.fakes['secondary']!.requests.length, 3, 'every attempt was made');
    // With Retry-After on both, each rests after its 429: the third attempt has nowhere to go, and
    // the client gets a 429 with the wait (not the outage 503).
    reset(stack, { status: 429, retryAfterSeconds: 1 });
    Object.assign(stack.fakes['secondary']!.behaviour, { status: 429, retryAfterSeconds: 1 });
    const res = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(res.status, 429);
    const body = (await res.json()) as { error: { code: string; type: string } };
    assert.deepEqual([body.error.code, body.error.type], ['provider_rate_limited', 'rate_limit_error']);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(stack.fakes['primary']!.requests.length + stack.fakes['secondary']!.requests.length, 2, 'no provider asked while resting');
    // The secondary rests for its Retry-After (1 s): later tests must not see it resting.
    await new Promise((r) => setTimeout(r, 1100));
  });

  it('a client cannot raise the attempt limit with x-envoy-max-retries', async () => {
    reset(stack, { status: 500 });
    stack.fakes['secondary']!.behaviour.status = 500;
    const res = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json', 'x-envoy-max-retries': '9', 'x-envoy-retry-on': '4xx' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(res.status, 503);
    await res.text();
    assert.equal(stack.fakes['primary']!.requests.length + stack.fakes['secondary']!.requests.length, 3);
  });

  it('a failure after the first streamed byte is not retried: the client sees the stream break, not a clean end', async () => {
    reset(stack, { resetAfterChunks: 1, chunks: 3, chunkIntervalMs: 20 });
    const stream = await stack.client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], stream: true });
    let text = '';
    let finish: string | null | undefined;
    const err = await (async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
    })().then(() => undefined, (e: unknown) => e);
    assert.equal(text, 'Hello', 'the chunk sent before the break arrived');
    assert.equal(finish, undefined, 'no finish_reason: the stream did not end cleanly');
    assert.ok(err instanceof Error, 'the client sees an error');
    assert.equal(stack.fakes['secondary']!.requests.length, 0, 'no retry after the first byte');
  });
});

describe('shared state between the stages is released', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: twoProviders(), fakes: { primary: { ...HEALTHY, status: 500 }, secondary: { ...HEALTHY, chunks: 20, chunkIntervalMs: 50 } } });
  });
  after(() => stack?.stop());

  it('no request plan stays in memory after failovers, finished streams and clients that hang up', async () => {
    const client = stack.client();
    const ask = (stream: boolean, signal?: AbortSignal): Promise<unknown> =>
      client.chat.completions
        .create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], stream }, signal ? { signal } : {})
        .then(async (r) => {
          if (stream) for await (const _ of r as AsyncIterable<unknown>) if (signal?.aborted) break;
        });
    await Promise.all(Array.from({ length: 10 }, (_, i) => ask(i % 2 === 0)));
    // Clients that leave mid-stream, and before any answer (the secondary hangs).
    const early = Array.from({ length: 5 }, () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      return ask(true, ac.signal).catch(() => undefined);
    });
    await Promise.all(early);
    stack.fakes['secondary']!.behaviour.hang = true;
    const hung = Array.from({ length: 5 }, () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      return ask(false, ac.signal).catch(() => undefined);
    });
    await Promise.all(hung);
    await waitFor('plans released', async () => /tollgate_routing_plans 0\n/.test(await (await fetch(`${stack.adminUrl}/metrics`)).text()), 5000);
    stack.fakes['secondary']!.behaviour.hang = undefined;
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_upstream_outstanding_requests\{provider="default\/secondary",model="secondary-model"\} 0/);
  });
});

describe('streams that break after the first byte count against the provider', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: twoProviders({ resilience: '    circuitBreaker: { consecutiveFailures: 2, cooldownSeconds: 30 }' }),
      fakes: { primary: { ...HEALTHY, chunks: 10, chunkIntervalMs: 30 }, secondary: HEALTHY },
    });
  });
  after(() => stack?.stop());

  const stream = async (signal?: AbortSignal): Promise<void> => {
    const s = await stack.client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], stream: true }, signal ? { signal } : {});
    for await (const _ of s) if (signal?.aborted) break;
  };
  const broken = async (): Promise<Record<string, unknown>[]> => (await stack.logs()).filter((l) => l['decision'] === 'stream-broken');

  it('a client hanging up mid-stream is not counted; two provider-side breaks eject the provider', async () => {
    for (let i = 0; i < 3; i++) {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      await stream(ac.signal).catch(() => undefined);
    }
    stack.fakes['primary']!.behaviour.resetAfterChunks = 1;
    for (let i = 0; i < 2; i++) await stream().catch(() => undefined);
    await waitFor('both breaks reported by the access log', async () => (await broken()).length === 2, 5000);
    assert.ok((await broken()).every((l) => l['target'] === 'default/primary#primary-model'));
    await waitFor('the ejection', async () => (await stack.logs()).some((l) => l['decision'] === 'ejected' && l['reason'] === 'broken_stream'), 5000);
    stack.fakes['secondary']!.requests.length = 0;
    await stream();
    assert.equal(stack.fakes['secondary']!.received('/chat/completions').length, 1, 'the next request goes to the secondary');
  });
});

describe('retry budget', () => {
  let stack: Stack;
  before(async () => {
    // No retry budget at all: Envoy must refuse every retry, whatever the attempt limit says.
    stack = await startStack({
      files: twoProviders(),
      fakes: { primary: { ...HEALTHY, status: 500 }, secondary: HEALTHY },
      envoy: { retryBudgetPercent: 0, retryMinConcurrency: 0 },
    });
  });
  after(() => stack?.stop());

  it('caps retries: over budget, the first failure is the answer and Envoy counts the overflow', async () => {
    const err = await stack
      .client()
      .chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }] })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof APIError && err.status === 500, `expected the primary's 500, got ${String(err)}`);
    assert.equal(stack.fakes['secondary']!.requests.length, 0, 'no retry was allowed');
    const stats = await (await fetch(`${stack.envoyAdminUrl}/stats?filter=tollgate_attempts.upstream_rq_retry_overflow`)).text();
    assert.match(stats, /cluster\.tollgate_attempts\.upstream_rq_retry_overflow: [1-9]/);
  });
});
