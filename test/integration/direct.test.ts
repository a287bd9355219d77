/**
 * The direct path through real Envoy: a model with ONE provider is rewritten by the request stage and
 * sent straight to it (no attempt stage, no internal listener). Envoy's retries go to that same
 * provider, the client still gets one clear error when every try fails, and a stream that breaks
 * after its first byte still counts against the provider.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { APIError } from 'openai';
import type { FakeBehaviour } from '../../src/dev/fake-provider.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';
import { NEVER_OPEN_BREAKER_GATEWAY } from '../harness/provider-fixtures.js';

const HEALTHY: FakeBehaviour = { latencyMs: 0, chunks: 3, chunkIntervalMs: 5, status: undefined, record: true };
const ASK = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Hi' }] };

function files(): Record<string, string> {
  return {
    ...basicConfig(),
    'gateway.yaml': NEVER_OPEN_BREAKER_GATEWAY,
  };
}

/** tollgate_upstream_attempts_total of the primary provider with `result`. */
async function attemptsCounted(stack: Stack, result: string): Promise<number> {
  const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  const m = new RegExp(`^tollgate_upstream_attempts_total\\{provider="default/primary",model="gpt-4o-mini",result="${result}"\\} (\\d+)`, 'm').exec(metrics);
  return m ? Number(m[1]) : 0;
}

async function envoyStat(stack: Stack, name: string): Promise<number> {
  const text = await (await fetch(`${stack.envoyAdminUrl}/stats?filter=^${name.replace(/\./g, '\\.')}$`)).text();
  const m = new RegExp(`${name.replace(/\./g, '\\.')}: (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

describe('one provider: the direct path', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: files(), fakes: { primary: HEALTHY } });
  });
  after(() => stack?.stop());
  beforeEach(() => {
    Object.assign(stack.fakes['primary']!.behaviour, HEALTHY, { failNext: undefined, resetAfterChunks: undefined });
    stack.fakes['primary']!.requests.length = 0;
  });

  it('goes straight to the provider: no attempt stage, one ext_proc stream per request', async () => {
    const attemptsBefore = await envoyStat(stack, 'cluster.tollgate_attempts.upstream_rq_total');
    const directBefore = await envoyStat(stack, 'cluster.upstream_http.upstream_rq_total');
    const completion = await stack.client().chat.completions.create(ASK);
    assert.equal(completion.choices[0]?.message.content, 'Hello from the');
    const stream = await stack.client().chat.completions.create({ ...ASK, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Hello from the');
    assert.equal(await envoyStat(stack, 'cluster.tollgate_attempts.upstream_rq_total'), attemptsBefore, 'the attempt listener was not used');
    assert.equal(await envoyStat(stack, 'cluster.upstream_http.upstream_rq_total'), directBefore + 2);
    const seen = stack.fakes['primary']!.received('/chat/completions');
    assert.equal(seen.length, 2);
    for (const r of seen) {
      assert.equal(r.headers['authorization'], 'Bearer sk-upstream-primary');
      assert.ok(!JSON.stringify(r.headers).includes(TEST_KEY), 'client key leaked upstream');
      for (const internal of ['x-tollgate-route', 'x-tollgate-plan', 'x-envoy-max-retries', 'x-envoy-upstream-rq-per-try-timeout-ms']) {
        assert.equal(r.headers[internal], undefined, `${internal} reached the provider`);
      }
    }
  });

  it('a failing try is retried on the same provider: the client gets the 200, the access log and health count the tries', async () => {
    const retriedBefore = await attemptsCounted(stack, 'retried');
    const successBefore = await attemptsCounted(stack, 'success');
    Object.assign(stack.fakes['primary']!.behaviour, { status: 500, failNext: 2 });
    const { data, response } = await stack.client().chat.completions.create(ASK).withResponse();
    assert.equal(data.choices[0]?.message.content, 'Hello from the');
    assert.equal(stack.fakes['primary']!.received('/chat/completions').length, 3);
    assert.equal(response.headers.get('x-envoy-attempt-count'), null, 'Envoy internals are not shown to clients');
    const requestId = response.headers.get('x-request-id');
    let access: Record<string, unknown> | undefined;
    await waitFor('the access log line', async () => {
      access = (await stack.logs()).find((l) => l['msg'] === 'request' && l['requestId'] === requestId);
      return access !== undefined;
    });
    assert.equal(access?.['attempts'], 3);
    assert.equal(access?.['status'], 200);
    // Health saw every try: the two Envoy retried, then the success.
    assert.equal(await attemptsCounted(stack, 'retried'), retriedBefore + 2);
    assert.equal(await attemptsCounted(stack, 'success'), successBefore + 1);
  });

  it('every try failing: one OpenAI-shaped error after the attempt limit; a client cannot raise it', async () => {
    stack.fakes['primary']!.behaviour.status = 500;
    const res = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json', 'x-envoy-max-retries': '9', 'x-envoy-retry-on': '4xx' },
      body: JSON.stringify(ASK),
    });
    assert.equal(res.status, 503);
    const body = (await res.json()) as { error: { message: string; type: string; code: string } };
    assert.equal(body.error.code, 'provider_unavailable');
    assert.equal(body.error.type, 'api_error');
    assert.equal(body.error.message, "All 3 upstream attempts for the model 'gpt-4o-mini' failed (last: HTTP 500). Retry later.");
    assert.equal(stack.fakes['primary']!.received('/chat/completions').length, 3, 'exactly maxAttempts tries');
  });

  it('a single try (no retry possible) passes the provider error through', async () => {
    Object.assign(stack.fakes['primary']!.behaviour, { status: 400 });
    const err = await stack.client().chat.completions.create(ASK).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof APIError && err.status === 400, `got ${String(err)}`);
    assert.equal(stack.fakes['primary']!.received('/chat/completions').length, 1);
  });

  it('a stream that breaks after its first byte is reported against the provider (Envoy access log)', async () => {
    Object.assign(stack.fakes['primary']!.behaviour, { resetAfterChunks: 1, chunks: 3, chunkIntervalMs: 20 });
    const stream = await stack.client().chat.completions.create({ ...ASK, stream: true });
    const err = await (async () => {
      for await (const _ of stream) {
        // drain until the break
      }
    })().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof Error, 'the client sees the stream break');
    await waitFor('the break reported by the access log', async () =>
      (await stack.logs()).some((l) => l['decision'] === 'stream-broken' && l['target'] === 'default/primary#gpt-4o-mini'), 5000);
    assert.equal(stack.fakes['primary']!.received('/chat/completions').length, 1, 'no retry after the first byte');
  });
});
