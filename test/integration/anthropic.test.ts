/**
 * Provider type `anthropic` end to end: the official OpenAI SDK talks to real Envoy + Tollgate, which
 * translates to the Anthropic Messages API served by a fake that verifies what it receives like the
 * real API (headers, required fields, block shapes, tool_use/tool_result pairing) and streams real
 * event types split across network chunks.
 */
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { after, before, beforeEach, describe, it } from 'node:test';
import type OpenAI from 'openai';
import type { AnthropicBehaviour } from '../../src/dev/fake-anthropic.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertOpenAIError, assertSdkError, rawRequest } from '../harness/http.js';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';
import { NEVER_OPEN_BREAKER_GATEWAY, OPENAI_PRIMARY_SERVING_CHAT, chatEssence, resetFakes } from '../harness/provider-fixtures.js';

const DEFAULTS: Partial<AnthropicBehaviour> = {
  status: undefined,
  failNext: undefined,
  toolCalls: 1,
  cacheReadTokens: 0,
  apiKey: 'sk-ant-fake',
  resetAfterEvents: undefined,
  writeBytes: 7,
};

function files(): Record<string, string> {
  return {
    'keys.yaml': basicConfig()['keys.yaml'] as string,
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: claude }
spec:
  type: anthropic
  endpoint: "{{FAKE:claude}}"
  credentialSecretRef: { name: claude-cred, key: token }
  models:
    - name: claude
      upstreamModel: claude-sonnet-4-5
      maxTokens: 777
    - name: claude-3
      upstreamModel: claude-3-5-haiku-20241022
---
apiVersion: v1
kind: Secret
metadata: { name: claude-cred }
stringData: { token: sk-ant-fake }
---
${OPENAI_PRIMARY_SERVING_CHAT}apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: claude-secondary }
spec:
  type: anthropic
  endpoint: "{{FAKE:secondary}}"
  credentialSecretRef: { name: claude-cred, key: token }
  priority: 1
  models:
    - name: chat
      upstreamModel: claude-haiku-4-5
`,
    'gateway.yaml': NEVER_OPEN_BREAKER_GATEWAY,
  };
}

const WEATHER_TOOL: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
  },
};

/** Drives the SDK's own stream accumulator and returns its final completion. */
async function streamed(client: OpenAI, params: OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming): Promise<OpenAI.Chat.Completions.ChatCompletion> {
  const runner = client.chat.completions.stream(params);
  return runner.finalChatCompletion();
}

describe('provider type anthropic (Messages API)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: files(), fakes: { primary: {} }, anthropicFakes: { claude: DEFAULTS, secondary: DEFAULTS } });
  });
  after(() => stack?.stop());
  beforeEach(() => {
    resetFakes(Object.values(stack.anthropic), DEFAULTS);
    resetFakes(Object.values(stack.fakes), { status: undefined, failNext: undefined });
  });

  it('non-streaming chat: system moved out, max_tokens from the model config, Anthropic headers, OpenAI-shaped answer with usage', async () => {
    stack.anthropic['claude']!.behaviour.cacheReadTokens = 40;
    const completion = await stack.client().chat.completions.create({
      model: 'claude',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'system', content: 'Answer in English.' },
        { role: 'user', content: 'Hi' },
      ],
      temperature: 0.3,
      top_p: 0.9,
      user: 'user-42',
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, 'claude-sonnet-4-5');
    assert.equal(completion.choices[0]?.message.content, 'Hello from the fake Anthropic model.');
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    const got = stack.anthropic['claude']!.received();
    assert.equal(got.length, 1);
    const req = got[0]!;
    assert.equal(req.status, 200, 'the fake accepted the translated request');
    assert.equal(req.headers['x-api-key'], 'sk-ant-fake');
    assert.equal(req.headers['anthropic-version'], '2023-06-01');
    assert.equal(req.headers['authorization'], undefined);
    assert.ok(!JSON.stringify(req.headers).includes(TEST_KEY), 'client key leaked upstream');
    const body = req.body as Record<string, unknown>;
    assert.deepEqual(body['system'], [{ type: 'text', text: 'Be brief.' }, { type: 'text', text: 'Answer in English.' }]);
    assert.deepEqual(body['messages'], [{ role: 'user', content: 'Hi' }]);
    assert.equal(body['max_tokens'], 777, "the model's maxTokens when the client gave none");
    assert.equal(body['model'], 'claude-sonnet-4-5');
    assert.deepEqual(body['metadata'], { user_id: 'user-42' });
    assert.equal(body['temperature'], 0.3);
    const usage = completion.usage!;
    assert.ok(usage.prompt_tokens > 40, 'prompt tokens include the cached ones');
    assert.equal(usage.prompt_tokens_details?.cached_tokens, 40);
    assert.equal(usage.completion_tokens, 6);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  });

  it("streaming chat: the SDK's accumulated stream equals the non-streamed answer; include_usage gives the provider's usage", async () => {
    const client = stack.client();
    const params = { model: 'claude', messages: [{ role: 'user' as const, content: 'Hi' }], max_tokens: 50, stop: ['never'] };
    const plain = await client.chat.completions.create(params);
    const final = await streamed(client, { ...params, stream: true, stream_options: { include_usage: true } });
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(final.usage?.completion_tokens, plain.usage?.completion_tokens);
    assert.ok((final.usage?.prompt_tokens ?? 0) > 0);
    const sent = stack.anthropic['claude']!.received().map((r) => r.body as Record<string, unknown>);
    assert.equal(sent[1]?.['stream'], true);
    assert.equal(sent[1]?.['max_tokens'], 50);
    assert.deepEqual(sent[1]?.['stop_sequences'], ['never']);
    assert.equal(sent[1]?.['stream_options'], undefined, 'no OpenAI-only fields reach Anthropic');
  });

  it('streaming chunk by chunk: raw SSE has the OpenAI chunk shape, ends with [DONE], and carries no usage the client did not ask for', async () => {
    const res = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await res.text();
    const events = text.split('\n\n').filter((e) => e !== '');
    assert.equal(events.at(-1), 'data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as { object: string; usage?: unknown; choices: { delta: { content?: string } }[] });
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.ok(chunks.every((c) => c.usage === undefined), 'the usage chunk the gateway asked for is not shown to the client');
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Hello from the fake Anthropic model.');
    assert.ok(chunks.length >= 8, 'one chunk per Anthropic text delta (not buffered whole)');
    // Accounting counts what Anthropic reported (the gateway asked for usage on the client's behalf):
    // 6 words in this answer.
    const counted = /tollgate_tokens_total\{consumer="default\/team-a",provider="default\/claude",model="claude",kind="completion"\} (\d+)/;
    let metrics = '';
    await waitFor('the usage record', async () => {
      metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
      return Number(counted.exec(metrics)?.[1] ?? 0) >= 6;
    }).catch((err: unknown) => assert.fail(`${String(err)}: ${metrics.split('\n').filter((l) => l.startsWith('tollgate_tokens_total')).join('\n')}`));
  });

  it('tools: definitions and tool_choice translated, streamed argument deltas accumulate to the same call, and the tool result round-trips by id', async () => {
    const client = stack.client();
    stack.anthropic['claude']!.behaviour.toolCalls = 2;
    const params = {
      model: 'claude',
      messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
      tools: [WEATHER_TOOL],
      tool_choice: 'required' as const,
    };
    const plain = await client.chat.completions.create(params);
    const final = await streamed(client, { ...params, stream: true });
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(plain.choices[0]?.finish_reason, 'tool_calls');
    const calls = plain.choices[0]!.message.tool_calls!;
    assert.equal(calls.length, 2, 'parallel tool calls');
    const first = calls[0]!;
    assert.ok(first.type === 'function');
    assert.equal(first.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(first.function.arguments), { city: 'Paris', unit: 'celsius' });
    const sent = stack.anthropic['claude']!.received()[0]!.body as Record<string, unknown>;
    assert.deepEqual(sent['tools'], [{ name: 'get_weather', description: 'Weather in a city', input_schema: WEATHER_TOOL.function.parameters }]);
    assert.deepEqual(sent['tool_choice'], { type: 'any' });

    // The client answers both calls; Anthropic (the fake) checks every tool_use id got its result.
    const answer = await client.chat.completions.create({
      model: 'claude',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        plain.choices[0]!.message,
        ...calls.map((c, i) => ({ role: 'tool' as const, tool_call_id: c.id, content: `sunny ${i}` })),
      ],
      tools: [WEATHER_TOOL],
    });
    assert.equal(answer.choices[0]?.message.content, 'Tool said: sunny 0 | sunny 1');
    const third = stack.anthropic['claude']!.received()[2]!;
    assert.equal(third.status, 200);
    const msgs = (third.body as { messages: { role: string; content: { type: string; tool_use_id?: string; id?: string }[] }[] }).messages;
    assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'user'], 'both tool results in one user turn');
    assert.deepEqual(msgs[2]!.content.map((b) => b.tool_use_id), calls.map((c) => c.id));
    assert.deepEqual(msgs[1]!.content.map((b) => b.id), calls.map((c) => c.id));
  });

  it('parallel_tool_calls false and a named tool_choice reach Anthropic as disable_parallel_tool_use and {type: tool}', async () => {
    stack.anthropic['claude']!.behaviour.toolCalls = 3;
    const c = await stack.client().chat.completions.create({
      model: 'claude',
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    });
    assert.equal(c.choices[0]?.message.tool_calls?.length, 1);
    const sent = stack.anthropic['claude']!.received()[0]!.body as Record<string, unknown>;
    assert.deepEqual(sent['tool_choice'], { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true });
  });

  it('images: a data URL becomes a base64 image block and an https URL a url source', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex').toString('base64');
    await stack.client().chat.completions.create({
      model: 'claude',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
            { type: 'image_url', image_url: { url: 'https://images.example/cat.jpg' } },
          ],
        },
      ],
    });
    const req = stack.anthropic['claude']!.received()[0]!;
    assert.equal(req.status, 200);
    const content = (req.body as { messages: { content: unknown[] }[] }).messages[0]!.content;
    assert.deepEqual(content, [
      { type: 'text', text: 'What is this?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
      { type: 'image', source: { type: 'url', url: 'https://images.example/cat.jpg' } },
    ]);
  });

  it('reasoning_effort: extended thinking comes back as reasoning_content, streamed and not', async () => {
    const client = stack.client();
    const params = { model: 'claude', messages: [{ role: 'user' as const, content: 'Think' }], reasoning_effort: 'low' as const };
    const plain = await client.chat.completions.create(params);
    const final = await streamed(client, { ...params, stream: true });
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal((plain.choices[0]!.message as { reasoning_content?: string }).reasoning_content, 'Let me think about this.');
    let reasoning = '';
    for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
      reasoning += (chunk.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
    }
    assert.equal(reasoning, 'Let me think about this.', 'reasoning_content deltas in the stream');
    const sent = stack.anthropic['claude']!.received()[0]!.body as Record<string, unknown>;
    assert.deepEqual(sent['thinking'], { type: 'enabled', budget_tokens: 2048 });
    assert.ok((sent['max_tokens'] as number) > 2048, 'max_tokens above the thinking budget');
  });

  const PERSON = {
    type: 'object',
    properties: { name: { type: 'string', minLength: 2 }, age: { type: 'integer', minimum: 18 }, tags: { type: 'array', items: { type: 'string', enum: ['admin', 'user'] } } },
    required: ['name', 'age', 'tags'],
    additionalProperties: false,
  };

  it('response_format json_schema: one forced tool carrying the schema; its input is the content (finish stop), streamed and not', async () => {
    const client = stack.client();
    const params = {
      model: 'claude',
      messages: [{ role: 'user' as const, content: 'Who?' }],
      response_format: { type: 'json_schema' as const, json_schema: { name: 'person', description: 'A person.', schema: PERSON } },
    };
    const plain = await client.chat.completions.create(params);
    const final = await streamed(client, { ...params, stream: true });
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    const message = plain.choices[0]!.message;
    assert.equal(plain.choices[0]!.finish_reason, 'stop');
    assert.equal(message.tool_calls, undefined);
    const answer = JSON.parse(message.content ?? '') as unknown;
    const valid = new Ajv({ strict: false }).compile(PERSON);
    assert.ok(valid(answer), `the answer matches the schema: ${JSON.stringify(answer)}`);
    // The raw stream carries the JSON as content deltas, pieces of the tool's input_json_delta.
    let pieces = 0;
    let content = '';
    for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
      const delta = chunk.choices[0]?.delta;
      if (delta?.content) {
        pieces++;
        content += delta.content;
      }
      assert.equal(delta?.tool_calls, undefined);
    }
    assert.ok(pieces > 1, 'streamed incrementally');
    assert.deepEqual(JSON.parse(content), answer);
    const sent = stack.anthropic['claude']!.received().map((r) => r.body as Record<string, unknown>);
    assert.equal(sent.length, 3);
    for (const body of sent) {
      assert.deepEqual(body['tools'], [{ name: 'person', description: 'A person. Respond with a JSON object matching this schema: the input of this tool is your whole answer.', input_schema: PERSON }]);
      assert.deepEqual(body['tool_choice'], { type: 'tool', name: 'person' });
    }
  });

  it('response_format json_schema strict: the forced tool asks for strict tool use; a schema or model strict tool use cannot take gets Anthropic\'s 400', async () => {
    const client = stack.client();
    const fake = stack.anthropic['claude']!;
    // What strict tool use takes: every object closed, no length or range constraints (PERSON has minLength and minimum).
    const STRICT = { type: 'object', properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string', enum: ['admin', 'user'] } } }, required: ['name', 'tags'], additionalProperties: false };
    const params = { model: 'claude', messages: [{ role: 'user' as const, content: 'Who?' }], response_format: { type: 'json_schema' as const, json_schema: { name: 'person', schema: STRICT, strict: true } } };
    const plain = await client.chat.completions.create(params);
    const final = await streamed(client, { ...params, stream: true });
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(plain.choices[0]!.finish_reason, 'stop');
    assert.ok(new Ajv({ strict: false }).compile(STRICT)(JSON.parse(plain.choices[0]!.message.content ?? '')), plain.choices[0]!.message.content ?? '');
    for (const r of fake.received()) {
      assert.equal(r.status, 200);
      assert.deepEqual((r.body as { tools: Record<string, unknown>[] }).tools.map((t) => [t['name'], t['strict']]), [['person', true]]);
    }
    // The OpenAI SDK's parse() helper sends strict: true; its answer parses the same way.
    const parsed = await client.chat.completions.parse(params);
    assert.deepEqual(parsed.choices[0]!.message.parsed, JSON.parse(plain.choices[0]!.message.content ?? ''));
    const refused = fake.received().length;
    const tooRich = await assertSdkError(client.chat.completions.create({ ...params, response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON, strict: true } } }), 400, 'invalid_request_error');
    assert.match(tooRich.message, /minLength.*not supported/);
    const oldModel = await assertSdkError(client.chat.completions.create({ ...params, model: 'claude-3' }), 400, 'invalid_request_error');
    assert.match(oldModel.message, /does not support strict tools/);
    assert.deepEqual(fake.received().slice(refused).map((r) => r.status), [400, 400], 'Anthropic said no, not the gateway');
    // Without strict, the same rich schema and the older model work (the forced tool, best effort).
    const loose = await client.chat.completions.create({ ...params, model: 'claude-3', response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON, strict: false } } });
    assert.equal(loose.choices[0]!.finish_reason, 'stop');
    // A strict flag that is not a boolean never leaves the gateway.
    const sentBefore = fake.received().length;
    const bad = await assertSdkError(client.chat.completions.create({ ...params, response_format: { type: 'json_schema', json_schema: { name: 'person', schema: STRICT, strict: 'yes' as unknown as boolean } } }), 400, 'invalid_value');
    assert.match(bad.message, /response_format\.json_schema\.strict/);
    assert.equal(fake.received().length, sentBefore);
  });

  it('response_format json_object: any JSON object, through a forced tool with an open object schema', async () => {
    const client = stack.client();
    const params = { model: 'claude', messages: [{ role: 'user' as const, content: 'JSON please' }], response_format: { type: 'json_object' as const } };
    const plain = await client.chat.completions.create(params);
    const final = await streamed(client, { ...params, stream: true });
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(plain.choices[0]!.finish_reason, 'stop');
    assert.deepEqual(JSON.parse(plain.choices[0]!.message.content ?? ''), { city: 'Paris', unit: 'celsius' });
    const body = stack.anthropic['claude']!.received()[0]!.body as Record<string, unknown>;
    assert.deepEqual((body['tools'] as { name: string; input_schema: unknown }[]).map((t) => [t.name, t.input_schema]), [['json_response', { type: 'object' }]]);
    assert.deepEqual(body['tool_choice'], { type: 'tool', name: 'json_response' });
  });

  it('response_format json_schema with reasoning_effort: native structured outputs (output_config.format), thinking kept, streamed and not', async () => {
    const client = stack.client();
    const CLOSED = { type: 'object', properties: { name: { type: 'string' }, admin: { type: 'boolean' } }, required: ['name', 'admin'], additionalProperties: false };
    const params = { model: 'claude', messages: [{ role: 'user' as const, content: 'Who?' }], reasoning_effort: 'low' as const, response_format: { type: 'json_schema' as const, json_schema: { name: 'person', schema: CLOSED } } };
    const plain = await client.chat.completions.create(params);
    const final = await streamed(client, { ...params, stream: true });
    assert.deepEqual(chatEssence(final), chatEssence(plain));
    assert.equal(plain.choices[0]!.finish_reason, 'stop');
    assert.ok(new Ajv({ strict: false }).compile(CLOSED)(JSON.parse(plain.choices[0]!.message.content ?? '')), plain.choices[0]!.message.content ?? '');
    assert.equal((plain.choices[0]!.message as { reasoning_content?: string }).reasoning_content, 'Let me think about this.');
    const sent = stack.anthropic['claude']!.received()[0]!.body as Record<string, unknown>;
    assert.deepEqual(sent['output_config'], { format: { type: 'json_schema', schema: CLOSED } });
    assert.equal(sent['tools'], undefined);
    // A schema native structured outputs cannot take: Anthropic's 400 reaches the client.
    const open = { type: 'object', properties: { name: { type: 'string' } } };
    const err = await assertSdkError(client.chat.completions.create({ ...params, response_format: { type: 'json_schema', json_schema: { name: 'p', schema: open } } }), 400, 'invalid_request_error');
    assert.match(err.message, /additionalProperties/);
  });

  for (const streaming of [false, true]) {
    it(`reasoning + tools over several turns (${streaming ? 'streaming' : 'non-streaming'}): thinking_blocks with their signature go back in the tool-call turn`, async () => {
      const fake = stack.anthropic['claude']!;
      const client = stack.client();
      const ask = [{ role: 'user' as const, content: 'Weather in Paris?' }];
      const params = { model: 'claude', messages: ask, tools: [WEATHER_TOOL], reasoning_effort: 'low' as const };
      const first = streaming ? await streamed(client, { ...params, stream: true }) : await client.chat.completions.create(params);
      const turn = first.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & { thinking_blocks?: { type: string; thinking: string; signature: string }[] };
      assert.equal(first.choices[0]!.finish_reason, 'tool_calls');
      assert.equal(turn.thinking_blocks?.length, 1);
      assert.equal(turn.thinking_blocks?.[0]?.thinking, 'Let me think about this.');
      assert.match(turn.thinking_blocks?.[0]?.signature ?? '', /^sig_/);
      const call = turn.tool_calls![0]!;
      const results = [{ role: 'tool' as const, tool_call_id: call.id, content: 'sunny' }];
      // The assistant turn sent back as the SDK gave it: thinking first, signature intact.
      const second = await client.chat.completions.create({ ...params, messages: [...ask, turn as OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam, ...results] });
      assert.equal(second.choices[0]!.message.content, 'Tool said: sunny');
      const sent = fake.received().at(-1)!.body as { messages: { role: string; content: { type: string; signature?: string }[] }[] };
      assert.deepEqual(sent.messages[1]!.content.map((b) => b.type), ['thinking', 'tool_use']);
      assert.equal(sent.messages[1]!.content[0]!.signature, turn.thinking_blocks?.[0]?.signature);
      // Without the blocks (or with an altered one) Claude refuses, as the fake does: the 400 reaches the client.
      const { thinking_blocks: _dropped, ...bare } = turn;
      const missing = await assertSdkError(client.chat.completions.create({ ...params, messages: [...ask, bare as OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam, ...results] }), 400, 'invalid_request_error');
      assert.match(missing.message, /must start with a thinking block/);
      const unsigned = { ...turn, thinking_blocks: [{ type: 'thinking', thinking: 'Let me think about this.' }] };
      const noSignature = await assertSdkError(client.chat.completions.create({ ...params, messages: [...ask, unsigned as OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam, ...results] }), 400, 'invalid_request_error');
      assert.match(noSignature.message, /signature: Field required/);
    });
  }

  const badInputs: [string, Record<string, unknown>, string, RegExp][] = [
    ['n > 1', { n: 2 }, 'unsupported_parameter', /'n'/],
    ['temperature above 1', { temperature: 1.5 }, 'invalid_value', /temperature/],
    ['an audio content part', { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }] }, 'unsupported_parameter', /input_audio/],
    ['an image over 5 MB', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${'A'.repeat(7_200_000)}` } }] }] }, 'invalid_value', /5242880 bytes/],
    ['a tool schema that is not an object', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string' } } }] }, 'invalid_value', /type 'object'/],
    ['response_format with the client own tools', { response_format: { type: 'json_object' }, tools: [WEATHER_TOOL] }, 'unsupported_parameter', /response_format.*own tools/],
    ['response_format with reasoning_effort', { response_format: { type: 'json_object' }, reasoning_effort: 'low' }, 'unsupported_parameter', /response_format.*extended thinking/],
    ['a json_schema whose root is not an object', { response_format: { type: 'json_schema', json_schema: { name: 'list', schema: { type: 'array', items: { type: 'string' } } } } }, 'unsupported_parameter', /root must be/],
    ['malformed tool call arguments', { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{not json' } }] }] }, 'invalid_value', /arguments/],
  ];
  for (const [what, extra, code, message] of badInputs) {
    it(`bad input (${what}): a clear OpenAI-shaped 400, nothing sent upstream`, async () => {
      const res = await rawRequest(stack.baseUrl, '/v1/chat/completions', {
        key: TEST_KEY,
        body: JSON.stringify({ model: 'claude', messages: [{ role: 'user', content: 'Hi' }], ...extra }),
      });
      const err = assertOpenAIError(res, 400, code);
      assert.equal(err.type, 'invalid_request_error');
      assert.match(err.message, message);
      assert.equal(stack.anthropic['claude']!.requests.length, 0, 'nothing reached the provider');
    });
  }

  it('embeddings on an anthropic model: a clear 400', async () => {
    await assertSdkError(stack.client().embeddings.create({ model: 'claude', input: 'x' }), 400, 'unsupported_parameter');
    assert.equal(stack.anthropic['claude']!.requests.length, 0);
  });

  it("Anthropic errors become OpenAI errors: 401 with its message, and 529 overloaded retried then Anthropic's overload as a 503", async () => {
    stack.anthropic['claude']!.behaviour.apiKey = 'sk-ant-other';
    const auth = await assertSdkError(stack.client().chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Hi' }] }), 401, 'invalid_api_key');
    assert.match(auth.message, /invalid x-api-key/);
    assert.equal((auth.error as { type: string }).type, 'authentication_error');
    Object.assign(stack.anthropic['claude']!.behaviour, { apiKey: 'sk-ant-fake', status: 529 });
    stack.anthropic['claude']!.requests.length = 0;
    // Overloaded to the end: Anthropic's own overload (529 is not an OpenAI status: 503), not the summary.
    const overloaded = await assertSdkError(stack.client().chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Hi' }] }), 503, 'provider_overloaded');
    assert.match(overloaded.message, /Overloaded/);
    assert.equal(stack.anthropic['claude']!.received().length, 3, 'retried up to the attempt limit');
  });

  it('529 overloaded once, then served: the retry is invisible to the client', async () => {
    Object.assign(stack.anthropic['claude']!.behaviour, { status: 529, failNext: 1 });
    const c = await stack.client().chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(c.choices[0]?.message.content, 'Hello from the fake Anthropic model.');
    assert.equal(stack.anthropic['claude']!.received().length, 2);
  });

  it('a stream that breaks mid-way ends with an explicit error event, never a silent truncation', async () => {
    stack.anthropic['claude']!.behaviour.resetAfterEvents = 5;
    const stream = await stack.client().chat.completions.create({ model: 'claude', stream: true, messages: [{ role: 'user', content: 'Hi' }] });
    let text = '';
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof Error, `the SDK raised an error (text so far: ${text})`);
  });

  for (const streaming of [false, true]) {
    it(`cross-type failover (${streaming ? 'streaming' : 'non-streaming'}): OpenAI answers 429, Anthropic serves, the client sees one answer`, async () => {
      stack.fakes['primary']!.behaviour.status = 429;
      const client = stack.client();
      const params = { model: 'chat', messages: [{ role: 'user' as const, content: 'Hi' }] };
      const c = streaming ? await streamed(client, { ...params, stream: true }) : await client.chat.completions.create(params);
      assert.equal(c.model, 'claude-haiku-4-5');
      assert.equal(c.choices[0]?.message.content, 'Hello from the fake Anthropic model.');
      assert.equal(c.choices[0]?.finish_reason, 'stop');
      assert.equal(stack.fakes['primary']!.received('/chat/completions').length, 1);
      const second = stack.anthropic['secondary']!.received();
      assert.equal(second.length, 1);
      assert.equal(second[0]!.status, 200);
      assert.equal((second[0]!.body as { model: string }).model, 'claude-haiku-4-5');
    });
  }

  it('the OpenAI provider of the same model still gets the body untranslated', async () => {
    const c = await stack.client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], n: 1 });
    assert.equal(c.model, 'gpt-4o');
    assert.equal(stack.anthropic['secondary']!.requests.length, 0);
    const body = stack.fakes['primary']!.received('/chat/completions')[0]!.body as Record<string, unknown>;
    assert.equal(body['n'], 1);
    assert.ok(Array.isArray(body['messages']));
  });
});
