/**
 * The Bedrock translator on its own: request mapping, responses, errors, and the ConverseStream
 * translator fed AWS event-stream frames split at every byte boundary, plus a corrupt frame.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { isGatewayError } from '../../errors.js';
import { parseAwsCredentials, regionOf } from './api.js';
import { bedrockChat } from './chat.js';

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const options = { created: 1, includeUsage: true, model: 'amazon.nova-pro-v1:0' };

function frame(type: string, payload: unknown, kind = 'event'): Buffer {
  const headers = kind === 'event'
    ? { ':event-type': { type: 'string' as const, value: type }, ':message-type': { type: 'string' as const, value: 'event' } }
    : { ':exception-type': { type: 'string' as const, value: type }, ':message-type': { type: 'string' as const, value: 'exception' } };
  return Buffer.from(codec.encode({ headers, body: fromUtf8(JSON.stringify(payload)) }));
}

const STREAM = Buffer.concat([
  frame('messageStart', { role: 'assistant' }),
  frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Olá ' } }),
  frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'mundo' } }),
  frame('contentBlockStop', { contentBlockIndex: 0 }),
  frame('contentBlockStart', { contentBlockIndex: 1, start: { toolUse: { toolUseId: 'tu_1', name: 'w' } } }),
  frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"city":' } } }),
  frame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '"Paris"}' } } }),
  frame('contentBlockStop', { contentBlockIndex: 1 }),
  frame('messageStop', { stopReason: 'tool_use' }),
  frame('metadata', { usage: { inputTokens: 10, outputTokens: 5, cacheReadInputTokens: 3 } }),
]);

function collect(sse: string): { content: string; args: string; finish: string | null; usage: unknown; done: boolean; error: boolean } {
  const acc = { content: '', args: '', finish: null as string | null, usage: undefined as unknown, done: false, error: false };
  for (const e of sse.split('\n\n').filter((x) => x !== '')) {
    const data = e.slice(6);
    if (data === '[DONE]') {
      acc.done = true;
      continue;
    }
    const c = JSON.parse(data) as { error?: unknown; usage?: unknown; choices?: { delta: { content?: string; tool_calls?: { function: { arguments?: string } }[] }; finish_reason: string | null }[] };
    if (c.error) acc.error = true;
    if (c.usage) acc.usage = c.usage;
    const ch = c.choices?.[0];
    if (!ch) continue;
    acc.content += ch.delta.content ?? '';
    for (const t of ch.delta.tool_calls ?? []) acc.args += t.function.arguments ?? '';
    if (ch.finish_reason) acc.finish = ch.finish_reason;
  }
  return acc;
}

describe('bedrock stream translation', () => {
  it('reassembles frames split at every byte boundary into the same OpenAI chunks', () => {
    const whole = bedrockChat.stream(options);
    const reference = Buffer.concat([whole.push(STREAM), whole.end()]).toString();
    const acc = collect(reference);
    assert.equal(acc.content, 'Olá mundo');
    assert.equal(acc.args, '{"city":"Paris"}');
    assert.equal(acc.finish, 'tool_calls');
    assert.equal(acc.done, true);
    assert.deepEqual(acc.usage, { prompt_tokens: 13, completion_tokens: 5, total_tokens: 18, prompt_tokens_details: { cached_tokens: 3 } });
    for (let cut = 1; cut < STREAM.length; cut++) {
      const t = bedrockChat.stream(options);
      assert.equal(Buffer.concat([t.push(STREAM.subarray(0, cut)), t.push(STREAM.subarray(cut)), t.end()]).toString(), reference, `split at ${cut}`);
    }
  });

  it('a corrupt frame, an exception frame or an early end become an OpenAI error event', () => {
    const corrupt = Buffer.from(STREAM);
    corrupt[40] = (corrupt[40] as number) ^ 0xff;
    const t1 = bedrockChat.stream(options);
    assert.ok(collect(Buffer.concat([t1.push(corrupt), t1.end()]).toString()).error);
    const t2 = bedrockChat.stream(options);
    const out = Buffer.concat([t2.push(frame('messageStart', { role: 'assistant' })), t2.push(frame('throttlingException', { message: 'slow down' }, 'exception')), t2.end()]).toString();
    assert.match(out, /"message":"slow down","type":"rate_limit_error"/);
    const t3 = bedrockChat.stream(options);
    assert.match(Buffer.concat([t3.push(frame('messageStart', { role: 'assistant' })), t3.end()]).toString(), /stream_interrupted/);
  });
});

describe('bedrock request and response translation', () => {
  it('maps messages, tools and inference settings to Converse', () => {
    const out = bedrockChat.request(
      {
        messages: [
          { role: 'system', content: 'S' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'tu_1', type: 'function', function: { name: 'w', arguments: '{"a":1}' } }] },
          { role: 'tool', tool_call_id: 'tu_1', content: 'ok' },
        ],
        tools: [{ type: 'function', function: { name: 'w', parameters: { type: 'object', properties: {} } } }],
        tool_choice: { type: 'function', function: { name: 'w' } },
        max_completion_tokens: 50,
        top_p: 0.5,
      },
      { upstreamModel: 'm', defaultMaxTokens: undefined },
    );
    assert.ok(!isGatewayError(out));
    assert.deepEqual(JSON.parse(out.toString()), {
      messages: [
        { role: 'user', content: [{ text: 'Hi' }] },
        { role: 'assistant', content: [{ toolUse: { toolUseId: 'tu_1', name: 'w', input: { a: 1 } } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 'tu_1', content: [{ text: 'ok' }] } }] },
      ],
      system: [{ text: 'S' }],
      inferenceConfig: { maxTokens: 50, topP: 0.5 },
      toolConfig: { tools: [{ toolSpec: { name: 'w', inputSchema: { json: { type: 'object', properties: {} } } } }], toolChoice: { tool: { name: 'w' } } },
    });
  });

  it('maps a Converse response and errors (408 -> 504, 429 rate limit)', () => {
    const res = bedrockChat.response(Buffer.from(JSON.stringify({ output: { message: { role: 'assistant', content: [{ text: 'x' }] } }, stopReason: 'max_tokens', usage: { inputTokens: 2, outputTokens: 1 } })), options);
    const body = JSON.parse(res.body.toString()) as { model: string; choices: { finish_reason: string }[] };
    assert.equal(body.model, 'amazon.nova-pro-v1:0');
    assert.equal(body.choices[0]?.finish_reason, 'length');
    assert.equal(bedrockChat.status(408), 504);
    const err = JSON.parse(bedrockChat.error(429, Buffer.from('{"message":"Too many requests"}')).toString()) as { error: Record<string, unknown> };
    assert.deepEqual(err.error, { message: 'Too many requests', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' });
  });

  it('reads credentials JSON and the region from the host', () => {
    assert.ok(parseAwsCredentials('not json') instanceof Error);
    assert.ok(parseAwsCredentials('{"accessKeyId":"a"}') instanceof Error);
    assert.deepEqual(parseAwsCredentials('{"accessKeyId":"a","secretAccessKey":"b"}'), { accessKeyId: 'a', secretAccessKey: 'b' });
    const p = { name: 'x', type: 'aws-bedrock' as const, endpoint: { scheme: 'https' as const, authority: 'bedrock-runtime.eu-west-3.amazonaws.com', basePath: '' }, credential: undefined, apiVersion: undefined, priority: 0, weight: 1, firstByteTimeoutMs: undefined, service: undefined };
    assert.equal(regionOf(p), 'eu-west-3');
    assert.equal(regionOf({ ...p, region: 'ap-south-1' }), 'ap-south-1');
  });
});

describe('bedrock response_format (one forced tool) and reasoning blocks round-trip', () => {
  const ctx = { upstreamModel: 'anthropic.claude-3-5-sonnet-20240620-v1:0', defaultMaxTokens: undefined };
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

  it('json_schema.strict and function.strict: toolSpec.strict only when true; anything but a boolean is a 400', () => {
    const spec = (body: Record<string, unknown>): Record<string, unknown>[] => {
      const out = bedrockChat.request({ messages: [{ role: 'user', content: 'x' }], ...body }, ctx);
      assert.ok(!isGatewayError(out), isGatewayError(out) ? out.message : '');
      return (JSON.parse(out.toString()) as { toolConfig: { tools: { toolSpec: Record<string, unknown> }[] } }).toolConfig.tools.map((t) => t.toolSpec);
    };
    assert.equal(spec({ response_format: { type: 'json_schema', json_schema: { name: 'place', schema, strict: true } } })[0]?.['strict'], true);
    assert.ok(!('strict' in spec({ response_format: { type: 'json_schema', json_schema: { name: 'place', schema, strict: false } } })[0]!));
    assert.ok(!('strict' in spec({ response_format: { type: 'json_object' } })[0]!), 'json_object has no schema to be strict about');
    assert.deepEqual(spec({ tools: [{ type: 'function', function: { name: 'w', parameters: schema, strict: true } }, { type: 'function', function: { name: 'v', parameters: schema } }] }), [
      { name: 'w', inputSchema: { json: schema }, strict: true },
      { name: 'v', inputSchema: { json: schema } },
    ]);
    const bad = bedrockChat.request({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'p', schema, strict: 'true' } } }, ctx);
    assert.ok(isGatewayError(bad) && bad.code === 'invalid_value' && bad.message.includes('response_format.json_schema.strict'));
    const badTool = bedrockChat.request({ messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'w', strict: {} } }] }, ctx);
    assert.ok(isGatewayError(badTool) && badTool.message.includes('tools[0].function.strict'));
  });

  it('json_schema becomes toolConfig with one tool forced by name; the client own tools or reasoning with it are a 400', () => {
    const out = bedrockChat.request({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'place', schema } } }, ctx);
    assert.ok(!isGatewayError(out));
    const sent = JSON.parse(out.toString()) as { toolConfig: { tools: { toolSpec: { name: string; inputSchema: unknown } }[]; toolChoice: unknown } };
    assert.deepEqual(sent.toolConfig.tools.map((t) => [t.toolSpec.name, t.toolSpec.inputSchema]), [['place', { json: schema }]]);
    assert.deepEqual(sent.toolConfig.toolChoice, { tool: { name: 'place' } });
    const withTools = bedrockChat.request({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' }, tools: [{ type: 'function', function: { name: 'w' } }] }, ctx);
    assert.ok(isGatewayError(withTools) && withTools.message.includes('response_format'));
    const withReasoning = bedrockChat.request({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' }, reasoning_effort: 'low' }, { ...ctx, upstreamModel: 'us.anthropic.claude-3-7-sonnet-20250219-v1:0' });
    assert.ok(isGatewayError(withReasoning) && withReasoning.message.includes('use json_schema'));
    // json_schema with reasoning: Converse structured outputs (outputConfig.textFormat), no forced tool.
    const native = bedrockChat.request(
      { messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'place', description: 'A place.', schema } }, reasoning_effort: 'low' },
      { ...ctx, upstreamModel: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0' },
    );
    assert.ok(!isGatewayError(native));
    const body = JSON.parse(native.toString()) as Record<string, unknown>;
    assert.deepEqual(body['outputConfig'], { textFormat: { type: 'json_schema', structure: { jsonSchema: { schema: JSON.stringify(schema), name: 'place', description: 'A place.' } } } });
    assert.equal(body['toolConfig'], undefined);
    assert.deepEqual(body['additionalModelRequestFields'], { thinking: { type: 'enabled', budget_tokens: 2048 } });
  });

  it("the forced tool's input is the content with finish_reason stop, streamed and not", () => {
    const jsonOptions = { ...options, jsonResponse: true };
    const res = bedrockChat.response(Buffer.from(JSON.stringify({ output: { message: { role: 'assistant', content: [{ toolUse: { toolUseId: 'tu_1', name: 'place', input: { city: 'Paris' } } }] } }, stopReason: 'tool_use' })), jsonOptions);
    const body = JSON.parse(res.body.toString()) as { choices: { message: Record<string, unknown>; finish_reason: string }[] };
    assert.deepEqual(body.choices[0]?.message, { role: 'assistant', content: '{"city":"Paris"}', refusal: null });
    assert.equal(body.choices[0]?.finish_reason, 'stop');
    const stream = Buffer.concat([
      frame('messageStart', { role: 'assistant' }),
      frame('contentBlockStart', { contentBlockIndex: 0, start: { toolUse: { toolUseId: 'tu_1', name: 'place' } } }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { toolUse: { input: '{"city":' } } }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { toolUse: { input: '"Paris"}' } } }),
      frame('contentBlockStop', { contentBlockIndex: 0 }),
      frame('messageStop', { stopReason: 'tool_use' }),
      frame('metadata', { usage: { inputTokens: 1, outputTokens: 1 } }),
    ]);
    const t = bedrockChat.stream(jsonOptions);
    const acc = collect(Buffer.concat([t.push(stream), t.end()]).toString());
    assert.equal(acc.content, '{"city":"Paris"}');
    assert.equal(acc.args, '');
    assert.equal(acc.finish, 'stop');
  });

  it('reasoning blocks: thinking_blocks in responses and stream (text and signature), back as reasoningContent first in the turn', () => {
    const res = bedrockChat.response(
      Buffer.from(JSON.stringify({ output: { message: { role: 'assistant', content: [{ reasoningContent: { reasoningText: { text: 'Hmm', signature: 'sig' } } }, { reasoningContent: { redactedContent: 'b3BhcXVl' } }, { text: 'ok' }] } }, stopReason: 'end_turn' })),
      options,
    );
    const message = (JSON.parse(res.body.toString()) as { choices: { message: Record<string, unknown> }[] }).choices[0]?.message;
    assert.equal(message?.['reasoning_content'], 'Hmm');
    assert.deepEqual(message?.['thinking_blocks'], [{ type: 'thinking', thinking: 'Hmm', signature: 'sig' }, { type: 'redacted_thinking', data: 'b3BhcXVl' }]);
    const stream = Buffer.concat([
      frame('messageStart', { role: 'assistant' }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text: 'Hm' } } }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text: 'm' } } }),
      frame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { signature: 'sig' } } }),
      frame('contentBlockStop', { contentBlockIndex: 0 }),
      frame('contentBlockDelta', { contentBlockIndex: 1, delta: { text: 'ok' } }),
      frame('contentBlockStop', { contentBlockIndex: 1 }),
      frame('messageStop', { stopReason: 'end_turn' }),
      frame('metadata', { usage: { inputTokens: 1, outputTokens: 1 } }),
    ]);
    const t = bedrockChat.stream(options);
    const sse = Buffer.concat([t.push(stream), t.end()]).toString();
    const blocks = sse.split('\n\n').filter((e) => e.includes('thinking_blocks')).map((e) => (JSON.parse(e.slice(6)) as { choices: { delta: Record<string, unknown> }[] }).choices[0]?.delta);
    assert.deepEqual(blocks, [{ thinking_blocks: [{ type: 'thinking', thinking: 'Hmm', signature: 'sig' }] }]);
    const out = bedrockChat.request(
      {
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: null, thinking_blocks: [{ type: 'thinking', thinking: 'Hmm', signature: 'sig' }], tool_calls: [{ id: 'tu_1', type: 'function', function: { name: 'w', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'tu_1', content: 'ok' },
        ],
        tools: [{ type: 'function', function: { name: 'w' } }],
      },
      ctx,
    );
    assert.ok(!isGatewayError(out));
    assert.deepEqual((JSON.parse(out.toString()) as { messages: { content: unknown[] }[] }).messages[1]?.content, [
      { reasoningContent: { reasoningText: { text: 'Hmm', signature: 'sig' } } },
      { toolUse: { toolUseId: 'tu_1', name: 'w', input: {} } },
    ]);
  });
});
