/**
 * GET /v1/models and GET /v1/models/{model} for both client APIs through real Envoy: the official
 * `@anthropic-ai/sdk` (`models.list()` with auto-pagination, `models.retrieve()`, its error classes)
 * gets Anthropic's Models API shape, the official `openai` client OpenAI's; both list exactly the
 * same names, answered by the gateway without any upstream call, with creation times that survive a
 * config reload.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { hashKey } from '../../src/config/snapshot.js';
import { assertOpenAIError, assertSdkError, rawRequest, type RawResponse } from '../harness/http.js';
import { startStack, TEST_KEY, type Stack } from '../harness/stack.js';

const LIMITED_KEY = 'sk-models-limited-0001';
/** A creation time well before this process started (from the real now; whole seconds, as Kubernetes writes them). */
const EARLY = new Date(Math.floor((Date.now() - 400 * 86_400_000) / 1000) * 1000).toISOString().replace('.000Z', 'Z');

const key = (name: string, secret: string, extra: string): string =>
  `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name} }\nspec:\n  keyHash: "${hashKey(secret)}"\n${extra}---\n`;

const GATEWAY = (mappings: string): string => `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  modelMappings: { ${mappings} }
`;

const FILES = {
  'gateway.yaml': GATEWAY('alias-early: a-model'),
  // One provider with a creationTimestamp (as Kubernetes sets it), one without (a plain file config).
  'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: early, creationTimestamp: "${EARLY}" }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models: [{ name: a-model }, { name: org/slashed-model }]
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: late }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  models: [{ name: m1 }, { name: m2 }, { name: m3 }, { name: m4 }]
`,
  'keys.yaml': key('all', TEST_KEY, '') + key('limited', LIMITED_KEY, '  models: [a-model]\n'),
};

const ALL = ['a-model', 'alias-early', 'm1', 'm2', 'm3', 'm4', 'org/slashed-model'];

/** Asserts Anthropic's error shape with this status and type; returns the message. */
function assertAnthropicError(res: RawResponse, status: number, type: string): string {
  assert.equal(res.status, status, res.text);
  const body = JSON.parse(res.text) as { type?: unknown; error?: { type?: unknown; message?: unknown } };
  assert.deepEqual(Object.keys(body).sort(), ['error', 'type'], res.text);
  assert.equal(body.type, 'error');
  assert.equal(body.error?.type, type, res.text);
  assert.equal(typeof body.error?.message, 'string');
  return body.error?.message as string;
}

describe('GET /v1/models and /v1/models/{model}: Anthropic and OpenAI clients', () => {
  let stack: Stack;
  const startedSeconds = Math.floor(Date.now() / 1000);
  /** Query strings of the /v1/models requests the Anthropic client sent. */
  const sent: string[] = [];
  const anthropic = (apiKey = TEST_KEY): Anthropic =>
    new Anthropic({
      baseURL: stack.baseUrl,
      apiKey,
      maxRetries: 0,
      timeout: 30_000,
      fetch: (async (input: string | URL | Request, init?: RequestInit) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        sent.push(url.pathname + url.search);
        return fetch(input, init);
      }) as typeof fetch,
    });
  const openaiCreated = async (): Promise<Map<string, number>> => new Map((await stack.client().models.list()).data.map((m) => [m.id, m.created]));

  before(async () => {
    stack = await startStack({ files: FILES, fakes: { primary: {} } });
  });
  after(() => stack?.stop());

  it("the Anthropic SDK's models.list() auto-paginates with a small limit through exactly the OpenAI list, one request per page", async () => {
    sent.length = 0;
    const seen: Anthropic.ModelInfo[] = [];
    for await (const m of anthropic().models.list({ limit: 2 })) seen.push(m);
    assert.deepEqual(seen.map((m) => m.id), ALL);
    assert.deepEqual(sent, ['/v1/models?limit=2', '/v1/models?limit=2&after_id=alias-early', '/v1/models?limit=2&after_id=m2', '/v1/models?limit=2&after_id=m4']);
    const created = await openaiCreated();
    assert.deepEqual([...created.keys()], ALL, 'the OpenAI client lists the same names');
    for (const m of seen) {
      assert.deepEqual(Object.keys(m).sort(), ['created_at', 'display_name', 'id', 'type']);
      assert.equal(m.type, 'model');
      assert.equal(m.display_name, m.id);
      assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339');
      assert.equal(Date.parse(m.created_at) / 1000, created.get(m.id), `${m.id}: created_at and created agree`);
    }
    // The provider's creationTimestamp, for its models and the alias that leads to one.
    assert.deepEqual(seen.filter((m) => m.created_at === EARLY).map((m) => m.id), ['a-model', 'alias-early', 'org/slashed-model']);
    // A provider without one: when this gateway first loaded it.
    const m1 = created.get('m1') ?? 0;
    assert.ok(m1 >= startedSeconds - 1 && m1 <= Math.floor(Date.now() / 1000), `m1 created ${m1}, test started ${startedSeconds}`);

    const page = await anthropic().models.list({ limit: 3 });
    assert.deepEqual([page.data.map((m) => m.id), page.has_more, page.first_id, page.last_id], [['a-model', 'alias-early', 'm1'], true, 'a-model', 'm1']);
    // Backwards: the SDK follows first_id with before_id.
    const back: string[] = [];
    for await (const m of anthropic().models.list({ limit: 3, before_id: 'm3' })) back.push(m.id);
    assert.deepEqual(back, ['alias-early', 'm1', 'm2', 'a-model']);
    assert.equal(stack.fakes.primary!.requests.length, 0, 'answered by the gateway, nothing sent upstream');
  });

  it('the Anthropic SDK retrieves a model (a name with a slash too); an unknown or not allowed one is NotFoundError', async () => {
    const client = anthropic();
    assert.deepEqual(await client.models.retrieve('org/slashed-model'), { type: 'model', id: 'org/slashed-model', display_name: 'org/slashed-model', created_at: EARLY });
    assert.deepEqual(await client.models.retrieve('alias-early'), { type: 'model', id: 'alias-early', display_name: 'alias-early', created_at: EARLY });
    assert.equal((await anthropic(LIMITED_KEY).models.retrieve('a-model')).id, 'a-model');
    for (const [c, model] of [[client, 'nope'], [client, 'a-model/extra'], [anthropic(LIMITED_KEY), 'm1']] as const) {
      await assert.rejects(c.models.retrieve(model), (err: unknown) => {
        assert.ok(err instanceof Anthropic.NotFoundError, `${model}: ${String(err)}`);
        assert.equal(err.status, 404);
        assert.equal(err.type, 'not_found_error');
        return true;
      });
    }
    const limited: string[] = [];
    for await (const m of anthropic(LIMITED_KEY).models.list()) limited.push(m.id);
    assert.deepEqual(limited, ['a-model', 'alias-early']);
  });

  it("refusals are Anthropic-shaped for Anthropic's clients: bad limit 400, wrong key 401", async () => {
    for (const limit of [0, 1001]) {
      await assert.rejects(anthropic().models.list({ limit }), (err: unknown) => {
        assert.ok(err instanceof Anthropic.BadRequestError, String(err));
        assert.equal(err.type, 'invalid_request_error');
        return true;
      });
    }
    await assert.rejects(anthropic('sk-not-a-key').models.list(), (err: unknown) => {
      assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
      assert.equal(err.type, 'authentication_error');
      return true;
    });
    const headers = { 'anthropic-version': '2023-06-01' };
    assertAnthropicError(await rawRequest(stack.baseUrl, '/v1/models/m1', { headers }), 401, 'authentication_error');
    assertAnthropicError(await rawRequest(stack.baseUrl, '/v1/models?limit=x', { headers: { ...headers, 'x-api-key': TEST_KEY } }), 400, 'invalid_request_error');
    assertAnthropicError(await rawRequest(stack.baseUrl, '/v1/models?after_id=a&before_id=b', { headers: { ...headers, 'x-api-key': TEST_KEY } }), 400, 'invalid_request_error');
    assertAnthropicError(await rawRequest(stack.baseUrl, '/v1/models/m1', { method: 'DELETE', headers: { ...headers, 'x-api-key': TEST_KEY } }), 405, 'invalid_request_error');
    // Without anthropic-version: OpenAI's shape, and the paging parameters mean nothing.
    assertOpenAIError(await rawRequest(stack.baseUrl, '/v1/models/m1'), 401, 'missing_api_key');
    const openai = await rawRequest(stack.baseUrl, '/v1/models?limit=x', { headers: { 'x-api-key': TEST_KEY } });
    assert.equal(openai.status, 200, openai.text);
    assert.deepEqual(Object.keys(JSON.parse(openai.text) as object).sort(), ['data', 'object']);
  });

  it("the openai client's models.retrieve answers OpenAI's model object; unknown or not allowed is 404 model_not_found", async () => {
    const created = await openaiCreated();
    assert.deepEqual(await stack.client().models.retrieve('org/slashed-model'), { id: 'org/slashed-model', object: 'model', created: Date.parse(EARLY) / 1000, owned_by: 'tollgate' });
    assert.deepEqual(await stack.client().models.retrieve('m2'), { id: 'm2', object: 'model', created: created.get('m2'), owned_by: 'tollgate' });
    const unknown = await assertSdkError(stack.client().models.retrieve('nope'), 404, 'model_not_found');
    assert.equal(unknown.type, 'invalid_request_error');
    await assertSdkError(stack.client(LIMITED_KEY).models.retrieve('m1'), 404, 'model_not_found');
    await assertSdkError(stack.client('sk-not-a-key').models.retrieve('m1'), 401, 'invalid_api_key');
    assert.equal(stack.fakes.primary!.requests.length, 0, 'nothing sent upstream');
  });

  it('creation times stay put across a config reload; a new alias takes its target model time', async () => {
    const before = await openaiCreated();
    const version = Math.max(...(await stack.logs()).filter((l) => l['msg'] === 'config applied').map((l) => Number(l['version'])));
    // At least a second later, so a time taken from the reload would differ.
    await new Promise((r) => setTimeout(r, 1100));
    await stack.writeConfig('gateway.yaml', GATEWAY('alias-early: a-model, fast: m1'));
    await stack.waitForConfigVersion(version + 1);
    const afterReload = await openaiCreated();
    assert.deepEqual([...afterReload.keys()], ['a-model', 'alias-early', 'fast', 'm1', 'm2', 'm3', 'm4', 'org/slashed-model']);
    for (const [id, created] of before) assert.equal(afterReload.get(id), created, `${id} after the reload`);
    assert.equal(afterReload.get('fast'), before.get('m1'));
    const fast = await anthropic().models.retrieve('fast');
    assert.equal(Date.parse(fast.created_at) / 1000, before.get('m1'));
  });
});
