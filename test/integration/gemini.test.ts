/**
 * Provider type `gemini` end to end: the official OpenAI SDK through real Envoy + Tollgate to a fake
 * Gemini API that validates requests like the real one (unknown fields and schema keywords refused,
 * functionResponse names matched to calls) and streams SSE partial responses split across chunks.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type OpenAI from 'openai';
import type { GeminiBehaviour } from '../../src/dev/fake-gemini.js';
import { assertOpenAIError, assertSdkError, rawRequest } from '../harness/http.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';
import { NEVER_OPEN_BREAKER_GATEWAY, OPENAI_PRIMARY_SERVING_CHAT, chatEssence, resetFakes } from '../harness/provider-fixtures.js';

const DEFAULTS: Partial<GeminiBehaviour> = { status: undefined, failNext: undefined, toolCalls: 1, cachedTokens: 0 };

function files(): Record<string, string> {
  return {
    'keys.yaml': basicConfig()['keys.yaml'] as string,
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: gemini }
spec:
  type: gemini
  endpoint: "{{FAKE:gemini}}"
  credentialSecretRef: { name: gemini-cred, key: token }
  models:
    - name: gemini-flash
      upstreamModel: gemini-2.5-flash
    - name: gemini-embedding
      upstreamModel: gemini-embedding-001
---
apiVersion: v1
kind: Secret
metadata: { name: gemini-cred }
stringData: { token: fake-gemini-key }
---
${OPENAI_PRIMARY_SERVING_CHAT}apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: gemini-secondary }
spec:
  type: gemini
  endpoint: "{{FAKE:gemini}}"
  credentialSecretRef: { name: gemini-cred, key: token }
  priority: 1
  models:
    - name: chat
      upstreamModel: gemini-2.5-pro
`,
    'gateway.yaml': NEVER_OPEN_BREAKER_GATEWAY,
  };
}

/** additionalProperties and $schema are JSON Schema keywords Gemini rejects: the gateway drops them. */
const WEATHER_TOOL: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { city: { type: 'string' }, unit: { type: ['string', 'null'] } }, required: ['city'], additionalProperties: false },
  },
};

describe('provider type gemini (generateContent)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: files(), fakes: { primary: {} }, geminiFakes: { gemini: DEFAULTS } });
  });
  after(() => stack?.stop());
  beforeEach(() => {
    resetFakes(Object.values(stack.gemini), DEFAULTS);
    resetFakes(Object.values(stack.fakes), { status: undefined });
  });

  it('non-streaming chat: systemInstruction, generationConfig, x-goog-api-key; usage with cached and reasoning tokens', async () => {
    stack.gemini['gemini']!.behaviour.cachedTokens = 9;
    const c = await stack.client().chat.completions.create({
      model: 'gemini-flash',
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }],
      temperature: 1.5,
      max_completion_tokens: 64,
      stop: 'never',
      reasoning_effort: 'low',
    });
    assert.equal(c.choices[0]?.message.content, 'Hello from the fake Gemini model.');
    assert.equal((c.choices[0]?.message as { reasoning_content?: string }).reasoning_content, 'Thinking it over.');
    assert.equal(c.choices[0]?.finish_reason, 'stop');
    assert.equal(c.model, 'gemini-2.5-flash');
    assert.equal(c.usage?.prompt_tokens_details?.cached_tokens, 9);
    assert.equal(c.usage?.completion_tokens_details?.reasoning_tokens, 5);
    assert.equal(c.usage?.completion_tokens, 6 + 5, 'completion tokens include the thoughts, as OpenAI counts them');
    const req = stack.gemini['gemini']!.received()[0]!;
    assert.equal(req.status, 200);
    assert.equal(req.path, '/v1beta/models/gemini-2.5-flash:generateContent');
    assert.equal(req.headers['x-goog-api-key'], 'fake-gemini-key');
    assert.ok(!JSON.stringify(req.headers).includes(TEST_KEY), 'client key leaked upstream');
    assert.deepEqual(req.body, {
      contents: [{ role: 'user', parts: [{ text: 'Hi' }] }],
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      generationConfig: { temperature: 1.5, maxOutputTokens: 64, stopSequences: ['never'], thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } },
    });
  });

  it("streaming chat: the SDK's accumulated stream equals the non-streamed answer", async () => {
    const client = stack.client();
    const params = { model: 'gemini-flash', messages: [{ role: 'user' as const, content: 'Hi' }] };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream: true, stream_options: { include_usage: true } }).finalChatCompletion();
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(final.usage?.completion_tokens, plain.usage?.completion_tokens);
    assert.equal(stack.gemini['gemini']!.received()[1]!.path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
  });

  it('tools: schema cleaned to Gemini\'s subset, calls streamed and not agree, results round-trip by id to the function name', async () => {
    stack.gemini['gemini']!.behaviour.toolCalls = 2;
    const client = stack.client();
    const params = { model: 'gemini-flash', messages: [{ role: 'user' as const, content: 'Weather?' }], tools: [WEATHER_TOOL], tool_choice: 'required' as const };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(plain.choices[0]?.finish_reason, 'tool_calls');
    const calls = plain.choices[0]!.message.tool_calls!;
    assert.equal(calls.length, 2);
    const sent = stack.gemini['gemini']!.received()[0]!.body as Record<string, unknown>;
    assert.deepEqual(sent['tools'], [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', nullable: true } }, required: ['city'] } }] }]);
    assert.deepEqual(sent['toolConfig'], { functionCallingConfig: { mode: 'ANY' } });
    const answer = await client.chat.completions.create({
      model: 'gemini-flash',
      messages: [{ role: 'user', content: 'Weather?' }, plain.choices[0]!.message, ...calls.map((c, i) => ({ role: 'tool' as const, tool_call_id: c.id, content: `{"sky":"sunny ${i}"}` }))],
      tools: [WEATHER_TOOL],
    });
    assert.equal(answer.choices[0]?.message.content, 'Tool said: {"sky":"sunny 0"} | {"sky":"sunny 1"}');
  });

  it('response_format json_schema becomes responseMimeType + responseSchema (strict: Gemini always enforces it, nothing more is sent)', async () => {
    const c = await stack.client().chat.completions.create({
      model: 'gemini-flash',
      messages: [{ role: 'user', content: 'Answer in JSON' }],
      response_format: { type: 'json_schema', json_schema: { name: 'a', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false } } },
    });
    assert.deepEqual(JSON.parse(c.choices[0]!.message.content!), { answer: 'Hello from the fake Gemini model.' });
    const gen = (stack.gemini['gemini']!.received()[0]!.body as { generationConfig: unknown }).generationConfig;
    assert.deepEqual(gen, { responseMimeType: 'application/json', responseSchema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] } });
  });

  it('images: data URL -> inlineData, https URL -> fileData', async () => {
    const png = Buffer.from('89504e470d0a1a0a', 'hex').toString('base64');
    await stack.client().chat.completions.create({
      model: 'gemini-flash',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }, { type: 'image_url', image_url: { url: 'https://images.example/a.jpg' } }] }],
    });
    const parts = (stack.gemini['gemini']!.received()[0]!.body as { contents: { parts: unknown[] }[] }).contents[0]!.parts;
    assert.deepEqual(parts, [{ inlineData: { mimeType: 'image/png', data: png } }, { fileData: { mimeType: 'image/jpeg', fileUri: 'https://images.example/a.jpg' } }]);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ['n > 1', { n: 2 }, 'unsupported_parameter'],
    ['six stop sequences', { stop: ['a', 'b', 'c', 'd', 'e', 'f'] }, 'invalid_value'],
    ['a tool schema with $ref', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { $ref: '#/defs/x' } } } } }] }, 'unsupported_parameter'],
    ['a tool result for an unknown call', { messages: [{ role: 'tool', tool_call_id: 'call_x', content: 'x' }] }, 'invalid_value'],
  ];
  for (const [what, extra, code] of bad) {
    it(`bad input (${what}): a clear OpenAI-shaped 400, nothing sent upstream`, async () => {
      const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: TEST_KEY, body: JSON.stringify({ model: 'gemini-flash', messages: [{ role: 'user', content: 'Hi' }], ...extra }) });
      assertOpenAIError(res, 400, code);
      assert.equal(stack.gemini['gemini']!.requests.length, 0);
    });
  }

  it('RESOURCE_EXHAUSTED (429) once is retried invisibly; always: a 429; an invalid key is a 400 in OpenAI shape', async () => {
    Object.assign(stack.gemini['gemini']!.behaviour, { status: 429, failNext: 1 });
    const ok = await stack.client().chat.completions.create({ model: 'gemini-flash', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(ok.choices[0]?.message.content, 'Hello from the fake Gemini model.');
    Object.assign(stack.gemini['gemini']!.behaviour, { status: 429, failNext: undefined });
    await assertSdkError(stack.client().chat.completions.create({ model: 'gemini-flash', messages: [{ role: 'user', content: 'Hi' }] }), 429, 'rate_limit_exceeded');
    Object.assign(stack.gemini['gemini']!.behaviour, { status: undefined, apiKey: 'another-key' });
    const err = await assertSdkError(stack.client().chat.completions.create({ model: 'gemini-flash', messages: [{ role: 'user', content: 'Hi' }] }), 400, 'invalid_request_error');
    assert.match(err.message, /API key not valid/);
    stack.gemini['gemini']!.behaviour.apiKey = 'fake-gemini-key';
  });

  it('embeddings: batchEmbedContents, vectors as the SDK decodes them (base64 by default) and as floats on request', async () => {
    const expected = (text: string, n = 8): number[] => Array.from({ length: n }, (_, j) => Number((((text.length * (j + 1)) % 97) / 97).toFixed(6)));
    const res = await stack.client().embeddings.create({ model: 'gemini-embedding', input: ['hello', 'a longer sentence'] });
    assert.equal(res.data.length, 2);
    for (const [i, text] of ['hello', 'a longer sentence'].entries()) {
      const got = res.data[i]!.embedding;
      assert.equal(got.length, 8);
      expected(text).forEach((v, j) => assert.ok(Math.abs((got[j] as number) - v) < 1e-6, `vector ${i}[${j}]`));
    }
    const req = stack.gemini['gemini']!.received()[0]!;
    assert.equal(req.status, 200);
    assert.equal(req.path, '/v1beta/models/gemini-embedding-001:batchEmbedContents');
    const raw = await rawRequest(stack.baseUrl, '/v1/embeddings', { key: TEST_KEY, body: JSON.stringify({ model: 'gemini-embedding', input: 'hello', encoding_format: 'float', dimensions: 4 }) });
    assert.equal(raw.status, 200);
    assert.deepEqual((JSON.parse(raw.text) as { data: { embedding: number[] }[] }).data[0]!.embedding, expected('hello', 4));
    const tokens = await rawRequest(stack.baseUrl, '/v1/embeddings', { key: TEST_KEY, body: JSON.stringify({ model: 'gemini-embedding', input: [[1, 2, 3]] }) });
    assertOpenAIError(tokens, 400, 'unsupported_parameter');
  });

  for (const streaming of [false, true]) {
    it(`cross-type failover (${streaming ? 'streaming' : 'non-streaming'}): OpenAI 429 -> Gemini, one answer`, async () => {
      stack.fakes['primary']!.behaviour.status = 429;
      const client = stack.client();
      const params = { model: 'chat', messages: [{ role: 'user' as const, content: 'Hi' }] };
      const c = streaming ? await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion() : await client.chat.completions.create(params);
      assert.equal(c.model, 'gemini-2.5-pro');
      assert.equal(c.choices[0]?.message.content, 'Hello from the fake Gemini model.');
      assert.equal(stack.gemini['gemini']!.received().length, 1);
    });
  }
});
