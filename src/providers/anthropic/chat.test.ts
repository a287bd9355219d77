/**
 * The Anthropic translator on its own: request mapping, non-streamed responses, errors, and the
 * stream translator fed recorded event shapes split at every possible byte boundary.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../errors.js';
import { anthropicChat, DEFAULT_MAX_TOKENS } from './chat.js';

const ctx = { upstreamModel: 'claude-x', defaultMaxTokens: undefined };

function request(body: Record<string, unknown>, c: { upstreamModel: string; defaultMaxTokens: number | undefined } = ctx): Record<string, unknown> {
  const out = anthropicChat.request(body, c);
  assert.ok(!isGatewayError(out), isGatewayError(out) ? out.message : '');
  return JSON.parse(out.toString()) as Record<string, unknown>;
}

/** A recorded Anthropic stream (event types and field shapes as in the streaming reference). */
const RECORDED = [
  ['message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [], stop_reason: null, usage: { input_tokens: 25, cache_read_input_tokens: 10, cache_creation_input_tokens: 5, output_tokens: 1 } } }],
  ['ping', { type: 'ping' }],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Hmm… ' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'abc' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Olá, ' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'mundo 🌍' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 1 }],
  ['content_block_start', { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_A', name: 'get_weather', input: {} } }],
  ['content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city": "Pa' } }],
  ['content_block_delta', { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: 'ris"}' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 2 }],
  ['content_block_start', { type: 'content_block_start', index: 3, content_block: { type: 'tool_use', id: 'toolu_B', name: 'get_time', input: {} } }],
  ['content_block_delta', { type: 'content_block_delta', index: 3, delta: { type: 'input_json_delta', partial_json: '{}' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 3 }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 42 } }],
  ['message_stop', { type: 'message_stop' }],
] as const;
const RECORDED_TEXT = RECORDED.map(([e, d]) => `event: ${e}\r\ndata: ${JSON.stringify(d)}\r\n\r\n`).join('');

interface Accumulated {
  content: string;
  reasoning: string;
  tools: { id?: string; name?: string; args: string }[];
  finish: string | null;
  usage: unknown;
  done: boolean;
  roles: number;
}

/** Accumulates OpenAI SSE output the way the OpenAI SDK does (tool calls by index). */
function accumulate(sse: string): Accumulated {
  const acc: Accumulated = { content: '', reasoning: '', tools: [], finish: null, usage: undefined, done: false, roles: 0 };
  for (const event of sse.split('\n\n')) {
    if (event === '') continue;
    assert.ok(event.startsWith('data: '), event);
    const data = event.slice(6);
    if (data === '[DONE]') {
      acc.done = true;
      continue;
    }
    const chunk = JSON.parse(data) as { usage?: unknown; choices: { delta: Record<string, unknown>; finish_reason: string | null }[] };
    if (chunk.usage) acc.usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    const d = choice.delta as { role?: string; content?: string; reasoning_content?: string; tool_calls?: { index: number; id?: string; function: { name?: string; arguments?: string } }[] };
    if (d.role) acc.roles++;
    acc.content += d.content ?? '';
    acc.reasoning += d.reasoning_content ?? '';
    for (const t of d.tool_calls ?? []) {
      const slot = (acc.tools[t.index] ??= { args: '' });
      if (t.id) slot.id = t.id;
      if (t.function.name) slot.name = t.function.name;
      slot.args += t.function.arguments ?? '';
    }
    if (choice.finish_reason) acc.finish = choice.finish_reason;
  }
  return acc;
}

describe('anthropic request translation', () => {
  it('moves system and developer messages to `system`, keeps turns, and uses the default max_tokens', () => {
    const out = request({
      model: 'claude',
      messages: [
        { role: 'system', content: 'A' },
        { role: 'developer', content: [{ type: 'text', text: 'B' }] },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
        { role: 'user', content: 'Again' },
      ],
    });
    assert.deepEqual(out, {
      model: 'claude-x',
      max_tokens: DEFAULT_MAX_TOKENS,
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: [{ type: 'text', text: 'Hello' }] },
        { role: 'user', content: 'Again' },
      ],
      system: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B' }],
    });
    assert.equal(request({ messages: [{ role: 'user', content: 'x' }] }, { upstreamModel: 'm', defaultMaxTokens: 99 })['max_tokens'], 99);
    assert.equal(request({ messages: [{ role: 'user', content: 'x' }], max_tokens: 5, max_completion_tokens: 7 })['max_tokens'], 7);
  });

  it('maps tool calls and tool results with their ids, merging consecutive results into one user turn', () => {
    const out = request({
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'w', arguments: '{"city":"Paris"}' } }, { id: 'call_2', type: 'function', function: { name: 'w', arguments: '' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: 'rainy' }] },
      ],
      tools: [{ type: 'function', function: { name: 'w', parameters: { type: 'object', properties: {} } } }],
      tool_choice: 'auto',
      stop: 'END',
    });
    assert.deepEqual(out['messages'], [
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'w', input: { city: 'Paris' } }, { type: 'tool_use', id: 'call_2', name: 'w', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'sunny' }, { type: 'tool_result', tool_use_id: 'call_2', content: 'rainy' }] },
    ]);
    assert.deepEqual(out['tool_choice'], { type: 'auto' });
    assert.deepEqual(out['stop_sequences'], ['END']);
  });

  it('reasoning_effort becomes a thinking budget inside the client cap', () => {
    const out = request({ messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'high', max_completion_tokens: 10_000 });
    assert.deepEqual(out['thinking'], { type: 'enabled', budget_tokens: 9_999 });
    assert.equal(out['max_tokens'], 10_000);
    const refused = anthropicChat.request({ messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'low', max_tokens: 500 }, ctx);
    assert.ok(isGatewayError(refused) && refused.code === 'invalid_value');
  });

  it('refuses what Anthropic cannot honour with a 400 naming the parameter', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ n: 3 }, "'n'"],
      [{ logprobs: true }, 'logprobs'],
      [{ presence_penalty: 0.5 }, 'presence_penalty'],
      [{ response_format: { type: 'json_object' }, tools: [{ type: 'function', function: { name: 'w' } }] }, 'response_format'],
      [{ response_format: { type: 'json_object' }, reasoning_effort: 'low' }, 'response_format'],
      [{ response_format: { type: 'json_schema', json_schema: { name: 'list', schema: { type: 'array' } } } }, "root must be {type: 'object'}"],
      [{ response_format: { type: 'xml' } }, 'response_format.type'],
      [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y', thinking_blocks: [{ type: 'thought' }] }] }, 'thinking_blocks[0].type'],
      [{ tools: [{ type: 'function', function: { name: 'bad name' } }] }, 'tools[0].function.name'],
      [{ tool_choice: { type: 'function', function: { name: 'nope' } }, tools: [{ type: 'function', function: { name: 'w' } }] }, 'nope'],
      [{ messages: [{ role: 'function', name: 'f', content: 'x' }] }, 'function'],
      [{ messages: [] }, 'messages'],
      [{ messages: [{ role: 'system', content: 'only system' }] }, 'at least one user'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://plain.example/a.png' } }] }] }, 'https URL'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/tiff;base64,AAAA' } }] }] }, 'image/tiff'],
    ];
    for (const [extra, mention] of cases) {
      const out = anthropicChat.request({ messages: [{ role: 'user', content: 'x' }], ...extra }, ctx);
      assert.ok(isGatewayError(out), `accepted ${JSON.stringify(extra)}`);
      assert.ok(out.message.includes(mention), `${out.message} should mention ${mention}`);
    }
  });
});

describe('anthropic response translation', () => {
  it('turns a message into a chat.completion with tool calls, reasoning and usage (cached tokens included in prompt_tokens)', () => {
    const msg = {
      id: 'msg_1',
      model: 'claude-x',
      content: [
        { type: 'thinking', thinking: 'Hmm', signature: 's' },
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_use', id: 'toolu_A', name: 'w', input: { city: 'Paris' } },
      ],
      stop_reason: 'tool_use',
      usage: { input_tokens: 25, cache_read_input_tokens: 10, cache_creation_input_tokens: 5, output_tokens: 42 },
    };
    const out = anthropicChat.response(Buffer.from(JSON.stringify(msg)), { created: 1700000000, includeUsage: false, model: 'claude-x' });
    assert.equal(out.status, 200);
    const body = JSON.parse(out.body.toString()) as Record<string, unknown>;
    assert.deepEqual(body, {
      id: 'msg_1',
      object: 'chat.completion',
      created: 1700000000,
      model: 'claude-x',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Let me check.', refusal: null, reasoning_content: 'Hmm', thinking_blocks: [{ type: 'thinking', thinking: 'Hmm', signature: 's' }], tool_calls: [{ id: 'toolu_A', type: 'function', function: { name: 'w', arguments: '{"city":"Paris"}' } }] },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage: { prompt_tokens: 40, completion_tokens: 42, total_tokens: 82, prompt_tokens_details: { cached_tokens: 10 } },
    });
    assert.equal(Object.keys(body).at(-1), 'usage', 'usage last: the usage meter reads the tail');
  });

  it('maps finish reasons', () => {
    for (const [stop, finish] of [['end_turn', 'stop'], ['stop_sequence', 'stop'], ['max_tokens', 'length'], ['tool_use', 'tool_calls'], ['refusal', 'content_filter']]) {
      const out = anthropicChat.response(Buffer.from(JSON.stringify({ id: 'm', model: 'c', content: [{ type: 'text', text: 'x' }], stop_reason: stop, usage: { input_tokens: 1, output_tokens: 1 } })), { created: 1, includeUsage: false, model: 'claude-x' });
      assert.equal((JSON.parse(out.body.toString()) as { choices: { finish_reason: string }[] }).choices[0]?.finish_reason, finish);
    }
  });

  it('a malformed body is a 502 in OpenAI shape', () => {
    const out = anthropicChat.response(Buffer.from('<html>'), { created: 1, includeUsage: false, model: 'claude-x' });
    assert.equal(out.status, 502);
    assert.equal((JSON.parse(out.body.toString()) as { error: { type: string } }).error.type, 'api_error');
  });

  it('maps errors: 529 overloaded -> 503, rate limits -> 429 rate_limit_exceeded, message kept', () => {
    assert.equal(anthropicChat.status(529), 503);
    assert.equal(anthropicChat.status(429), 429);
    const overloaded = JSON.parse(anthropicChat.error(529, Buffer.from('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')).toString()) as { error: Record<string, unknown> };
    assert.deepEqual(overloaded, { error: { message: 'Overloaded', type: 'api_error', param: null, code: 'provider_overloaded' } });
    const limited = JSON.parse(anthropicChat.error(429, Buffer.from('{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}')).toString()) as { error: Record<string, unknown> };
    assert.deepEqual(limited.error, { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' });
    const html = JSON.parse(anthropicChat.error(502, Buffer.from('<html>bad gateway</html>')).toString()) as { error: { message: string } };
    assert.match(html.error.message, /HTTP 502/);
  });
});

describe('anthropic stream translation', () => {
  const expected = (acc: Accumulated): void => {
    assert.equal(acc.roles, 1);
    assert.equal(acc.content, 'Olá, mundo 🌍');
    assert.equal(acc.reasoning, 'Hmm… ');
    assert.deepEqual(acc.tools, [
      { id: 'toolu_A', name: 'get_weather', args: '{"city": "Paris"}' },
      { id: 'toolu_B', name: 'get_time', args: '{}' },
    ]);
    assert.equal(acc.finish, 'tool_calls');
    assert.equal(acc.done, true);
  };

  it('translates a recorded stream split at every byte boundary into the same OpenAI chunks', () => {
    const bytes = Buffer.from(RECORDED_TEXT);
    const whole = anthropicChat.stream({ created: 1, includeUsage: true, model: 'claude-x' });
    const reference = Buffer.concat([whole.push(bytes), whole.end()]).toString();
    const acc = accumulate(reference);
    expected(acc);
    assert.deepEqual(acc.usage, { prompt_tokens: 40, completion_tokens: 42, total_tokens: 82, prompt_tokens_details: { cached_tokens: 10 } });
    for (let cut = 1; cut < bytes.length; cut++) {
      const t = anthropicChat.stream({ created: 1, includeUsage: true, model: 'claude-x' });
      const out = Buffer.concat([t.push(bytes.subarray(0, cut)), t.push(bytes.subarray(cut)), t.end()]).toString();
      assert.equal(out, reference, `split at byte ${cut}`);
    }
    // One byte at a time.
    const t = anthropicChat.stream({ created: 1, includeUsage: true, model: 'claude-x' });
    const parts: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) parts.push(t.push(bytes.subarray(i, i + 1)));
    parts.push(t.end());
    assert.equal(Buffer.concat(parts).toString(), reference);
  });

  it('emits no usage chunk unless asked', () => {
    const t = anthropicChat.stream({ created: 1, includeUsage: false, model: 'claude-x' });
    const acc = accumulate(Buffer.concat([t.push(Buffer.from(RECORDED_TEXT)), t.end()]).toString());
    expected(acc);
    assert.equal(acc.usage, undefined);
  });

  it('an error event or a stream that ends early becomes an OpenAI error event without [DONE]', () => {
    const t = anthropicChat.stream({ created: 1, includeUsage: false, model: 'claude-x' });
    const head = RECORDED.slice(0, 8).map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
    const out = Buffer.concat([t.push(Buffer.from(`${head}event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n`)), t.end()]).toString();
    assert.match(out, /data: \{"error":\{"message":"Overloaded","type":"api_error","param":null,"code":"overloaded_error"\}\}\n\n$/);
    assert.ok(!out.includes('[DONE]'));
    const cut = anthropicChat.stream({ created: 1, includeUsage: false, model: 'claude-x' });
    const early = Buffer.concat([cut.push(Buffer.from(head)), cut.end()]).toString();
    assert.match(early, /"code":"stream_interrupted"/);
  });

  it('keeps bounded state: a huge event without an end is refused, not buffered forever', () => {
    const t = anthropicChat.stream({ created: 1, includeUsage: false, model: 'claude-x' });
    let out = '';
    const piece = Buffer.alloc(64 * 1024, 0x61);
    out += t.push(Buffer.from('event: content_block_delta\ndata: "')).toString();
    for (let i = 0; i < 20; i++) out += t.push(piece).toString();
    assert.match(out, /bad_upstream_response/);
  });
});

describe('anthropic response_format (one forced tool) and thinking_blocks round-trip', () => {
  const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name', 'age'] };

  it('json_schema becomes one tool with that input_schema, forced; json_object asks for any object', () => {
    const out = request({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'person', description: 'A person.', schema, strict: true } } });
    assert.deepEqual(out['tools'], [{ name: 'person', description: 'A person. Respond with a JSON object matching this schema: the input of this tool is your whole answer.', input_schema: schema, strict: true }]);
    assert.deepEqual(out['tool_choice'], { type: 'tool', name: 'person' });
    const any = request({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } });
    assert.deepEqual((any['tools'] as { name: string; input_schema: unknown }[]).map((t) => [t.name, t.input_schema]), [['json_response', { type: 'object' }]]);
    assert.deepEqual(any['tool_choice'], { type: 'tool', name: 'json_response' });
    assert.equal(request({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'text' } })['tools'], undefined);
  });

  it('json_schema.strict and function.strict: strict tool use (strict: true on the tool) only when true; anything but a boolean is a 400', () => {
    const tool = (strict: unknown): Record<string, unknown> | undefined => {
      const out = request({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'person', schema, ...(strict === undefined ? {} : { strict }) } } });
      return (out['tools'] as Record<string, unknown>[])[0];
    };
    assert.equal(tool(true)?.['strict'], true);
    for (const off of [false, null, undefined]) assert.ok(!('strict' in tool(off)!), `strict ${String(off)}: nothing sent (the forced tool is best effort)`);
    const fn = (strict: unknown): Record<string, unknown> => request({ messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'w', parameters: schema, strict } }] });
    assert.deepEqual(fn(true)['tools'], [{ name: 'w', input_schema: schema, strict: true }]);
    assert.deepEqual(fn(false)['tools'], [{ name: 'w', input_schema: schema }]);
    for (const [body, field] of [
      [{ response_format: { type: 'json_schema', json_schema: { name: 'p', schema, strict: 'yes' } } }, 'response_format.json_schema.strict'],
      [{ tools: [{ type: 'function', function: { name: 'w', strict: 1 } }] }, 'tools[0].function.strict'],
    ] as const) {
      const err = anthropicChat.request({ messages: [{ role: 'user', content: 'x' }], ...body }, ctx);
      assert.ok(isGatewayError(err) && err.code === 'invalid_value' && err.message.includes(field), isGatewayError(err) ? err.message : 'accepted');
    }
    // With reasoning_effort the schema goes natively (always constrained): strict changes nothing there.
    const native = request({ messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'low', response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } } });
    assert.deepEqual(native['output_config'], { format: { type: 'json_schema', schema } });
    assert.equal(native['tools'], undefined);
  });

  it('json_schema with reasoning_effort goes as native structured outputs (output_config.format), no forced tool', () => {
    const out = request({ messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'low', response_format: { type: 'json_schema', json_schema: { name: 'person', schema } } });
    assert.deepEqual(out['output_config'], { format: { type: 'json_schema', schema } });
    assert.equal(out['tools'], undefined);
    assert.equal(out['tool_choice'], undefined);
    assert.deepEqual(out['thinking'], { type: 'enabled', budget_tokens: 2048 });
    const refused = anthropicChat.request({ messages: [{ role: 'user', content: 'x' }], reasoning_effort: 'low', response_format: { type: 'json_object' } }, ctx);
    assert.ok(isGatewayError(refused) && /use json_schema/.test(refused.message), isGatewayError(refused) ? refused.message : 'accepted');
  });

  it("the forced tool's input is the message content with finish_reason stop, streamed and not", () => {
    const msg = { id: 'm', model: 'c', content: [{ type: 'tool_use', id: 'toolu_J', name: 'person', input: { name: 'Ada', age: 36 } }], stop_reason: 'tool_use', usage: { input_tokens: 1, output_tokens: 1 } };
    const plain = JSON.parse(anthropicChat.response(Buffer.from(JSON.stringify(msg)), { created: 1, includeUsage: false, model: 'c', jsonResponse: true }).body.toString()) as { choices: { message: Record<string, unknown>; finish_reason: string }[] };
    assert.deepEqual(plain.choices[0]?.message, { role: 'assistant', content: '{"name":"Ada","age":36}', refusal: null });
    assert.equal(plain.choices[0]?.finish_reason, 'stop');
    // Without response_format the same body is a tool call.
    const tool = JSON.parse(anthropicChat.response(Buffer.from(JSON.stringify(msg)), { created: 1, includeUsage: false, model: 'c' }).body.toString()) as { choices: { finish_reason: string }[] };
    assert.equal(tool.choices[0]?.finish_reason, 'tool_calls');
    const events = [
      ['message_start', { type: 'message_start', message: { id: 'm', model: 'c', content: [], usage: { input_tokens: 1, output_tokens: 1 } } }],
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_J', name: 'person', input: {} } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"name":"Ada",' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '"age":36}' } }],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }],
      ['message_stop', { type: 'message_stop' }],
    ];
    const t = anthropicChat.stream({ created: 1, includeUsage: false, model: 'c', jsonResponse: true });
    const acc = accumulate(Buffer.concat([t.push(Buffer.from(events.map(([e, d]) => `event: ${String(e)}\ndata: ${JSON.stringify(d)}\n\n`).join(''))), t.end()]).toString());
    assert.equal(acc.content, '{"name":"Ada","age":36}');
    assert.deepEqual(acc.tools, []);
    assert.equal(acc.finish, 'stop');
  });

  it('a streamed thinking block ends with one thinking_blocks delta holding its text and signature', () => {
    const t = anthropicChat.stream({ created: 1, includeUsage: false, model: 'claude-x' });
    const out = Buffer.concat([t.push(Buffer.from(RECORDED_TEXT)), t.end()]).toString();
    const carrying = out.split('\n\n').filter((e) => e.includes('thinking_blocks'));
    assert.equal(carrying.length, 1);
    const chunk = JSON.parse(carrying[0]!.slice(6)) as { choices: { delta: Record<string, unknown> }[] };
    assert.deepEqual(chunk.choices[0]?.delta, { thinking_blocks: [{ type: 'thinking', thinking: 'Hmm… ', signature: 'abc' }] });
  });

  it("an assistant message's thinking_blocks go back first in its turn, signatures unchanged", () => {
    const out = request({
      messages: [
        { role: 'user', content: 'Weather?' },
        {
          role: 'assistant',
          content: null,
          reasoning_content: 'Hmm',
          thinking_blocks: [{ type: 'thinking', thinking: 'Hmm', signature: 'sig' }, { type: 'redacted_thinking', data: 'opaque' }],
          tool_calls: [{ id: 'toolu_A', type: 'function', function: { name: 'w', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'toolu_A', content: 'sunny' },
      ],
    });
    assert.deepEqual((out['messages'] as { content: unknown }[])[1]?.content, [
      { type: 'thinking', thinking: 'Hmm', signature: 'sig' },
      { type: 'redacted_thinking', data: 'opaque' },
      { type: 'tool_use', id: 'toolu_A', name: 'w', input: {} },
    ]);
  });
});
