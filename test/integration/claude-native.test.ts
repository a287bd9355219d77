/**
 * Claude on AWS Bedrock and on Google Vertex AI behind the Anthropic front door (`/v1/messages`),
 * sent natively: the official `@anthropic-ai/sdk` talks to real Envoy + Tollgate, which sends the
 * client's Messages body to Bedrock's InvokeModel / InvokeModelWithResponseStream (SigV4, recomputed
 * by the fake) or to Vertex AI's rawPredict / streamRawPredict (a bearer token from the fake token
 * endpoint), with only the cloud's top-level edits. Prompt caching, signed thinking, betas and token
 * counting reach the cloud; cache tokens come back in the usage and in the gateway's accounting;
 * cloud errors come back in Anthropic's shape; a non-Claude Bedrock model is still translated.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { waitFor } from '../../src/dev/local-stack.js';
import { rawRequest, type RawResponse } from '../harness/http.js';
import { startStack, basicConfig, TEST_KEY, type Stack } from '../harness/stack.js';
import { ANTHROPIC_WEATHER_TOOL, NEVER_OPEN_BREAKER_GATEWAY } from '../harness/provider-fixtures.js';

const AWS = { accessKeyId: 'AKIDFAKEBEDROCK', secretAccessKey: 'fake-secret-access-key', sessionToken: 'fake-session-token' };
const BEDROCK_CLAUDE = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const VERTEX_CLAUDE = 'claude-sonnet-4-5@20250929';
const EMAIL = 'tollgate@fake-project.iam.gserviceaccount.com';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
/** 1 micro-unit per input token, 2 per token written to the cache, 0 per token read from it: the cost shows which is which. */
const PRICING = '{ input: "1", output: "0", cachedInputRead: "0", cachedInputWrite: "2" }';

const SERVICE_ACCOUNT = JSON.stringify({
  type: 'service_account',
  project_id: 'fake-project',
  private_key_id: 'k1',
  private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  client_email: EMAIL,
  token_uri: '{{FAKE_ORIGIN:tokens}}/token',
});

const FILES: Record<string, string> = {
  'keys.yaml': basicConfig()['keys.yaml'] as string,
  'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bedrock }
spec:
  type: aws-bedrock
  endpoint: "{{FAKE:bed}}"
  region: eu-central-1
  credentialSecretRef: { name: aws, key: credentials }
  models:
    - { name: bclaude, upstreamModel: "${BEDROCK_CLAUDE}", pricing: ${PRICING} }
    - { name: bnova, upstreamModel: "amazon.nova-pro-v1:0" }
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: vertex }
spec:
  type: gcp-vertex-ai
  endpoint: "{{FAKE:vclaude}}"
  credentialSecretRef: { name: gcp, key: sa }
  models:
    - { name: vclaude, upstreamModel: "${VERTEX_CLAUDE}", pricing: ${PRICING} }
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: openai-first }
spec:
  type: openai
  endpoint: "{{FAKE:primary}}"
  credentialSecretRef: { name: oai, key: token }
  priority: 0
  models:
    - { name: fo, upstreamModel: gpt-4o }
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bedrock-second }
spec:
  type: aws-bedrock
  endpoint: "{{FAKE:bed}}"
  region: eu-central-1
  credentialSecretRef: { name: aws, key: credentials }
  priority: 1
  models:
    - { name: fo, upstreamModel: "global.anthropic.claude-sonnet-4-5-20250929-v1:0" }
---
apiVersion: v1
kind: Secret
metadata: { name: aws }
stringData:
  credentials: '${JSON.stringify(AWS)}'
---
apiVersion: v1
kind: Secret
metadata: { name: gcp }
stringData:
  sa: '${SERVICE_ACCOUNT}'
---
apiVersion: v1
kind: Secret
metadata: { name: oai }
stringData: { token: sk-upstream-oai }
`,
  'gateway.yaml': NEVER_OPEN_BREAKER_GATEWAY,
};

/** What a user compares between a streamed and a non-streamed message (ids differ by design). */
function essence(m: Anthropic.Message): unknown {
  return { type: m.type, role: m.role, model: m.model, content: m.content, stop_reason: m.stop_reason, output_tokens: m.usage.output_tokens };
}

function assertAnthropicError(res: RawResponse, status: number, type: string): string {
  assert.equal(res.status, status, res.text);
  const body = JSON.parse(res.text) as { type?: unknown; error?: { type?: unknown; message?: unknown } };
  assert.deepEqual(Object.keys(body).sort(), ['error', 'type'], res.text);
  assert.equal(body.type, 'error');
  assert.equal(body.error?.type, type, res.text);
  return String(body.error?.message);
}

describe('Claude on Bedrock and Vertex AI through /v1/messages, natively', () => {
  let stack: Stack;
  let anthropic: Anthropic;
  before(async () => {
    stack = await startStack({
      files: FILES,
      fakes: { primary: { chunks: 3, chunkIntervalMs: 0 } },
      bedrockFakes: { bed: { ...AWS, region: 'eu-central-1', writeBytes: 11 } },
      geminiFakes: { tokens: { vertex: { clientEmail: EMAIL, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() } } },
      anthropicFakes: { vclaude: { writeBytes: 5, vertex: { authorize: (token) => (stack.gemini['tokens']?.tokens.get(token) ?? 0) > Date.now() } } },
    });
    anthropic = new Anthropic({ baseURL: stack.baseUrl, apiKey: TEST_KEY, maxRetries: 0, timeout: 30_000 });
  });
  after(() => stack?.stop());
  beforeEach(() => {
    Object.assign(stack.bedrock['bed']!.behaviour, { status: undefined, failNext: undefined, streamException: undefined, countTokensUnsupported: [], errorType: undefined });
    stack.bedrock['bed']!.requests.length = 0;
    Object.assign(stack.anthropic['vclaude']!.behaviour, { status: undefined, failNext: undefined });
    stack.anthropic['vclaude']!.requests.length = 0;
    Object.assign(stack.fakes['primary']!.behaviour, { status: undefined, failNext: undefined });
    stack.fakes['primary']!.requests.length = 0;
  });

  /** The last request the cloud behind `model` received: path, headers, parsed body, status. */
  const lastSent = (model: 'bclaude' | 'vclaude'): { path: string; headers: Readonly<Record<string, unknown>>; body: Record<string, unknown>; status: number } => {
    const got = model === 'bclaude' ? stack.bedrock['bed']!.received() : stack.anthropic['vclaude']!.received();
    const last = got.at(-1);
    assert.ok(last, `nothing reached the cloud of ${model}`);
    return { path: last.path, headers: last.headers, body: last.body as Record<string, unknown>, status: last.status };
  };

  const metric = async (name: string, model: string, extra = ''): Promise<number> => {
    const text = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    const provider = model === 'bclaude' ? 'default/bedrock' : 'default/vertex';
    const re = new RegExp(`^${name}\\{consumer="default/team-a",(?:model="${model}",provider="${provider}"|provider="${provider}",model="${model}")${extra}\\} (\\d+)`, 'm');
    return Number(re.exec(text)?.[1] ?? 0);
  };

  for (const model of ['bclaude', 'vclaude'] as const) {
    const cloud = model === 'bclaude' ? 'Bedrock' : 'Vertex AI';

    it(`${cloud}: non-streamed and streamed answers agree; the cloud gets the client's body with only its own edits`, async () => {
      const params = { model, max_tokens: 64, system: 'Be brief.', temperature: 0.5, messages: [{ role: 'user' as const, content: 'Hi' }] };
      const plain = await anthropic.messages.create(params);
      const first = lastSent(model);
      const types: string[] = [];
      const final = await anthropic.messages.stream(params).on('streamEvent', (e) => types.push(e.type)).finalMessage();
      const second = lastSent(model);
      assert.deepEqual(essence(final), essence(plain));
      assert.deepEqual(plain.content, [{ type: 'text', text: model === 'bclaude' ? 'Hello from the fake Bedrock model.' : 'Hello from the fake Anthropic model.' }]);
      assert.deepEqual(types.slice(0, 2), ['message_start', 'content_block_start']);
      assert.equal(types.at(-1), 'message_stop');
      assert.equal(first.status, 200);
      assert.equal(second.status, 200);
      if (model === 'bclaude') {
        assert.match(plain.id, /^msg_bdrk_/, 'the answer is Claude-on-Bedrock\u2019s own message');
        assert.equal(first.path, `/model/${encodeURIComponent(BEDROCK_CLAUDE)}/invoke`);
        assert.equal(second.path, `/model/${encodeURIComponent(BEDROCK_CLAUDE)}/invoke-with-response-stream`);
        assert.deepEqual(first.body, { anthropic_version: 'bedrock-2023-05-31', max_tokens: 64, system: 'Be brief.', temperature: 0.5, messages: [{ role: 'user', content: 'Hi' }] });
        assert.deepEqual(second.body, first.body, 'no stream flag in a Bedrock body: the operation says it');
        assert.match(String(first.headers['authorization']), /^AWS4-HMAC-SHA256 Credential=AKIDFAKEBEDROCK\//);
      } else {
        assert.deepEqual([first.path.split(':').at(-1), second.path.split(':').at(-1)], ['rawPredict', 'streamRawPredict']);
        assert.ok(first.path.endsWith(`/publishers/anthropic/models/${encodeURIComponent(VERTEX_CLAUDE)}:rawPredict`), first.path);
        assert.deepEqual(first.body, { anthropic_version: 'vertex-2023-10-16', max_tokens: 64, system: 'Be brief.', temperature: 0.5, messages: [{ role: 'user', content: 'Hi' }] });
        assert.equal(second.body['stream'], true);
        assert.match(String(first.headers['authorization']), /^Bearer ya29\.fake-/);
      }
      for (const sent of [first, second]) {
        assert.equal(sent.headers['anthropic-version'], undefined, 'the version is in the body');
        assert.equal(sent.headers['x-api-key'], undefined);
        assert.ok(!JSON.stringify(sent.headers).includes(TEST_KEY), 'client key leaked upstream');
      }
    });

    it(`${cloud}: cache_control reaches the cloud; cache writes and reads come back in usage and in the gateway's cost and tokens`, async () => {
      const system: Anthropic.TextBlockParam[] = [{ type: 'text', text: `You are a careful assistant for ${model}. ${'Policy line. '.repeat(200)}`, cache_control: { type: 'ephemeral' } }];
      const params = { model, max_tokens: 64, system, messages: [{ role: 'user' as const, content: `Hi ${Date.now()}` }] };
      const costBefore = await metric('tollgate_cost_total', model);
      const promptBefore = await metric('tollgate_tokens_total', model, ',kind="prompt"');
      const written = await anthropic.messages.create(params);
      assert.deepEqual(lastSent(model).body['system'], system, 'cache_control reached the cloud unchanged');
      const read = await anthropic.messages.stream({ ...params, messages: [{ role: 'user', content: 'Another question' }] }).finalMessage();
      assert.ok((written.usage.cache_creation_input_tokens ?? 0) > 500, JSON.stringify(written.usage));
      assert.equal(written.usage.cache_read_input_tokens ?? 0, 0);
      assert.equal(read.usage.cache_read_input_tokens, written.usage.cache_creation_input_tokens, 'the same prefix is read back');
      assert.equal(read.usage.cache_creation_input_tokens ?? 0, 0);
      const u = [written.usage, read.usage];
      const prompt = u.reduce((n, x) => n + x.input_tokens + (x.cache_creation_input_tokens ?? 0) + (x.cache_read_input_tokens ?? 0), 0);
      // Input at 1, cache writes at 2, cache reads at 0 micro-units per token.
      const cost = u.reduce((n, x) => n + x.input_tokens + 2 * (x.cache_creation_input_tokens ?? 0), 0);
      let seen = { cost: 0, prompt: 0 };
      await waitFor('usage accounted with cache tokens', async () => {
        seen = { cost: (await metric('tollgate_cost_total', model)) - costBefore, prompt: (await metric('tollgate_tokens_total', model, ',kind="prompt"')) - promptBefore };
        return seen.cost === cost && seen.prompt === prompt;
      }).catch(() => assert.fail(`accounted ${JSON.stringify(seen)}, expected ${JSON.stringify({ cost, prompt })}`));
    });

    for (const streaming of [false, true]) {
      it(`${cloud}: a signed thinking block comes back (${streaming ? 'streamed' : 'non-streamed'}) and goes back unchanged in the tool loop`, async () => {
        const ask = [{ role: 'user' as const, content: 'Weather in Paris?' }];
        const params = { model, max_tokens: 4000, thinking: { type: 'enabled' as const, budget_tokens: 2048 }, tools: [ANTHROPIC_WEATHER_TOOL], messages: ask };
        const first = streaming ? await anthropic.messages.stream(params).finalMessage() : await anthropic.messages.create(params);
        assert.deepEqual(first.content.map((b) => b.type), ['thinking', 'tool_use']);
        const thinking = first.content[0]!;
        assert.ok(thinking.type === 'thinking' && /^sig_/.test(thinking.signature), JSON.stringify(thinking));
        const use = first.content[1]!;
        assert.ok(use.type === 'tool_use');
        const answer = await anthropic.messages.create({ ...params, messages: [...ask, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] }] });
        const text = answer.content.find((b) => b.type === 'text');
        assert.equal(text?.type === 'text' ? text.text : '', 'Tool said: sunny');
        const sent = lastSent(model);
        assert.equal(sent.status, 200);
        // The fake checks the signature against the text: the block went back byte for byte.
        assert.deepEqual((sent.body['messages'] as { content: unknown[] }[])[1]!.content[0], { type: 'thinking', thinking: thinking.thinking, signature: thinking.signature });
      });
    }

    it(`${cloud}: anthropic-beta reaches the cloud (${model === 'bclaude' ? 'anthropic_beta in the body' : 'the header'}); count_tokens is the cloud's count`, async () => {
      await anthropic.messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }, { headers: { 'anthropic-beta': 'context-1m-2025-08-07, token-efficient-tools-2025-02-19' } });
      const sent = lastSent(model);
      if (model === 'bclaude') {
        assert.deepEqual(sent.body['anthropic_beta'], ['context-1m-2025-08-07', 'token-efficient-tools-2025-02-19']);
        assert.equal(sent.headers['anthropic-beta'], undefined);
      } else {
        assert.equal(sent.headers['anthropic-beta'], 'context-1m-2025-08-07, token-efficient-tools-2025-02-19');
        assert.equal(sent.body['anthropic_beta'], undefined);
      }
      const counted = await anthropic.messages.countTokens({ model, system: 'Count me.', messages: [{ role: 'user', content: 'Hello there' }] });
      const count = lastSent(model);
      assert.equal(count.status, 200);
      if (model === 'bclaude') {
        // CountTokens takes foundation model ids: the inference profile's prefix is dropped.
        assert.equal(count.path, `/model/${encodeURIComponent('anthropic.claude-sonnet-4-5-20250929-v1:0')}/count-tokens`);
        const input = (count.body['input'] as { invokeModel: { body: string } }).invokeModel.body;
        const inner = Buffer.from(input, 'base64');
        assert.deepEqual(JSON.parse(inner.toString('utf8')), { anthropic_version: 'bedrock-2023-05-31', max_tokens: 1, system: 'Count me.', messages: [{ role: 'user', content: 'Hello there' }] });
        assert.equal(counted.input_tokens, Math.ceil(inner.length / 4), 'the answer is Bedrock\u2019s count');
      } else {
        assert.match(count.path, /\/publishers\/anthropic\/models\/count-tokens:rawPredict$/);
        assert.deepEqual(count.body, { anthropic_version: 'vertex-2023-10-16', model: VERTEX_CLAUDE, system: 'Count me.', messages: [{ role: 'user', content: 'Hello there' }] });
        assert.ok(counted.input_tokens > 0);
      }
    });

    it(`${cloud}: a request the cloud refuses comes back as Anthropic's 400 with the cloud's message`, async () => {
      const res = await rawRequest(stack.baseUrl, '/v1/messages', {
        headers: { 'x-api-key': TEST_KEY },
        body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'forever' } }] }] }),
      });
      const message = assertAnthropicError(res, 400, 'invalid_request_error');
      assert.match(message, /cache_control/);
      assert.equal(lastSent(model).status, 400);
    });
  }

  it("Bedrock: a model CountTokens refuses gets the gateway's estimate, marked as one; other 400s stay errors", async () => {
    stack.bedrock['bed']!.behaviour.countTokensUnsupported = ['anthropic.claude-sonnet-4-5-20250929-v1:0'];
    const short = { model: 'bclaude', messages: [{ role: 'user' as const, content: 'Hello there' }] };
    const long = { model: 'bclaude', system: 'You are a careful assistant who counts.', messages: [{ role: 'user' as const, content: 'Hello there, please count every one of these words for me.' }] };
    const counted = await anthropic.messages.countTokens(short);
    assert.equal(stack.bedrock['bed']!.requests.at(-1)?.status, 400, 'Bedrock was asked and refused');
    assert.ok(counted.input_tokens > 0);
    const longer = await anthropic.messages.countTokens(long);
    assert.ok(longer.input_tokens > counted.input_tokens, `${longer.input_tokens} > ${counted.input_tokens}`);
    const raw = await rawRequest(stack.baseUrl, '/v1/messages/count_tokens', { headers: { 'x-api-key': TEST_KEY }, body: JSON.stringify(short) });
    assert.equal(raw.status, 200, raw.text);
    assert.equal(raw.headers.get('x-tollgate-token-count'), 'estimate');
    assert.deepEqual(JSON.parse(raw.text), { input_tokens: counted.input_tokens });
    // A model CountTokens covers: the cloud's count, not marked.
    stack.bedrock['bed']!.behaviour.countTokensUnsupported = [];
    const exact = await rawRequest(stack.baseUrl, '/v1/messages/count_tokens', { headers: { 'x-api-key': TEST_KEY }, body: JSON.stringify(short) });
    assert.equal(exact.status, 200, exact.text);
    assert.equal(exact.headers.get('x-tollgate-token-count'), null);
    // A body Bedrock refuses for another reason stays the client's 400, in Anthropic's shape.
    const bad = await rawRequest(stack.baseUrl, '/v1/messages/count_tokens', {
      headers: { 'x-api-key': TEST_KEY },
      body: JSON.stringify({ model: 'bclaude', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'forever' } }] }] }),
    });
    assert.match(assertAnthropicError(bad, 400, 'invalid_request_error'), /cache_control/);
    assert.equal(bad.headers.get('x-tollgate-token-count'), null);
    // The gateway stays healthy.
    assert.equal((await anthropic.messages.create({ model: 'bclaude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] })).stop_reason, 'end_turn');
  });

  it('Bedrock: ThrottlingException once is retried invisibly; on every attempt the client gets Anthropic\'s 429', async () => {
    Object.assign(stack.bedrock['bed']!.behaviour, { status: 429, failNext: 1 });
    const ok = await anthropic.messages.create({ model: 'bclaude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(ok.stop_reason, 'end_turn');
    assert.deepEqual(stack.bedrock['bed']!.received().map((r) => r.status), [429, 200]);
    Object.assign(stack.bedrock['bed']!.behaviour, { status: 429, failNext: undefined });
    const res = await rawRequest(stack.baseUrl, '/v1/messages', { headers: { 'x-api-key': TEST_KEY }, body: JSON.stringify({ model: 'bclaude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }) });
    // Throttled on every attempt: Anthropic's 429 rate_limit_error, as Claude itself would answer.
    assertAnthropicError(res, 429, 'rate_limit_error');
  });

  it('every attempt failing: the SDK gets what Claude would send for that class (429 rate_limit_error, 529 overloaded_error), other failures one 503', async () => {
    const ask = (model: string): Promise<unknown> => anthropic.messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }).then(() => undefined, (e: unknown) => e);
    const expect = async (model: string, status: number, type: string, name: string): Promise<void> => {
      const err = await ask(model);
      assert.ok(err instanceof Anthropic.APIError, `${model}: ${String(err)}`);
      assert.equal(err.status, status, `${model}: ${String(err)}`);
      assert.equal((err.error as { error?: { type?: string } }).error?.type, type);
      assert.equal(err.constructor.name, name);
    };
    const bed = stack.bedrock['bed']!.behaviour;
    Object.assign(bed, { status: 429, errorType: 'ThrottlingException' });
    await expect('bclaude', 429, 'rate_limit_error', 'RateLimitError');
    Object.assign(bed, { status: 429, errorType: 'ModelNotReadyException' });
    await expect('bclaude', 529, 'overloaded_error', 'OverloadedError');
    Object.assign(bed, { status: 503, errorType: undefined });
    await expect('bclaude', 529, 'overloaded_error', 'OverloadedError');
    assert.equal(stack.bedrock['bed']!.received().filter((r) => r.status === 503).length, 3, 'each class after every attempt (maxAttempts 3)');
    Object.assign(bed, { status: 500 });
    const summary = await rawRequest(stack.baseUrl, '/v1/messages', { headers: { 'x-api-key': TEST_KEY }, body: JSON.stringify({ model: 'bclaude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }) });
    assert.match(assertAnthropicError(summary, 503, 'overloaded_error'), /All 3 upstream attempts/);
    Object.assign(bed, { status: undefined });
    Object.assign(stack.anthropic['vclaude']!.behaviour, { status: 529 });
    await expect('vclaude', 529, 'overloaded_error', 'OverloadedError');
    Object.assign(stack.anthropic['vclaude']!.behaviour, { status: 429 });
    await expect('vclaude', 429, 'rate_limit_error', 'RateLimitError');
    // A streamed request fails the same way before its stream starts.
    Object.assign(bed, { status: 429, errorType: 'ThrottlingException' });
    await assert.rejects(anthropic.messages.stream({ model: 'bclaude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }).finalMessage(), (e: unknown) => e instanceof Anthropic.RateLimitError);
  });

  it('Bedrock: a throttlingException in the middle of the stream ends it with an Anthropic error event', async () => {
    Object.assign(stack.bedrock['bed']!.behaviour, { streamException: { name: 'throttlingException', afterEvents: 3 } });
    const res = await fetch(`${stack.baseUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': TEST_KEY, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'bclaude', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(res.status, 200);
    const events = (await res.text()).split('\n\n').filter((e) => e !== '');
    assert.deepEqual(events.map((e) => /^event: (\S+)/.exec(e)?.[1]), ['message_start', 'ping', 'content_block_start', 'error']);
    assert.equal(events.at(-1), 'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"Too many tokens, please wait before trying again."}}');
    await assert.rejects(anthropic.messages.stream({ model: 'bclaude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }).finalMessage(), /Too many tokens/);
  });

  it("Vertex AI: Google's RESOURCE_EXHAUSTED once is retried invisibly; always, one Anthropic-shaped error", async () => {
    Object.assign(stack.anthropic['vclaude']!.behaviour, { status: 429, failNext: 1 });
    const ok = await anthropic.messages.create({ model: 'vclaude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(ok.stop_reason, 'end_turn');
    Object.assign(stack.anthropic['vclaude']!.behaviour, { status: 429, failNext: undefined });
    const res = await rawRequest(stack.baseUrl, '/v1/messages', { headers: { 'x-api-key': TEST_KEY }, body: JSON.stringify({ model: 'vclaude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }) });
    assertAnthropicError(res, 429, 'rate_limit_error');
  });

  for (const streaming of [false, true]) {
    it(`cross-type failover (${streaming ? 'streamed' : 'non-streamed'}): OpenAI answers 429, Claude on Bedrock serves natively, one answer for the client`, async () => {
      stack.fakes['primary']!.behaviour.status = 429;
      const params = { model: 'fo', max_tokens: 32, messages: [{ role: 'user' as const, content: 'Hi' }] };
      const m = streaming ? await anthropic.messages.stream(params).finalMessage() : await anthropic.messages.create(params);
      assert.match(m.id, /^msg_bdrk_/);
      assert.deepEqual(m.content, [{ type: 'text', text: 'Hello from the fake Bedrock model.' }]);
      assert.equal(stack.fakes['primary']!.received('/chat/completions').length, 1);
      const got = stack.bedrock['bed']!.received();
      assert.deepEqual(got.map((r) => [r.path.split('/').at(-1), r.status]), [[streaming ? 'invoke-with-response-stream' : 'invoke', 200]]);
      assert.equal((got[0]!.body as Record<string, unknown>)['model'], undefined);
    });
  }

  it('a non-Claude Bedrock model is still translated (Converse), streamed and not', async () => {
    const params = { model: 'bnova', max_tokens: 64, messages: [{ role: 'user' as const, content: 'Hi' }] };
    const plain = await anthropic.messages.create(params);
    const final = await anthropic.messages.stream(params).finalMessage();
    assert.deepEqual(essence(final), essence(plain));
    assert.deepEqual(plain.content, [{ type: 'text', text: 'Hello from the fake Bedrock model.' }]);
    assert.deepEqual(stack.bedrock['bed']!.received().map((r) => [r.path.split('/').at(-1), r.status]), [['converse', 200], ['converse-stream', 200]]);
  });
});
