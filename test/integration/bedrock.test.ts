/**
 * Provider type `aws-bedrock` end to end: the official OpenAI SDK through real Envoy + Tollgate to a
 * fake Bedrock runtime that recomputes every SigV4 signature, validates the Converse body like the
 * real service, and streams ConverseStream answers as AWS event-stream frames split across chunks.
 */
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { after, before, beforeEach, describe, it } from 'node:test';
import type OpenAI from 'openai';
import type { BedrockBehaviour } from '../../src/dev/fake-bedrock.js';
import { assertOpenAIError, assertSdkError, rawRequest } from '../harness/http.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';
import { NEVER_OPEN_BREAKER_GATEWAY, OPENAI_PRIMARY_SERVING_CHAT, chatEssence, resetFakes } from '../harness/provider-fixtures.js';

const CREDENTIALS = { accessKeyId: 'AKIDFAKEBEDROCK', secretAccessKey: 'fake-secret-access-key', sessionToken: 'fake-session-token' };
const DEFAULTS: Partial<BedrockBehaviour> = { ...CREDENTIALS, status: undefined, failNext: undefined, toolCalls: 1, region: 'eu-central-1', cacheReadTokens: 0 };
const MODEL_ID = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
/** A cross-region inference profile of a Claude model with extended thinking. */
const THINKING_ID = 'us.anthropic.claude-3-7-sonnet-20250219-v1:0';

function files(): Record<string, string> {
  return {
    'keys.yaml': basicConfig()['keys.yaml'] as string,
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bedrock }
spec:
  type: aws-bedrock
  endpoint: "{{FAKE:bedrock}}"
  region: eu-central-1
  credentialSecretRef: { name: aws, key: credentials }
  models:
    - name: claude-bedrock
      upstreamModel: ${MODEL_ID}
    - name: claude-thinking
      upstreamModel: ${THINKING_ID}
    - name: claude-45
      upstreamModel: us.anthropic.claude-sonnet-4-5-20250929-v1:0
    - name: nova-bedrock
      upstreamModel: amazon.nova-pro-v1:0
    - name: titan-embed
      upstreamModel: amazon.titan-embed-text-v2:0
    - name: cohere-embed
      upstreamModel: cohere.embed-english-v3
---
apiVersion: v1
kind: Secret
metadata: { name: aws }
stringData:
  credentials: '${JSON.stringify(CREDENTIALS)}'
  wrong: '${JSON.stringify({ ...CREDENTIALS, secretAccessKey: 'not-the-secret' })}'
---
${OPENAI_PRIMARY_SERVING_CHAT}apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bedrock-secondary }
spec:
  type: aws-bedrock
  endpoint: "{{FAKE:bedrock}}"
  region: eu-central-1
  credentialSecretRef: { name: aws, key: credentials }
  priority: 1
  models:
    - name: chat
      upstreamModel: amazon.nova-pro-v1:0
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bedrock-wrong-secret }
spec:
  type: aws-bedrock
  endpoint: "{{FAKE:bedrock}}"
  region: eu-central-1
  credentialSecretRef: { name: aws, key: wrong }
  models:
    - name: bedrock-bad-signature
      upstreamModel: ${MODEL_ID}
`,
    'gateway.yaml': NEVER_OPEN_BREAKER_GATEWAY,
  };
}

const WEATHER_TOOL: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

describe('provider type aws-bedrock (Converse / ConverseStream, SigV4)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: files(), fakes: { primary: {} }, bedrockFakes: { bedrock: DEFAULTS } });
  });
  after(() => stack?.stop());
  beforeEach(() => {
    resetFakes(Object.values(stack.bedrock), DEFAULTS);
    resetFakes(Object.values(stack.fakes), { status: undefined });
  });

  it('non-streaming chat: a signed Converse request the fake verifies; an OpenAI-shaped answer with usage', async () => {
    stack.bedrock['bedrock']!.behaviour.cacheReadTokens = 7;
    const c = await stack.client().chat.completions.create({
      model: 'claude-bedrock',
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }],
      max_tokens: 100,
      temperature: 0.5,
      stop: ['never'],
    });
    assert.equal(c.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
    assert.equal(c.choices[0]?.finish_reason, 'stop');
    assert.equal(c.model, MODEL_ID);
    assert.equal(c.usage?.prompt_tokens_details?.cached_tokens, 7);
    assert.equal(c.usage?.completion_tokens, 6);
    const req = stack.bedrock['bedrock']!.received()[0]!;
    assert.equal(req.status, 200, 'signature and body accepted');
    assert.equal(req.path, `/model/${encodeURIComponent(MODEL_ID)}/converse`);
    assert.equal(req.headers['x-amz-security-token'], 'fake-session-token');
    assert.ok(!JSON.stringify(req.headers).includes(TEST_KEY), 'client key leaked upstream');
    assert.deepEqual(req.body, {
      messages: [{ role: 'user', content: [{ text: 'Hi' }] }],
      system: [{ text: 'Be brief.' }],
      inferenceConfig: { maxTokens: 100, temperature: 0.5, stopSequences: ['never'] },
    });
  });

  it("streaming chat: event-stream frames split across chunks; the SDK's accumulated stream equals the non-streamed answer", async () => {
    const client = stack.client();
    const params = { model: 'claude-bedrock', messages: [{ role: 'user' as const, content: 'Hi' }] };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream: true, stream_options: { include_usage: true } }).finalChatCompletion();
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(final.usage?.completion_tokens, plain.usage?.completion_tokens);
    assert.equal(stack.bedrock['bedrock']!.received()[1]!.path, `/model/${encodeURIComponent(MODEL_ID)}/converse-stream`);
  });

  it('tools: toolConfig translated, streamed toolUse input accumulates to the same call, results round-trip by id', async () => {
    stack.bedrock['bedrock']!.behaviour.toolCalls = 2;
    const client = stack.client();
    const params = { model: 'claude-bedrock', messages: [{ role: 'user' as const, content: 'Weather?' }], tools: [WEATHER_TOOL], tool_choice: 'required' as const };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    const calls = plain.choices[0]!.message.tool_calls!;
    assert.equal(calls.length, 2);
    assert.equal(plain.choices[0]?.finish_reason, 'tool_calls');
    const sent = stack.bedrock['bedrock']!.received()[0]!.body as { toolConfig: unknown };
    assert.deepEqual(sent.toolConfig, { tools: [{ toolSpec: { name: 'get_weather', description: 'Weather in a city', inputSchema: { json: WEATHER_TOOL.function.parameters } } }], toolChoice: { any: {} } });
    const answer = await client.chat.completions.create({
      model: 'claude-bedrock',
      messages: [{ role: 'user', content: 'Weather?' }, plain.choices[0]!.message, ...calls.map((c, i) => ({ role: 'tool' as const, tool_call_id: c.id, content: `sunny ${i}` }))],
      tools: [WEATHER_TOOL],
    });
    assert.equal(answer.choices[0]?.message.content, 'Tool said: sunny 0 | sunny 1');
  });

  it('a data URL image becomes image bytes; an https image URL is a clear 400 with nothing sent', async () => {
    const png = Buffer.from('89504e470d0a1a0a', 'hex').toString('base64');
    await stack.client().chat.completions.create({
      model: 'claude-bedrock',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }],
    });
    const first = stack.bedrock['bedrock']!.received()[0]!;
    assert.equal(first.status, 200);
    assert.deepEqual((first.body as { messages: { content: unknown[] }[] }).messages[0]!.content[1], { image: { format: 'png', source: { bytes: png } } });
    stack.bedrock['bedrock']!.requests.length = 0;
    const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', {
      key: TEST_KEY,
      body: JSON.stringify({ model: 'claude-bedrock', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://images.example/a.png' } }] }] }),
    });
    assertOpenAIError(res, 400, 'unsupported_parameter');
    assert.equal(stack.bedrock['bedrock']!.requests.length, 0);
  });

  it('n > 1 is a clear 400 with nothing sent', async () => {
    await assertSdkError(stack.client().chat.completions.create({ model: 'claude-bedrock', n: 2, messages: [{ role: 'user', content: 'Hi' }] }), 400, 'unsupported_parameter');
    assert.equal(stack.bedrock['bedrock']!.requests.length, 0);
  });

  it('a wrong secret key: the fake rejects the signature (403) and the client gets it in OpenAI shape', async () => {
    const err = await assertSdkError(stack.client().chat.completions.create({ model: 'bedrock-bad-signature', messages: [{ role: 'user', content: 'Hi' }] }), 403, 'permission_denied');
    assert.match(err.message, /signature we calculated does not match/);
  });

  it('ThrottlingException (429) once is retried invisibly; on every attempt the client gets a 429', async () => {
    Object.assign(stack.bedrock['bedrock']!.behaviour, { status: 429, failNext: 1 });
    const ok = await stack.client().chat.completions.create({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(ok.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
    Object.assign(stack.bedrock['bedrock']!.behaviour, { status: 429, failNext: undefined });
    // Throttled to the end: the provider's 429 (rate_limit_exceeded), as OpenAI would answer, not the 503 summary.
    await assertSdkError(stack.client().chat.completions.create({ model: 'claude-bedrock', messages: [{ role: 'user', content: 'Hi' }] }), 429, 'rate_limit_exceeded');
  });

  it('embeddings through signed InvokeModel: Titan (one input, its token count as usage) and Cohere (a batch)', async () => {
    const vector = (text: string, n = 8): number[] => Array.from({ length: n }, (_, j) => Number((((text.length * (j + 1)) % 89) / 89).toFixed(6)));
    const client = stack.client();
    const titan = await client.embeddings.create({ model: 'titan-embed', input: 'hello there world' });
    assert.equal(titan.usage.prompt_tokens, 3, "Titan's inputTextTokenCount");
    vector('hello there world').forEach((v, j) => assert.ok(Math.abs((titan.data[0]!.embedding[j] as number) - v) < 1e-6));
    const cohere = await client.embeddings.create({ model: 'cohere-embed', input: ['a', 'bb'], encoding_format: 'float' });
    assert.deepEqual(cohere.data.map((d) => d.embedding), [vector('a'), vector('bb')]);
    const got = stack.bedrock['bedrock']!.received();
    assert.deepEqual(got.map((r) => [r.path, r.status]), [
      [`/model/${encodeURIComponent('amazon.titan-embed-text-v2:0')}/invoke`, 200],
      [`/model/${encodeURIComponent('cohere.embed-english-v3')}/invoke`, 200],
    ]);
    assert.deepEqual(got[1]!.body, { texts: ['a', 'bb'], input_type: 'search_document' });
    await assertSdkError(client.embeddings.create({ model: 'titan-embed', input: ['a', 'b'] }), 400, 'unsupported_parameter');
  });

  for (const streaming of [false, true]) {
    it(`cross-type failover (${streaming ? 'streaming' : 'non-streaming'}): OpenAI 429 -> Bedrock, one answer for the client`, async () => {
      stack.fakes['primary']!.behaviour.status = 429;
      const client = stack.client();
      const params = { model: 'chat', messages: [{ role: 'user' as const, content: 'Hi' }] };
      const c = streaming ? await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion() : await client.chat.completions.create(params);
      assert.equal(c.model, 'amazon.nova-pro-v1:0');
      assert.equal(c.choices[0]?.message.content, 'Hello from the fake Bedrock model.');
      assert.equal(stack.fakes['primary']!.received('/chat/completions').length, 1);
      const got = stack.bedrock['bedrock']!.received();
      assert.equal(got.length, 1);
      assert.equal(got[0]!.status, 200);
    });
  }

  it('reasoning_effort on a Claude model: a thinking budget in additionalModelRequestFields; reasoning comes back streamed and not', async () => {
    const fake = stack.bedrock['bedrock']!;
    const client = stack.client();
    const params = { model: 'claude-thinking', messages: [{ role: 'user' as const, content: 'Weather?' }], reasoning_effort: 'low' as const };
    const plain = await client.chat.completions.create(params);
    const message = plain.choices[0]!.message as typeof plain.choices[0]['message'] & { reasoning_content?: string };
    assert.equal(message.reasoning_content, 'Let me think about the weather first.');
    assert.equal(message.content, 'Hello from the fake Bedrock model.');
    let reasoning = '';
    let content = '';
    for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      reasoning += delta?.reasoning_content ?? '';
      content += delta?.content ?? '';
    }
    assert.equal(reasoning, message.reasoning_content);
    assert.equal(content, message.content);
    // The client's cap covers reasoning and answer: the budget fits inside it.
    await client.chat.completions.create({ ...params, reasoning_effort: 'high', max_completion_tokens: 3000 });
    const got = fake.received();
    assert.deepEqual(got.map((r) => [r.path.split('/').at(-1), r.status]), [['converse', 200], ['converse-stream', 200], ['converse', 200]]);
    const sent = got.map((r) => r.body as { additionalModelRequestFields?: unknown; inferenceConfig?: unknown });
    assert.deepEqual(sent[0]!.additionalModelRequestFields, { thinking: { type: 'enabled', budget_tokens: 2048 } });
    assert.deepEqual(sent[0]!.inferenceConfig, { maxTokens: 2048 + 4096 });
    assert.deepEqual(sent[2]!.additionalModelRequestFields, { thinking: { type: 'enabled', budget_tokens: 2999 } });
    assert.deepEqual(sent[2]!.inferenceConfig, { maxTokens: 3000 });
    // 'none' sends no thinking.
    await client.chat.completions.create({ ...params, reasoning_effort: 'none' as never });
    assert.equal((fake.received()[3]!.body as Record<string, unknown>)['additionalModelRequestFields'], undefined);
  });

  it('reasoning_effort the model cannot honour is a clear 400 with nothing sent', async () => {
    const client = stack.client();
    const ask = (extra: Record<string, unknown>): Promise<unknown> => client.chat.completions.create({ model: 'claude-thinking', messages: [{ role: 'user', content: 'Hi' }], reasoning_effort: 'medium', ...extra });
    await assertSdkError(ask({ model: 'claude-bedrock' }), 400, 'unsupported_parameter'); // Claude 3.5: no extended thinking
    await assertSdkError(ask({ model: 'nova-bedrock' }), 400, 'unsupported_parameter'); // not a Claude model
    await assertSdkError(ask({ temperature: 0.2 }), 400, 'unsupported_parameter');
    await assertSdkError(ask({ max_tokens: 1000 }), 400, 'invalid_value');
    await assertSdkError(ask({ tools: [WEATHER_TOOL], tool_choice: 'required' }), 400, 'unsupported_parameter');
    await assertSdkError(ask({ reasoning_effort: 'extreme' }), 400, 'invalid_value');
    assert.equal(stack.bedrock['bedrock']!.requests.length, 0);
  });

  const PLACE = {
    type: 'object',
    properties: { city: { type: 'string', enum: ['Lyon', 'Nice'] }, population: { type: 'integer', minimum: 1000 } },
    required: ['city', 'population'],
    additionalProperties: false,
  };

  it('response_format json_schema: toolConfig with one tool forced by name; its input is the content (finish stop), streamed and not', async () => {
    const client = stack.client();
    const params = { model: 'claude-bedrock', messages: [{ role: 'user' as const, content: 'Where?' }], response_format: { type: 'json_schema' as const, json_schema: { name: 'place', schema: PLACE } } };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(plain.choices[0]!.finish_reason, 'stop');
    assert.equal(plain.choices[0]!.message.tool_calls, undefined);
    const answer = JSON.parse(plain.choices[0]!.message.content ?? '') as unknown;
    assert.ok(new Ajv({ strict: false }).compile(PLACE)(answer), `the answer matches the schema: ${JSON.stringify(answer)}`);
    let pieces = 0;
    for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
      if (chunk.choices[0]?.delta?.content) pieces++;
      assert.equal(chunk.choices[0]?.delta?.tool_calls, undefined);
    }
    assert.ok(pieces > 1, 'streamed as content deltas from the toolUse input deltas');
    const got = stack.bedrock['bedrock']!.received();
    assert.deepEqual(got.map((r) => r.status), [200, 200, 200]);
    for (const r of got) {
      const config = (r.body as { toolConfig: { tools: { toolSpec: { name: string; inputSchema: unknown } }[]; toolChoice: unknown } }).toolConfig;
      assert.deepEqual(config.tools.map((t) => [t.toolSpec.name, t.toolSpec.inputSchema]), [['place', { json: PLACE }]]);
      assert.deepEqual(config.toolChoice, { tool: { name: 'place' } });
    }
  });

  it('response_format json_schema strict and a strict function tool: toolSpec.strict; a model or schema structured outputs cannot take gets Bedrock\'s 400', async () => {
    const client = stack.client();
    const fake = stack.bedrock['bedrock']!;
    // PLACE has `minimum`, outside the structured outputs subset; STRICT is inside it.
    const STRICT = { type: 'object', properties: { city: { type: 'string', enum: ['Lyon', 'Nice'] } }, required: ['city'], additionalProperties: false };
    const params = { model: 'claude-45', messages: [{ role: 'user' as const, content: 'Where?' }], response_format: { type: 'json_schema' as const, json_schema: { name: 'place', schema: STRICT, strict: true } } };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.deepEqual(JSON.parse(plain.choices[0]!.message.content ?? ''), { city: 'Lyon' });
    const tool = await client.chat.completions.create({ model: 'claude-45', messages: [{ role: 'user', content: 'Weather?' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: STRICT, strict: true } }] });
    assert.equal(tool.choices[0]!.message.tool_calls?.[0]?.type === 'function' ? tool.choices[0]!.message.tool_calls[0].function.name : '', 'get_weather');
    const got = fake.received();
    assert.deepEqual(got.map((r) => r.status), [200, 200, 200]);
    for (const r of got) {
      const specs = (r.body as { toolConfig: { tools: { toolSpec: Record<string, unknown> }[] } }).toolConfig.tools.map((t) => t.toolSpec);
      assert.deepEqual(specs.map((t) => t['strict']), [true]);
    }
    const tooRich = await assertSdkError(client.chat.completions.create({ ...params, response_format: { type: 'json_schema', json_schema: { name: 'place', schema: PLACE, strict: true } } }), 400, 'invalid_request_error');
    assert.match(tooRich.message, /minimum.*not supported/);
    const oldModel = await assertSdkError(client.chat.completions.create({ ...params, model: 'claude-bedrock' }), 400, 'invalid_request_error');
    assert.match(oldModel.message, /doesn't support the toolConfig\.tools\.0\.toolSpec\.strict field/);
    assert.deepEqual(fake.received().slice(3).map((r) => r.status), [400, 400], 'Bedrock said no, not the gateway');
    // Without strict, the rich schema on the older model is the best-effort forced tool, as before.
    const loose = await client.chat.completions.create({ ...params, model: 'claude-bedrock', response_format: { type: 'json_schema', json_schema: { name: 'place', schema: PLACE, strict: false } } });
    assert.ok(new Ajv({ strict: false }).compile(PLACE)(JSON.parse(loose.choices[0]!.message.content ?? '')));
    assert.ok(!('strict' in (fake.received()[5]!.body as { toolConfig: { tools: { toolSpec: Record<string, unknown> }[] } }).toolConfig.tools[0]!.toolSpec));
  });

  it('response_format json_object: any JSON object; with the client own tools it is a clear 400 with nothing sent', async () => {
    const client = stack.client();
    const params = { model: 'claude-bedrock', messages: [{ role: 'user' as const, content: 'JSON' }], response_format: { type: 'json_object' as const } };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.deepEqual(JSON.parse(plain.choices[0]!.message.content ?? ''), { city: 'Paris', unit: 'celsius' });
    const sent = stack.bedrock['bedrock']!.received()[0]!.body as { toolConfig: { tools: { toolSpec: { name: string; inputSchema: unknown } }[]; toolChoice: unknown } };
    assert.deepEqual(sent.toolConfig.tools.map((t) => [t.toolSpec.name, t.toolSpec.inputSchema]), [['json_response', { json: { type: 'object' } }]]);
    stack.bedrock['bedrock']!.requests.length = 0;
    const err = await assertSdkError(client.chat.completions.create({ ...params, tools: [WEATHER_TOOL] }), 400, 'unsupported_parameter');
    assert.match(err.message, /response_format/);
    assert.equal(stack.bedrock['bedrock']!.requests.length, 0);
  });

  it('response_format json_schema with reasoning_effort: Converse structured outputs (outputConfig.textFormat), thinking kept, streamed and not', async () => {
    const client = stack.client();
    const CLOSED = { type: 'object', properties: { city: { type: 'string', enum: ['Lyon', 'Nice'] }, sunny: { type: 'boolean' } }, required: ['city', 'sunny'], additionalProperties: false };
    const params = { model: 'claude-45', messages: [{ role: 'user' as const, content: 'Where?' }], reasoning_effort: 'low' as const, response_format: { type: 'json_schema' as const, json_schema: { name: 'place', schema: CLOSED } } };
    const plain = await client.chat.completions.create(params);
    const final = await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion();
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(plain.choices[0]!.finish_reason, 'stop');
    assert.deepEqual(JSON.parse(plain.choices[0]!.message.content ?? ''), { city: 'Lyon', sunny: true });
    assert.equal((plain.choices[0]!.message as { reasoning_content?: string }).reasoning_content, 'Let me think about the weather first.');
    const sent = stack.bedrock['bedrock']!.received()[0]!.body as Record<string, unknown>;
    assert.deepEqual(sent['outputConfig'], { textFormat: { type: 'json_schema', structure: { jsonSchema: { schema: JSON.stringify(CLOSED), name: 'place' } } } });
    assert.equal(sent['toolConfig'], undefined);
    // What structured outputs cannot take (an open object; a model without them) is Bedrock's 400, relayed.
    const open = await assertSdkError(client.chat.completions.create({ ...params, response_format: { type: 'json_schema', json_schema: { name: 'p', schema: { type: 'object', properties: { a: { type: 'string' } } } } } }), 400, 'invalid_request_error');
    assert.match(open.message, /additionalProperties/);
    const old = await assertSdkError(client.chat.completions.create({ ...params, model: 'claude-thinking' }), 400, 'invalid_request_error');
    assert.match(old.message, /doesn't support the outputConfig.textFormat/);
  });

  for (const streaming of [false, true]) {
    it(`reasoning + tools over several turns (${streaming ? 'streaming' : 'non-streaming'}): reasoning blocks with their signature go back in the tool-call turn`, async () => {
      const fake = stack.bedrock['bedrock']!;
      const client = stack.client();
      const ask = [{ role: 'user' as const, content: 'Weather in Paris?' }];
      const params = { model: 'claude-thinking', messages: ask, tools: [WEATHER_TOOL], reasoning_effort: 'low' as const };
      const first = streaming ? await client.chat.completions.stream({ ...params, stream: true }).finalChatCompletion() : await client.chat.completions.create(params);
      const turn = first.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & { thinking_blocks?: { type: string; thinking: string; signature: string }[] };
      assert.equal(first.choices[0]!.finish_reason, 'tool_calls');
      assert.equal(turn.thinking_blocks?.length, 1);
      assert.equal(turn.thinking_blocks?.[0]?.thinking, 'Let me think about the weather first.');
      assert.match(turn.thinking_blocks?.[0]?.signature ?? '', /^sig_/);
      const call = turn.tool_calls![0]!;
      const results = [{ role: 'tool' as const, tool_call_id: call.id, content: 'sunny' }];
      const second = await client.chat.completions.create({ ...params, messages: [...ask, turn as OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam, ...results] });
      assert.equal(second.choices[0]!.message.content, 'Tool said: sunny');
      const sent = fake.received().at(-1)!.body as { messages: { content: Record<string, unknown>[] }[] };
      assert.deepEqual(sent.messages[1]!.content[0], { reasoningContent: { reasoningText: { text: 'Let me think about the weather first.', signature: turn.thinking_blocks?.[0]?.signature } } });
      assert.ok('toolUse' in sent.messages[1]!.content[1]!);
      // Without the blocks, or without the signature, Bedrock refuses (ValidationException): the client gets the 400.
      const { thinking_blocks: _dropped, ...bare } = turn;
      const missing = await assertSdkError(client.chat.completions.create({ ...params, messages: [...ask, bare as OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam, ...results] }), 400, 'invalid_request_error');
      assert.match(missing.message, /must start with a thinking block/);
      const unsigned = { ...turn, thinking_blocks: [{ type: 'thinking', thinking: 'Let me think about the weather first.' }] };
      const noSignature = await assertSdkError(client.chat.completions.create({ ...params, messages: [...ask, unsigned as OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam, ...results] }), 400, 'invalid_request_error');
      assert.match(noSignature.message, /signature: Field required/);
    });
  }
});
