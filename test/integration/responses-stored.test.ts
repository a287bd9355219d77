/**
 * Stored OpenAI Responses API responses through real Envoy + Tollgate with the official `openai`
 * SDK: `responses.retrieve`, `responses.delete`, `responses.inputItems.list`, `responses.cancel` and
 * `previous_response_id` reach the provider (and upstream model) that created the response, even when
 * failover made it the second choice; only the creating consumer (or an account above it) may touch
 * it; two gateways share the directory through a real Redis. The OpenAI fakes store what they answer
 * and 404 any id they did not store, so a misrouted request fails.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FakeProvider } from '../../src/dev/fake-provider.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertOpenAIError, assertSdkError, rawRequest } from '../harness/http.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startStack, TEST_KEY, type Stack } from '../harness/stack.js';
import { NEVER_OPEN_BREAKER_GATEWAY } from '../harness/provider-fixtures.js';
import { apiKeyDoc } from '../harness/key-docs.js';

const SIBLING_KEY = 'sk-resp-sibling-0001';
const ORG_KEY = 'sk-resp-org-0001';
const SLOW_KEY = 'sk-resp-slow-0001';
const TTL_SECONDS = 3600;

function provider(name: string, url: string, upstreamModel: string, priority: number): string {
  return `---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: ${name} }
spec:
  type: openai
  endpoint: "${url}"
  credentialSecretRef: { name: ${name}-cred, key: token }
  priority: ${priority}
  models:
    - { name: resp, upstreamModel: ${upstreamModel} }
---
apiVersion: v1
kind: Secret
metadata: { name: ${name}-cred }
stringData: { token: sk-upstream-${name} }
`;
}

function files(first: FakeProvider, second: FakeProvider): Record<string, string> {
  return {
    'keys.yaml': [
      apiKeyDoc('org', '', ORG_KEY),
      apiKeyDoc('team-a', '  parent: org', TEST_KEY),
      apiKeyDoc('team-b', '  parent: org', SIBLING_KEY),
      apiKeyDoc('slow', '  limits: { requestsPerMinute: 2 }', SLOW_KEY),
    ].join(''),
    'providers.yaml': provider('first', first.url, 'gpt-4.1', 0) + provider('second', second.url, 'gpt-4.1-mini', 1),
    'gateway.yaml': NEVER_OPEN_BREAKER_GATEWAY,
  };
}

describe('stored responses: retrieve, delete, input_items, cancel, previous_response_id', () => {
  let redis: RedisServer;
  let first: FakeProvider;
  let second: FakeProvider;
  let a: Stack;
  let b: Stack;
  before(async () => {
    redis = await startRedis();
    first = new FakeProvider({ chunks: 7, chunkIntervalMs: 0 }, 'first');
    second = new FakeProvider({ chunks: 4, chunkIntervalMs: 0 }, 'second');
    await first.start();
    await second.start();
    const args = ['--redis-url', redis.url, '--responses-ttl-seconds', String(TTL_SECONDS)];
    a = await startStack({ files: files(first, second), gatewayArgs: args });
    b = await startStack({ files: files(first, second), gatewayArgs: args });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await first?.stop();
    await second?.stop();
    await redis?.stop();
  });
  beforeEach(() => {
    for (const f of [first, second]) {
      Object.assign(f.behaviour, { status: undefined, failNext: undefined });
      f.requests.length = 0;
    }
  });

  /** A response created on the second provider: the first (priority 0) answers 503 once. */
  async function createOnSecond(extra: Record<string, unknown> = {}): Promise<string> {
    Object.assign(first.behaviour, { status: 503, failNext: 1 });
    const r = await a.client().responses.create({ model: 'resp', input: 'Remember: the code is 42.', ...extra });
    assert.equal(r.model, 'gpt-4.1-mini', 'created by the second provider');
    assert.ok(second.stored.has(r.id));
    first.requests.length = 0;
    second.requests.length = 0;
    return r.id;
  }

  it('created on the second provider after failover: retrieve and input_items go there, with its credential and nothing else', async () => {
    const id = await createOnSecond();
    const got = await a.client().responses.retrieve(id);
    assert.equal(got.id, id);
    assert.equal(got.model, 'gpt-4.1-mini');
    assert.equal(got.output_text, 'Hello from the Tollgate');
    const items = await a.client().responses.inputItems.list(id, { limit: 5 });
    assert.equal(items.data.length, 1);
    assert.equal(first.requests.length, 0, 'nothing reached the first provider');
    const seen = second.requests.map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(seen, [`GET /v1/responses/${id}`, `GET /v1/responses/${id}/input_items?limit=5`]);
    for (const r of second.requests) {
      assert.equal(r.headers['authorization'], 'Bearer sk-upstream-second');
      assert.equal(r.body, undefined);
    }
    // Logged and counted like any request, under the provider that stored it.
    await waitFor('retrieve metric', async () => {
      const metrics = await (await fetch(`${a.adminUrl}/metrics`)).text();
      return /tollgate_requests_total\{consumer="default\/team-a",provider="default\/second",model="resp",upstream_model="gpt-4.1-mini",status="200",api="responses_retrieve"\} 1/.test(metrics);
    });
  });

  it('another key gets 404 in OpenAI shape and nothing is sent; the account above the creator may read it', async () => {
    const id = await createOnSecond();
    const other = b.client(SIBLING_KEY);
    await assertSdkError(other.responses.retrieve(id), 404, 'response_not_found');
    await assertSdkError(other.responses.delete(id), 404, 'response_not_found');
    await assertSdkError(other.responses.inputItems.list(id), 404, 'response_not_found');
    await assertSdkError(other.responses.create({ model: 'resp', input: 'And the code?', previous_response_id: id }), 404, 'response_not_found');
    const raw = assertOpenAIError(await rawRequest(a.baseUrl, `/v1/responses/${id}`, { key: SIBLING_KEY }), 404, 'response_not_found');
    assert.equal(raw.type, 'invalid_request_error');
    assert.equal(raw.message, `Response with id '${id}' not found.`);
    assert.equal(first.requests.length + second.requests.length, 0);
    assert.equal((await a.client(ORG_KEY).responses.retrieve(id)).id, id);
    assertOpenAIError(await rawRequest(a.baseUrl, `/v1/responses/${id}`, { key: 'sk-wrong' }), 401, 'invalid_api_key');
  });

  it('an unknown id gets 404, on every endpoint, without reaching a provider', async () => {
    const c = a.client();
    await assertSdkError(c.responses.retrieve('resp_0123456789abcdef'), 404, 'response_not_found');
    await assertSdkError(c.responses.delete('resp_0123456789abcdef'), 404, 'response_not_found');
    await assertSdkError(c.responses.cancel('resp_0123456789abcdef'), 404, 'response_not_found');
    await assertSdkError(c.responses.inputItems.list('resp_0123456789abcdef'), 404, 'response_not_found');
    await assertSdkError(c.responses.create({ model: 'resp', input: 'x', previous_response_id: 'resp_0123456789abcdef' }), 404, 'response_not_found');
    assertOpenAIError(await rawRequest(a.baseUrl, '/v1/responses/not..an.id', { key: TEST_KEY }), 404, 'response_not_found');
    assertOpenAIError(await rawRequest(a.baseUrl, '/v1/responses/resp_1', { key: TEST_KEY, method: 'PUT', body: '{}' }), 405, 'method_not_allowed');
    assert.equal(first.requests.length + second.requests.length, 0);
  });

  it('two gateways sharing Redis: created (streamed) on A, retrieved and deleted on B, then unknown on A', async () => {
    Object.assign(first.behaviour, { status: 503, failNext: 1 });
    const stream = await a.client().responses.create({ model: 'resp', input: 'Hi', stream: true });
    let id = '';
    for await (const e of stream) if (e.type === 'response.completed') id = e.response.id;
    assert.ok(second.stored.has(id));
    const ttl = await redis.client.pttl(`tollgate:response:${id}`);
    assert.ok(ttl > (TTL_SECONDS - 60) * 1000 && ttl <= TTL_SECONDS * 1000, `TTL ${ttl} ms`);
    const onB = await b.client().responses.retrieve(id);
    assert.equal(onB.model, 'gpt-4.1-mini');
    await b.client().responses.delete(id);
    assert.ok(!second.stored.has(id), 'deleted at the provider');
    assert.equal(await redis.client.exists(`tollgate:response:${id}`), 0);
    await assertSdkError(a.client().responses.retrieve(id), 404, 'response_not_found');
  });

  it('previous_response_id pins the request to the storing provider (no failover); store: false may fail over', async () => {
    const id = await createOnSecond();
    const next = await a.client().responses.create({ model: 'resp', input: 'And the code?', previous_response_id: id });
    assert.equal(next.model, 'gpt-4.1-mini');
    assert.equal(first.requests.length, 0, 'the first (preferred) provider was skipped');
    assert.equal((second.received('/responses')[0]?.body as { previous_response_id?: string }).previous_response_id, id);
    // The storing provider fails: no other provider has the state, so the client gets the failure.
    second.behaviour.status = 503;
    const failed = await assertSdkError(a.client().responses.create({ model: 'resp', input: 'Again?', previous_response_id: id }), 503, 'provider_unavailable');
    assert.match(failed.message, /All 3 upstream attempts/);
    assert.equal(first.requests.length, 0, 'never failed over to the first provider');
    // store: false: the client carries its own state; failover to the first provider is allowed.
    await assertSdkError(a.client().responses.create({ model: 'resp', input: 'Again?', previous_response_id: id, store: false }), 404, 'previous_response_not_found');
    assert.equal(first.received('/responses').length, 1, 'failed over to the first provider');
  });

  it('cancel reaches the provider that queued a background response', async () => {
    const id = await createOnSecond({ background: true });
    const cancelled = await b.client().responses.cancel(id);
    assert.equal(cancelled.status, 'cancelled');
    assert.deepEqual(second.requests.map((r) => `${r.method} ${r.path}`), [`POST /v1/responses/${id}/cancel`]);
  });

  it('stored-response requests count against the key request-rate limits', async () => {
    const r = await a.client(SLOW_KEY).responses.create({ model: 'resp', input: 'Hi' });
    assert.equal((await a.client(SLOW_KEY).responses.retrieve(r.id)).id, r.id);
    await assertSdkError(a.client(SLOW_KEY).responses.retrieve(r.id), 429, 'rate_limit_exceeded');
  });

  it('Redis down: the replica that recorded a response still finds it (its local copy); another replica answers 503 response_store_unavailable', async () => {
    const id = await createOnSecond();
    await redis.kill();
    try {
      assert.equal((await a.client().responses.retrieve(id)).id, id);
      await assertSdkError(b.client().responses.retrieve(id), 503, 'response_store_unavailable');
    } finally {
      await redis.restart();
    }
    await waitFor('redis back for gateway B', async () => {
      try {
        return (await b.client().responses.retrieve(id)).id === id;
      } catch {
        return false;
      }
    });
  });

  it('created while Redis is down: the record is written once Redis is back, and the other replica then finds it', async () => {
    await redis.kill();
    let id: string;
    try {
      id = await createOnSecond();
      assert.equal((await a.client().responses.retrieve(id)).id, id, 'the recording replica serves it from its local copy');
    } finally {
      await redis.restart();
    }
    // Whatever the key prefix, exactly one key ends with this response's id.
    const recordKey = async (): Promise<string | undefined> => (await redis.client.keys(`*response:${id}`))[0];
    await waitFor('the record written after the outage', async () => (await recordKey()) !== undefined);
    assert.equal((await b.client().responses.retrieve(id)).id, id);
    const ttl = await redis.client.pttl((await recordKey()) as string);
    assert.ok(ttl > 0 && ttl <= TTL_SECONDS * 1000, `the record keeps what was left of its TTL (${ttl} ms)`);
  });
});
