/**
 * The Anthropic Messages front door (`/v1/messages`, `/v1/messages/count_tokens`) and OpenAI's
 * Responses API (`/v1/responses`) end to end: the official `@anthropic-ai/sdk` and `openai` clients
 * talk to real Envoy + Tollgate, which pass through to an Anthropic fake (checked byte for byte) or
 * translate to an OpenAI fake that verifies what it receives; bad inputs get each API's own error
 * shape with nothing sent upstream.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { waitFor } from '../../src/dev/local-stack.js';
import { assertOpenAIError, rawRequest, type RawResponse } from '../harness/http.js';
import { startStack, TEST_KEY, type Stack } from '../harness/stack.js';
import { ANTHROPIC_WEATHER_TOOL, NEVER_OPEN_BREAKER_GATEWAY } from '../harness/provider-fixtures.js';

const DENIED_KEY = 'sk-front-denied-0001';
const AWS = { accessKeyId: 'AKIDFAKEBEDROCK', secretAccessKey: 'fake-secret-access-key', sessionToken: 'fake-session-token' };
const BROKE_KEY = 'sk-front-broke-0001';
const CUT_KEY = 'sk-front-cut-0001';

function keyDoc(name: string, spec: string, clear: string): string {
  return `---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: ${name} }
spec:
  secretRef: { name: ${name}-key, key: key }
${spec}
---
apiVersion: v1
kind: Secret
metadata: { name: ${name}-key }
stringData: { key: ${clear} }
`;
}

function provider(name: string, type: string, fake: string, models: string, priority = 0): string {
  return `---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: ${name} }
spec:
  type: ${type}
  endpoint: "{{FAKE:${fake}}}"
  credentialSecretRef: { name: ${type === 'anthropic' ? 'ant' : 'oai'}-cred, key: token }
  priority: ${priority}
  models:
${models}
`;
}

const FILES: Record<string, string> = {
  'keys.yaml': [
    keyDoc('team-a', '  limits: { requestsPerMinute: 1000 }', TEST_KEY),
    keyDoc('denied', '  models: ["claude"]', DENIED_KEY),
    keyDoc('broke', '  limits: { tokensPerMinute: 5 }', BROKE_KEY),
    keyDoc('cut', '  limits: { tokensPerMinute: 400, midStreamPolicy: error }', CUT_KEY),
  ].join(''),
  'providers.yaml': [
    provider('claude', 'anthropic', 'claude', '    - { name: claude, upstreamModel: claude-sonnet-4-5 }'),
    provider('oai', 'openai', 'primary', '    - { name: gpt, upstreamModel: gpt-4o }'),
    provider('resp-a', 'openai', 'ra', '    - { name: resp, upstreamModel: gpt-4.1 }', 0),
    provider('resp-b', 'openai', 'rb', '    - { name: resp, upstreamModel: gpt-4.1-mini }', 1),
    provider('gem', 'gemini', 'gem', '    - { name: gem, upstreamModel: gemini-2.5-flash }'),
    provider('compat', 'openai-compatible', 'primary', '    - { name: compat, upstreamModel: qwen3 }'),
    `---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bed }
spec:
  type: aws-bedrock
  endpoint: "{{FAKE:bed}}"
  region: eu-central-1
  credentialSecretRef: { name: aws, key: credentials }
  models:
    - { name: bed, upstreamModel: "amazon.nova-pro-v1:0" }
    - { name: bed-claude, upstreamModel: "us.anthropic.claude-3-7-sonnet-20250219-v1:0" }
---
apiVersion: v1
kind: Secret
metadata: { name: aws }
stringData:
  credentials: '${JSON.stringify(AWS)}'
`,
    `---
apiVersion: v1
kind: Secret
metadata: { name: ant-cred }
stringData: { token: sk-ant-fake }
---
apiVersion: v1
kind: Secret
metadata: { name: oai-cred }
stringData: { token: sk-upstream-oai }
`,
  ].join(''),
  'gateway.yaml': NEVER_OPEN_BREAKER_GATEWAY,
};

/** What a user compares between a streamed and a non-streamed message. */
function essence(m: Anthropic.Message): unknown {
  return {
    type: m.type,
    role: m.role,
    model: m.model,
    content: m.content.map((b) => (b.type === 'tool_use' ? { type: b.type, name: b.name, input: b.input } : b)),
    stop_reason: m.stop_reason,
    output_tokens: m.usage.output_tokens,
  };
}

/** Asserts Anthropic's error shape `{"type":"error","error":{"type","message"}}` with this status and type. */
function assertAnthropicError(res: RawResponse, status: number, type: string): string {
  assert.equal(res.status, status, `expected ${status} ${type}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(res.text) as { type?: unknown; error?: { type?: unknown; message?: unknown } };
  assert.equal(body.type, 'error', res.text);
  assert.equal(body.error?.type, type, res.text);
  assert.equal(typeof body.error?.message, 'string');
  assert.ok((body.error?.message as string).length > 0);
  assert.deepEqual(Object.keys(body).sort(), ['error', 'type'], 'no OpenAI-shaped fields');
  return body.error?.message as string;
}

describe('front doors: /v1/messages and /v1/responses', () => {
  let stack: Stack;
  let anthropic: Anthropic;
  before(async () => {
    stack = await startStack({
      files: FILES,
      fakes: { primary: { chunks: 5, chunkIntervalMs: 0 }, ra: { chunks: 7, chunkIntervalMs: 0 }, rb: { chunks: 4, chunkIntervalMs: 0 } },
      anthropicFakes: { claude: { writeBytes: 7 } },
      geminiFakes: { gem: { apiKey: 'sk-upstream-oai' } },
      bedrockFakes: { bed: { ...AWS, region: 'eu-central-1' } },
      maxBodyBytes: 256 * 1024,
    });
    anthropic = new Anthropic({ baseURL: stack.baseUrl, apiKey: TEST_KEY, maxRetries: 0, timeout: 30_000 });
  });
  after(() => stack?.stop());
  beforeEach(() => {
    for (const f of Object.values(stack.anthropic)) {
      Object.assign(f.behaviour, { status: undefined, failNext: undefined, toolCalls: 1 });
      f.requests.length = 0;
    }
    for (const f of Object.values(stack.fakes)) {
      Object.assign(f.behaviour, { status: undefined, failNext: undefined, resetBeforeHeaders: undefined });
      f.requests.length = 0;
    }
  });

  const upstreamCount = (): number => Object.values(stack.fakes).reduce((n, f) => n + f.requests.length, 0) + Object.values(stack.anthropic).reduce((n, f) => n + f.requests.length, 0);

  describe('/v1/messages to an anthropic provider (pass-through)', () => {
    it('passes the body byte for byte but for the model, with the provider credential and the client anthropic-version / anthropic-beta', async () => {
      // Odd spacing, key order and escapes: any re-serialisation would change them.
      const body = '{ "max_tokens" : 50,\n  "model":"claude", "messages":[{"role":"user","content":"h\\u00e9llo  \\"there\\""}],"metadata":{"user_id":"u-1"} ,"temperature":0.5}';
      const res = await rawRequest(stack.baseUrl, '/v1/messages', {
        body,
        headers: { 'x-api-key': TEST_KEY, 'anthropic-version': '2023-01-01', 'anthropic-beta': 'tools-2024-04-04' },
      });
      assert.equal(res.status, 200, res.text);
      const msg = JSON.parse(res.text) as Anthropic.Message;
      assert.equal(msg.type, 'message');
      assert.equal(msg.content[0]?.type === 'text' ? msg.content[0].text : '', 'Hello from the fake Anthropic model.');
      const got = stack.anthropic['claude']!.received();
      assert.equal(got.length, 1);
      assert.equal(got[0]!.raw, body.replace('"model":"claude"', '"model":"claude-sonnet-4-5"'));
      assert.equal(got[0]!.headers['x-api-key'], 'sk-ant-fake');
      assert.equal(got[0]!.headers['anthropic-version'], '2023-01-01');
      assert.equal(got[0]!.headers['anthropic-beta'], 'tools-2024-04-04');
      assert.ok(!JSON.stringify(got[0]!.headers).includes(TEST_KEY), 'client key leaked upstream');
    });

    it("Anthropic answering 529 or 429 on every try: the SDK gets Claude's own OverloadedError / RateLimitError (with its retry-after)", async (t) => {
      const fake = stack.anthropic['claude']!;
      t.after(() => Object.assign(fake.behaviour, { status: undefined, retryAfterSeconds: undefined }));
      fake.behaviour.status = 529;
      const overloaded = await anthropic.messages.create({ model: 'claude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }).then(() => undefined, (e: unknown) => e);
      assert.ok(overloaded instanceof Anthropic.OverloadedError, String(overloaded));
      assert.equal(overloaded.status, 529);
      assert.equal(fake.received().length, 3, 'Envoy retried the 529 on the only provider (maxAttempts 3)');
      Object.assign(fake.behaviour, { status: 429, retryAfterSeconds: 1 });
      const limited = await anthropic.messages.create({ model: 'claude', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }).then(() => undefined, (e: unknown) => e);
      assert.ok(limited instanceof Anthropic.RateLimitError, String(limited));
      assert.equal(limited.headers?.get('retry-after'), '1');
      // The provider rests for its Retry-After (1 s): later tests must not see it resting.
      await new Promise((r) => setTimeout(r, 1100));
    });

    it("the SDK's finalMessage() from a stream equals the non-streamed message; Bearer auth works too", async () => {
      const params = { model: 'claude', max_tokens: 64, messages: [{ role: 'user' as const, content: 'Hi' }] };
      const plain = await anthropic.messages.create(params);
      const final = await anthropic.messages.stream(params).finalMessage();
      assert.deepEqual(essence(final), essence(plain));
      assert.ok(final.usage.input_tokens > 0);
      // Accounting reads Anthropic's usage: input from message_start, output from message_delta.
      let metrics = '';
      await waitFor('passthrough usage', async () => {
        metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
        const out = Number(/tollgate_tokens_total\{consumer="default\/team-a",provider="default\/claude",model="claude",kind="completion"\} (\d+)/.exec(metrics)?.[1] ?? 0);
        const prompt = Number(/tollgate_tokens_total\{consumer="default\/team-a",provider="default\/claude",model="claude",kind="prompt"\} (\d+)/.exec(metrics)?.[1] ?? 0);
        return out >= plain.usage.output_tokens + final.usage.output_tokens && prompt >= plain.usage.input_tokens + final.usage.input_tokens;
      }).catch((err: unknown) => assert.fail(`${String(err)}: ${metrics.split('\n').filter((l) => l.startsWith('tollgate_tokens_total')).join('\n')}`));
      const bearer = new Anthropic({ baseURL: stack.baseUrl, apiKey: null, authToken: TEST_KEY, maxRetries: 0 });
      const viaBearer = await bearer.messages.create(params);
      assert.deepEqual(essence(viaBearer), essence(plain));
    });

    it('tools: streamed input_json_delta accumulate to the tool input', async () => {
      const params = { model: 'claude', max_tokens: 200, tools: [ANTHROPIC_WEATHER_TOOL], messages: [{ role: 'user' as const, content: 'Weather in Paris?' }] };
      const plain = await anthropic.messages.create(params);
      const deltas: string[] = [];
      const stream = anthropic.messages.stream(params).on('inputJson', (partial) => deltas.push(partial));
      const final = await stream.finalMessage();
      assert.deepEqual(essence(final), essence(plain));
      assert.equal(final.stop_reason, 'tool_use');
      assert.ok(deltas.length >= 2, `input_json_delta events: ${deltas.length}`);
      const use = final.content.find((b) => b.type === 'tool_use');
      assert.deepEqual(use?.type === 'tool_use' ? use.input : undefined, { city: 'Paris', unit: 'celsius' });
    });

    it('count_tokens is passed to Anthropic with the upstream model', async () => {
      const counted = await anthropic.messages.countTokens({ model: 'claude', messages: [{ role: 'user', content: 'Hello there' }] });
      assert.ok(counted.input_tokens > 0);
      const got = stack.anthropic['claude']!.requests.filter((r) => r.path.endsWith('/messages/count_tokens'));
      assert.equal(got.length, 1);
      assert.equal((got[0]!.body as { model: string }).model, 'claude-sonnet-4-5');
      assert.equal(counted.input_tokens, Math.ceil(got[0]!.raw.length / 4), 'the answer is the provider\u2019s count');
    });
  });

  describe('/v1/messages to an OpenAI provider (translated)', () => {
    it('non-streamed: system, user turns and max_tokens reach chat completions; the answer is an Anthropic message with usage', async () => {
      const msg = await anthropic.messages.create({
        model: 'gpt',
        max_tokens: 100,
        system: [{ type: 'text', text: 'Be brief.' }],
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] }],
        stop_sequences: ['never'],
      });
      assert.equal(msg.type, 'message');
      assert.equal(msg.model, 'gpt-4o');
      assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from the Tollgate fake' }]);
      assert.equal(msg.stop_reason, 'end_turn');
      assert.equal(msg.usage.output_tokens, 5);
      assert.ok(msg.usage.input_tokens > 0);
      const sent = stack.fakes['primary']!.received('/chat/completions');
      assert.equal(sent.length, 1);
      const body = sent[0]!.body as Record<string, unknown>;
      assert.equal(body['model'], 'gpt-4o');
      assert.equal(body['max_completion_tokens'], 100);
      assert.deepEqual(body['stop'], ['never']);
      assert.deepEqual(body['messages'], [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] },
      ]);
      assert.equal(sent[0]!.headers['authorization'], 'Bearer sk-upstream-oai');
      assert.equal(sent[0]!.headers['anthropic-version'], undefined, 'Anthropic headers are not sent to OpenAI');
      assert.equal(sent[0]!.headers['x-api-key'], undefined);
    });

    it("streamed: Anthropic's event sequence; finalMessage() equals the non-streamed message", async () => {
      const params = { model: 'gpt', max_tokens: 64, messages: [{ role: 'user' as const, content: 'Hi' }] };
      const plain = await anthropic.messages.create(params);
      const types: string[] = [];
      const stream = anthropic.messages.stream(params).on('streamEvent', (e) => types.push(e.type));
      const final = await stream.finalMessage();
      assert.deepEqual(essence(final), essence(plain));
      assert.equal(final.usage.input_tokens, plain.usage.input_tokens, 'message_delta carries the whole usage');
      assert.deepEqual(types.slice(0, 3), ['message_start', 'content_block_start', 'content_block_delta']);
      assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
      const sent = stack.fakes['primary']!.received('/chat/completions').map((r) => r.body as Record<string, unknown>);
      assert.deepEqual(sent[1]?.['stream_options'], { include_usage: true });
    });

    it('the raw stream has ping and Anthropic SSE framing (event: lines)', async () => {
      const res = await fetch(`${stack.baseUrl}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': TEST_KEY, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({ model: 'gpt', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
      });
      assert.equal(res.status, 200);
      const events = (await res.text()).split('\n\n').filter((e) => e !== '');
      const names = events.map((e) => /^event: (\S+)/.exec(e)?.[1]);
      assert.deepEqual(names.slice(0, 2), ['message_start', 'ping']);
      assert.equal(names.at(-1), 'message_stop');
      for (const e of events) {
        const [head, data] = e.split('\n');
        assert.equal((JSON.parse(data!.slice('data: '.length)) as { type: string }).type, head!.slice('event: '.length));
      }
    });

    it('tools: streamed tool call arguments arrive as input_json_delta; the tool_result round-trips as a tool message', async () => {
      const params = { model: 'gpt', max_tokens: 200, tools: [ANTHROPIC_WEATHER_TOOL], messages: [{ role: 'user' as const, content: 'Weather in Paris?' }] };
      const plain = await anthropic.messages.create(params);
      const deltas: string[] = [];
      const final = await anthropic.messages.stream(params).on('inputJson', (partial) => deltas.push(partial)).finalMessage();
      assert.deepEqual(essence(final), essence(plain));
      assert.equal(final.stop_reason, 'tool_use');
      assert.equal(deltas.length, 3, 'one input_json_delta per streamed arguments piece');
      const use = plain.content.find((b) => b.type === 'tool_use');
      assert.ok(use?.type === 'tool_use');
      assert.deepEqual(use.input, { city: 'Paris', unit: 'celsius' });
      const sentTools = (stack.fakes['primary']!.received('/chat/completions')[0]!.body as Record<string, unknown>)['tools'];
      assert.deepEqual(sentTools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: ANTHROPIC_WEATHER_TOOL.input_schema } }]);
      const answer = await anthropic.messages.create({
        model: 'gpt',
        max_tokens: 200,
        tools: [ANTHROPIC_WEATHER_TOOL],
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: plain.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] },
        ],
      });
      assert.equal(answer.stop_reason, 'end_turn');
      const third = stack.fakes['primary']!.received('/chat/completions')[2]!.body as { messages: Record<string, unknown>[] };
      assert.deepEqual(third.messages.slice(1), [
        { role: 'assistant', content: null, tool_calls: [{ id: use.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' } }] },
        { role: 'tool', tool_call_id: use.id, content: 'sunny' },
      ]);
    });

    it('thinking: enabled thinking becomes reasoning_effort; reasoning_content comes back as a thinking block, streamed as thinking_delta', async () => {
      const params = { model: 'gpt', max_tokens: 4000, thinking: { type: 'enabled' as const, budget_tokens: 2048 }, messages: [{ role: 'user' as const, content: 'Think' }] };
      const plain = await anthropic.messages.create(params);
      assert.deepEqual(plain.content.map((b) => b.type), ['thinking', 'text']);
      assert.equal(plain.content[0]?.type === 'thinking' ? plain.content[0].thinking : '', 'Thinking it over carefully.');
      const thinkingDeltas: string[] = [];
      const final = await anthropic.messages.stream(params).on('thinking', (d) => thinkingDeltas.push(d)).finalMessage();
      assert.deepEqual(essence(final), essence(plain));
      assert.ok(thinkingDeltas.length >= 2, `thinking deltas: ${thinkingDeltas.length}`);
      assert.equal((stack.fakes['primary']!.received('/chat/completions')[0]!.body as Record<string, unknown>)['reasoning_effort'], 'low');
    });

    it("a tool's strict: true reaches OpenAI as function.strict when its schema fits OpenAI strict mode, and is dropped when OpenAI would refuse it", async () => {
      const closed = { type: 'object' as const, properties: { city: { type: 'string' }, unit: { type: ['string', 'null'] } }, required: ['city', 'unit'], additionalProperties: false };
      const strictTool: Anthropic.Tool = { name: 'get_weather', description: 'Weather in a city', input_schema: closed, strict: true };
      const fake = stack.fakes['primary']!;
      const sentFunction = (): Record<string, unknown> => ((fake.received('/chat/completions').at(-1)!.body as { tools: { function: Record<string, unknown> }[] }).tools[0]!.function);
      const fits = await anthropic.messages.create({ model: 'gpt', max_tokens: 200, tools: [strictTool], messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      assert.equal(fits.stop_reason, 'tool_use');
      assert.equal(sentFunction()['strict'], true);
      // ANTHROPIC_WEATHER_TOOL leaves 'unit' optional: valid for Anthropic's strict mode, a 400 from OpenAI's. Sent unenforced.
      const loose = await anthropic.messages.create({ model: 'gpt', max_tokens: 200, tools: [{ ...ANTHROPIC_WEATHER_TOOL, strict: true }], messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      assert.equal(loose.stop_reason, 'tool_use');
      assert.equal(sentFunction()['strict'], undefined);
      // The fake refuses that schema in strict mode as OpenAI does (a chat client passes strict as it is).
      const refused = await rawRequest(stack.baseUrl, '/v1/chat/completions', {
        key: TEST_KEY,
        body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'Weather?' }], tools: [{ type: 'function', function: { name: 'get_weather', parameters: ANTHROPIC_WEATHER_TOOL.input_schema, strict: true } }] }),
      });
      assert.equal(refused.status, 400, refused.text);
      assert.match(refused.text, /Invalid schema for function 'get_weather': In context=\(\), 'additionalProperties' is required to be supplied and to be false/);
    });

    it("count_tokens is answered by the gateway's estimator; nothing is sent upstream", async () => {
      const short = await anthropic.messages.countTokens({ model: 'gpt', messages: [{ role: 'user', content: 'Hi' }] });
      const long = await anthropic.messages.countTokens({ model: 'gpt', system: 'You are a helpful assistant.', messages: [{ role: 'user', content: 'Hi '.repeat(200) }] });
      assert.ok(short.input_tokens > 0);
      assert.ok(long.input_tokens > short.input_tokens + 150, `${long.input_tokens} vs ${short.input_tokens}`);
      const { response } = await anthropic.messages.countTokens({ model: 'gpt', messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
      assert.equal(response.headers.get('x-tollgate-token-count'), 'estimate', 'the count says it is an estimate');
      assert.equal(upstreamCount(), 0);
    });

    it('accounting and metrics: usage is recorded under api="messages"', async () => {
      await anthropic.messages.stream({ model: 'gpt', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] }).finalMessage();
      let metrics = '';
      await waitFor('messages metrics', async () => {
        metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
        return /tollgate_requests_total\{consumer="default\/team-a",provider="default\/oai",model="gpt",upstream_model="gpt-4o",status="200",api="messages"\} [1-9]/.test(metrics) &&
          /tollgate_tokens_total\{consumer="default\/team-a",provider="default\/oai",model="gpt",kind="completion"\} [1-9]/.test(metrics);
      }).catch((err: unknown) => assert.fail(`${String(err)}: ${metrics.split('\n').filter((l) => l.startsWith('tollgate_requests_total') || l.startsWith('tollgate_tokens_total')).join('\n')}`));
    });
  });

  describe('/v1/messages to Gemini and Bedrock (translated through chat completions)', () => {
    for (const model of ['gem', 'bed']) {
      it(`${model}: non-streamed and streamed answers agree; tools stream as input_json_delta`, async () => {
        const params = { model, max_tokens: 200, system: 'Be brief.', messages: [{ role: 'user' as const, content: 'Hi' }] };
        const plain = await anthropic.messages.create(params);
        assert.equal(plain.type, 'message');
        assert.equal(plain.stop_reason, 'end_turn');
        assert.ok(plain.content[0]?.type === 'text' && plain.content[0].text.length > 0, JSON.stringify(plain.content));
        assert.ok(plain.usage.input_tokens > 0 && plain.usage.output_tokens > 0);
        const final = await anthropic.messages.stream(params).finalMessage();
        assert.deepEqual(essence(final), essence(plain));
        const toolParams = { ...params, tools: [ANTHROPIC_WEATHER_TOOL], messages: [{ role: 'user' as const, content: 'Weather in Paris?' }] };
        const toolPlain = await anthropic.messages.create(toolParams);
        const deltas: string[] = [];
        const toolFinal = await anthropic.messages.stream(toolParams).on('inputJson', (p) => deltas.push(p)).finalMessage();
        assert.deepEqual(essence(toolFinal), essence(toolPlain));
        assert.equal(toolFinal.stop_reason, 'tool_use');
        assert.ok(deltas.length >= 1);
        const use = toolFinal.content.find((b) => b.type === 'tool_use');
        assert.ok(use?.type === 'tool_use' && use.name === 'get_weather', JSON.stringify(toolFinal.content));
      });
    }
  });

  describe('/v1/messages to Claude on Bedrock: thinking in a tool loop', () => {
    for (const streaming of [false, true]) {
      it(`the signed thinking block comes back (${streaming ? 'streamed' : 'non-streamed'}) and goes back to Bedrock unchanged in the next turn (InvokeModel, natively)`, async () => {
        const fake = stack.bedrock['bed']!;
        fake.requests.length = 0;
        const ask = [{ role: 'user' as const, content: 'Weather in Paris?' }];
        const params = { model: 'bed-claude', max_tokens: 4000, thinking: { type: 'enabled' as const, budget_tokens: 2048 }, tools: [ANTHROPIC_WEATHER_TOOL], messages: ask };
        const first = streaming ? await anthropic.messages.stream(params).finalMessage() : await anthropic.messages.create(params);
        assert.deepEqual(first.content.map((b) => b.type), ['thinking', 'tool_use']);
        const thinking = first.content[0]!;
        assert.ok(thinking.type === 'thinking' && /^sig_/.test(thinking.signature) && thinking.thinking === 'Let me think about the weather first.', JSON.stringify(thinking));
        const use = first.content[1]!;
        assert.ok(use.type === 'tool_use');
        const answer = await anthropic.messages.create({
          ...params,
          messages: [...ask, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] }],
        });
        assert.equal(answer.stop_reason, 'end_turn');
        const text = answer.content.find((b) => b.type === 'text');
        assert.equal(text?.type === 'text' ? text.text : '', 'Tool said: sunny');
        const sent = fake.received().at(-1)!;
        assert.equal(sent.status, 200);
        assert.match(sent.path, /\/invoke$/);
        const turn = (sent.body as { messages: { content: Record<string, unknown>[] }[] }).messages[1]!;
        assert.deepEqual(turn.content[0], { type: 'thinking', thinking: thinking.thinking, signature: thinking.signature });
      });
    }
  });

  describe('/v1/messages bad inputs: Anthropic error shape and status, nothing sent upstream', () => {
    const post = (body: string, headers: Record<string, string> = { 'x-api-key': TEST_KEY }): Promise<RawResponse> => rawRequest(stack.baseUrl, '/v1/messages', { body, headers });
    const ok = JSON.stringify({ model: 'gpt', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] });

    it('malformed JSON, missing max_tokens, unknown block type, bad role', async () => {
      assertAnthropicError(await post('{"model": "gpt", '), 400, 'invalid_request_error');
      assert.match(assertAnthropicError(await post(JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'Hi' }] })), 400, 'invalid_request_error'), /max_tokens/);
      assert.match(assertAnthropicError(await post(JSON.stringify({ model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'hologram' }] }] })), 400, 'invalid_request_error'), /hologram/);
      assertAnthropicError(await post(JSON.stringify({ model: 'gpt', max_tokens: 5, messages: [{ role: 'system', content: 'x' }] })), 400, 'invalid_request_error');
      assertAnthropicError(await post(JSON.stringify({ model: 'gpt', max_tokens: 5, top_k: 2, messages: [{ role: 'user', content: 'x' }] })), 400, 'invalid_request_error');
      assert.equal(upstreamCount(), 0);
    });

    it('no key, wrong key, denied model, unknown model, over budget, unknown path', async () => {
      assertAnthropicError(await post(ok, {}), 401, 'authentication_error');
      assertAnthropicError(await post(ok, { 'x-api-key': 'sk-wrong' }), 401, 'authentication_error');
      assertAnthropicError(await post(ok, { authorization: 'Bearer sk-wrong' }), 401, 'authentication_error');
      assertAnthropicError(await post(ok, { 'x-api-key': DENIED_KEY }), 403, 'permission_error');
      assertAnthropicError(await post(ok.replace('"gpt"', '"no-such-model"')), 404, 'not_found_error');
      assert.match(assertAnthropicError(await post(ok, { 'x-api-key': BROKE_KEY }), 429, 'rate_limit_error'), /token/i);
      assertAnthropicError(await rawRequest(stack.baseUrl, '/v1/messages/batches', { body: ok, headers: { 'x-api-key': TEST_KEY } }), 404, 'not_found_error');
      assert.equal(upstreamCount(), 0);
      // The SDK sees them as its own typed errors.
      await assert.rejects(new Anthropic({ baseURL: stack.baseUrl, apiKey: 'sk-wrong', maxRetries: 0 }).messages.create({ model: 'gpt', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }), Anthropic.AuthenticationError);
      // Healthy afterwards.
      const after = await anthropic.messages.create({ model: 'gpt', max_tokens: 5, messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(after.type, 'message');
    });

    it("Envoy's own replies too: body over the limit, provider unreachable", async () => {
      const big = JSON.stringify({ model: 'gpt', max_tokens: 5, messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] });
      assertAnthropicError(await post(big), 413, 'request_too_large');
      stack.fakes['primary']!.behaviour.resetBeforeHeaders = true;
      const res = await post(ok);
      assertAnthropicError(res, 503, 'overloaded_error');
      const chat = await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: TEST_KEY, body: JSON.stringify({ model: 'gpt', messages: [{ role: 'user', content: 'x' }] }) });
      assertOpenAIError(chat, 503, 'provider_unavailable');
      // The OpenAI front door keeps OpenAI's shape for the same replies.
      assertOpenAIError(await rawRequest(stack.baseUrl, '/v1/chat/completions', { key: TEST_KEY, body: big.replace('"max_tokens":5,', '') }), 413, 'request_too_large');
    });

    it('a token budget that runs out mid-stream ends the stream with an Anthropic error event', async () => {
      const fake = stack.fakes['primary']!;
      fake.behaviour.chunks = 400;
      fake.behaviour.chunkIntervalMs = 1;
      try {
        const res = await fetch(`${stack.baseUrl}/v1/messages`, {
          method: 'POST',
          headers: { 'x-api-key': CUT_KEY, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt', max_tokens: 1000, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
        });
        assert.equal(res.status, 200);
        let text = '';
        const decoder = new TextDecoder();
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
        } catch {
          // The gateway resets the stream after the error event (the provider stops generating).
        }
        const events = text.split('\n\n').filter((e) => e.startsWith('event: '));
        const last = events.at(-1) ?? '';
        assert.match(last, /^event: error\ndata: /, `last event: ${last}`);
        const data = JSON.parse(last.slice(last.indexOf('data: ') + 6)) as { type: string; error: { type: string; message: string } };
        assert.equal(data.type, 'error');
        assert.equal(data.error.type, 'rate_limit_error');
        assert.match(data.error.message, /budget/);
        assert.ok(!text.includes('"error":{"message"'), 'no OpenAI-shaped error in the stream');
        assert.ok(events.filter((e) => e.startsWith('event: content_block_delta')).length < 400, 'the stream was stopped before its 400 chunks');
      } finally {
        fake.behaviour.chunks = 5;
        fake.behaviour.chunkIntervalMs = 0;
      }
    });

    it('provider errors reach the client in Anthropic shape', async () => {
      stack.fakes['primary']!.behaviour.status = 400;
      const res = await post(ok);
      assertAnthropicError(res, 400, 'invalid_request_error');
    });
  });

  describe('/v1/responses', () => {
    it('non-streamed: passed through to OpenAI with the upstream model; the SDK reads output_text and usage', async () => {
      const r = await stack.client().responses.create({ model: 'resp', input: 'Hi', instructions: 'Be brief.', max_output_tokens: 50 });
      assert.equal(r.output_text, 'Hello from the Tollgate fake provider.');
      assert.equal(r.usage?.output_tokens, 7);
      const got = stack.fakes['ra']!.received('/responses');
      assert.equal(got.length, 1);
      assert.deepEqual(got[0]!.body, { model: 'gpt-4.1', input: 'Hi', instructions: 'Be brief.', max_output_tokens: 50 });
      assert.equal(got[0]!.headers['authorization'], 'Bearer sk-upstream-oai');
    });

    it('streamed: events pass through; response.completed carries usage, which is accounted', async () => {
      const stream = await stack.client().responses.create({ model: 'resp', input: [{ role: 'user', content: 'Hi' }], stream: true });
      const types: string[] = [];
      let completed: { usage?: { output_tokens: number } | null } | undefined;
      let text = '';
      for await (const e of stream) {
        types.push(e.type);
        if (e.type === 'response.output_text.delta') text += e.delta;
        if (e.type === 'response.completed') completed = e.response;
      }
      assert.equal(text, 'Hello from the Tollgate fake provider.');
      assert.equal(types.at(-1), 'response.completed');
      assert.equal(completed?.usage?.output_tokens, 7);
      let metrics = '';
      await waitFor('responses usage', async () => {
        metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
        return /tollgate_requests_total\{consumer="default\/team-a",provider="default\/resp-a",model="resp",upstream_model="gpt-4.1",status="200",api="responses"\} [1-9]/.test(metrics) &&
          Number(/tollgate_tokens_total\{consumer="default\/team-a",provider="default\/resp-a",model="resp",kind="completion"\} (\d+)/.exec(metrics)?.[1] ?? 0) >= 7;
      }).catch((err: unknown) => assert.fail(`${String(err)}: ${metrics.split('\n').filter((l) => l.startsWith('tollgate_tokens_total')).join('\n')}`));
    });

    it('fails over to the next provider serving the Responses API', async () => {
      stack.fakes['ra']!.behaviour.status = 503;
      const r = await stack.client().responses.create({ model: 'resp', input: 'Hi' });
      assert.equal(r.output_text, 'Hello from the Tollgate');
      assert.ok(stack.fakes['ra']!.received('/responses').length >= 1);
      assert.equal((stack.fakes['rb']!.received('/responses')[0]!.body as { model: string }).model, 'gpt-4.1-mini');
    });

    it('bad inputs: OpenAI error shape, nothing sent upstream', async () => {
      const post = (body: string, key = TEST_KEY): Promise<RawResponse> => rawRequest(stack.baseUrl, '/v1/responses', { body, key });
      assertOpenAIError(await post('{"model":'), 400, 'invalid_json');
      assertOpenAIError(await post(JSON.stringify({ input: 'x' })), 400, 'missing_model');
      assertOpenAIError(await post(JSON.stringify({ model: 'resp', input: 'x' }), 'sk-wrong'), 401, 'invalid_api_key');
      assertOpenAIError(await post(JSON.stringify({ model: 'resp', input: 'x' }), DENIED_KEY), 403, 'model_not_allowed');
      assertOpenAIError(await post(JSON.stringify({ model: 'resp', input: 'x' }), BROKE_KEY), 429, 'rate_limit_exceeded');
      // Translated providers: what needs OpenAI's server side is refused before anything is sent.
      const tool = assertOpenAIError(await post(JSON.stringify({ model: 'claude', input: 'x', tools: [{ type: 'web_search' }] })), 400, 'unsupported_parameter');
      assert.match(tool.message, /web_search/);
      assertOpenAIError(await post(JSON.stringify({ model: 'compat', input: [{ type: 'item_reference', id: 'msg_1' }] })), 400, 'unsupported_parameter');
      assertOpenAIError(await post(JSON.stringify({ model: 'claude', input: 'x', previous_response_id: 'resp_unknown1' })), 404, 'response_not_found');
      assert.equal(upstreamCount(), 0);
    });
  });

  describe('/v1/responses to chat-translated providers (anthropic, gemini, aws-bedrock, openai-compatible)', () => {
    const WEATHER_FN = { type: 'function' as const, name: 'get_weather', description: 'Weather in a city', strict: false, parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] } };
    /** What a user compares between a streamed and a non-streamed response. */
    const gist = (r: { status?: string | undefined; output: readonly unknown[]; usage?: { output_tokens: number } | undefined; output_text: string }): unknown => ({
      status: r.status,
      text: r.output_text,
      output: r.output.map((o) => {
        const item = o as Record<string, unknown>;
        return item['type'] === 'function_call' ? { type: 'function_call', name: item['name'], arguments: JSON.parse(String(item['arguments'])) as unknown } : { type: item['type'] };
      }),
      outputTokens: r.usage?.output_tokens,
    });
    for (const model of ['claude', 'gem', 'bed', 'compat']) {
      it(`${model}: create and stream agree (finalResponse), instructions reach the provider, function calls round-trip`, async () => {
        const client = stack.client();
        const params = { model, instructions: 'Be brief.', input: 'Hi', max_output_tokens: 200 };
        const plain = await client.responses.create(params);
        assert.equal(plain.object, 'response');
        assert.equal(plain.status, 'completed');
        assert.ok(plain.output_text.length > 0, JSON.stringify(plain.output));
        assert.ok((plain.usage?.input_tokens ?? 0) > 0 && (plain.usage?.output_tokens ?? 0) > 0, JSON.stringify(plain.usage));
        const types: string[] = [];
        const final = await client.responses.stream(params).on('event', (e) => types.push(e.type)).finalResponse();
        assert.deepEqual(gist(final), gist(plain));
        assert.deepEqual(types.slice(0, 2), ['response.created', 'response.in_progress']);
        assert.equal(types.at(-1), 'response.completed');
        assert.ok(types.includes('response.output_text.delta'));
        // A tool loop as Codex runs it: the call, then its output in the next request's input.
        const toolParams = { model, input: 'Weather in Paris?', tools: [WEATHER_FN], max_output_tokens: 200 };
        const call = await client.responses.create(toolParams);
        const fn = call.output.find((o) => o.type === 'function_call');
        assert.ok(fn?.type === 'function_call' && fn.name === 'get_weather', JSON.stringify(call.output));
        assert.equal(typeof (JSON.parse(fn.arguments) as { city?: unknown }).city, 'string');
        const streamedCall = await client.responses.stream(toolParams).finalResponse();
        assert.deepEqual(gist(streamedCall), gist(call));
        const answer = await client.responses.create({
          model,
          tools: [WEATHER_FN],
          max_output_tokens: 200,
          input: [{ role: 'user', content: 'Weather in Paris?' }, { type: 'function_call', call_id: fn.call_id, name: fn.name, arguments: fn.arguments }, { type: 'function_call_output', call_id: fn.call_id, output: 'Sunny, 21 C' }],
        });
        assert.ok(answer.output_text.length > 0, JSON.stringify(answer.output));
        // Nothing is stored at a translated provider: the gateway does not know the id.
        await assert.rejects(client.responses.retrieve(plain.id), (err: { status?: number }) => err.status === 404);
      });
    }

    it('claude with reasoning: a reasoning item with the thinking summary; its encrypted_content brings the signed thinking block back in the tool loop', async () => {
      const client = stack.client();
      const params = { model: 'claude', input: 'Weather in Paris?', tools: [WEATHER_FN], reasoning: { effort: 'low' as const }, max_output_tokens: 4000, include: ['reasoning.encrypted_content' as const] };
      const call = await client.responses.create(params);
      assert.deepEqual(call.output.map((o) => o.type), ['reasoning', 'function_call']);
      const reasoning = call.output[0];
      assert.ok(reasoning?.type === 'reasoning' && reasoning.summary[0]?.text === 'Let me think about this.', JSON.stringify(reasoning));
      assert.ok(reasoning.encrypted_content);
      const streamed = await client.responses.stream(params).finalResponse();
      assert.deepEqual(gist(streamed), gist(call));
      const fn = call.output[1];
      assert.ok(fn?.type === 'function_call');
      // Codex's next turn: everything it got back, then the tool's output. The fake refuses a tool
      // result whose assistant turn does not start with the signed thinking block.
      const answer = await client.responses.create({ ...params, input: [{ role: 'user', content: 'Weather in Paris?' }, reasoning, fn, { type: 'function_call_output', call_id: fn.call_id, output: 'Sunny' }] });
      assert.ok(answer.output_text.includes('Sunny'), answer.output_text);
      const sent = stack.anthropic['claude']!.requests.at(-1)!.body as { messages: { role: string; content: { type: string }[] }[] };
      assert.deepEqual(sent.messages[1]?.content.map((b) => b.type), ['thinking', 'tool_use']);
    });

    it('claude: the Anthropic request carries the instructions and the cap; text.format json_schema answers JSON text', async () => {
      const fake = stack.anthropic['claude']!;
      await stack.client().responses.create({ model: 'claude', instructions: 'Be brief.', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hi there' }] }], max_output_tokens: 64 });
      const sent = fake.requests.at(-1)!.body as { system?: unknown; messages: { role: string; content: unknown }[]; max_tokens: number; model: string };
      assert.equal(sent.model, 'claude-sonnet-4-5');
      assert.equal(sent.max_tokens, 64);
      assert.deepEqual(sent.system, [{ type: 'text', text: 'Be brief.' }]);
      assert.deepEqual(sent.messages.map((m) => m.role), ['user']);
      const r = await stack.client().responses.create({
        model: 'claude',
        input: 'The weather in Paris as JSON.',
        max_output_tokens: 200,
        text: { format: { type: 'json_schema', name: 'weather', schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
      });
      assert.equal(typeof (JSON.parse(r.output_text) as { city?: unknown }).city, 'string', r.output_text);
    });
  });
});
