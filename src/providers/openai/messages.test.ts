import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../errors.js';
import { messagesToChat, messagesToOpenAI } from './messages.js';
import { openAIStrictProblem } from './strict-schema.js';
import { MessagesStreamTranslator } from './messages-stream.js';

const OPTIONS = { model: 'gpt-4o', created: 1, includeUsage: true };

/** Parses Anthropic SSE text into [event, data] pairs, checking each event's name matches its data's type. */
function events(text: string): { event: string; data: Record<string, unknown> }[] {
  return text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => {
      const lines = e.split('\n');
      const event = lines[0]!.slice('event: '.length);
      const data = JSON.parse(lines[1]!.slice('data: '.length)) as Record<string, unknown>;
      assert.equal(data['type'], event);
      return { event, data };
    });
}

describe('Messages -> chat completions (request)', () => {
  it('translates system blocks, images, tool_use/tool_result, tools, tool_choice, stop, metadata, thinking and stream', () => {
    const chat = messagesToChat(
      {
        model: 'm',
        max_tokens: 100,
        system: [{ type: 'text', text: 'Be brief.' }, { type: 'text', text: 'English.' }],
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'Look' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] },
          { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 's' }, { type: 'text', text: 'Calling.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '21C' }] }, { type: 'text', text: 'And?' }] },
        ],
        tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
        tool_choice: { type: 'any', disable_parallel_tool_use: true },
        stop_sequences: ['END'],
        metadata: { user_id: 'u1' },
        thinking: { type: 'enabled', budget_tokens: 5000 },
        stream: true,
      },
      'gpt-4o',
      'max_completion_tokens',
    );
    assert.ok(!isGatewayError(chat));
    assert.deepEqual(chat, {
      model: 'gpt-4o',
      max_completion_tokens: 100,
      messages: [
        { role: 'system', content: 'Be brief.\nEnglish.' },
        { role: 'user', content: [{ type: 'text', text: 'Look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
        { role: 'assistant', content: 'Calling.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: '21C' },
        { role: 'user', content: 'And?' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, description: 'Weather' } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
      stop: ['END'],
      user: 'u1',
      reasoning_effort: 'medium',
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('a tool_result with an image: text in the tool message, the image in the user message after it', () => {
    const chat = messagesToChat(
      {
        model: 'm',
        max_tokens: 10,
        messages: [
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'screenshot', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', is_error: false, content: [{ type: 'text', text: 'shot' }, { type: 'image', source: { type: 'url', url: 'https://x/y.png' } }] }] },
        ],
      },
      'gpt-4o',
      'max_tokens',
    );
    assert.ok(!isGatewayError(chat));
    assert.deepEqual((chat['messages'] as unknown[]).slice(1), [
      { role: 'tool', tool_call_id: 't1', content: 'shot' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] },
    ]);
  });

  it("caps max_tokens at the model's maxTokens (Claude Code asks for more than many models allow)", () => {
    const body = { model: 'm', max_tokens: 32000, messages: [{ role: 'user', content: 'hi' }] };
    const capped = messagesToChat(body, 'gpt-4o', 'max_completion_tokens', 16384);
    assert.ok(!isGatewayError(capped));
    assert.equal(capped['max_completion_tokens'], 16384);
    const under = messagesToChat({ ...body, max_tokens: 100 }, 'gpt-4o', 'max_completion_tokens', 16384);
    assert.ok(!isGatewayError(under));
    assert.equal(under['max_completion_tokens'], 100);
  });

  it('refuses what Anthropic would refuse and what chat completions cannot take, with 400 codes', () => {
    const base = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [base, 'invalid_value', /max_tokens.*Field required/],
      [{ ...base, max_tokens: 0 }, 'invalid_value', /max_tokens/],
      [{ ...base, max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'fancy' }] }] }, 'invalid_value', /unknown content block type 'fancy'/],
      [{ ...base, max_tokens: 5, messages: [{ role: 'system', content: 'x' }] }, 'invalid_value', /role/],
      [{ ...base, max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] }, 'unsupported_parameter', /document/],
      [{ ...base, max_tokens: 5, top_k: 3 }, 'unsupported_parameter', /top_k/],
      [{ ...base, max_tokens: 5, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'unsupported_parameter', /server tool/],
      [{ ...base, max_tokens: 5, tools: [{ name: 't', input_schema: { type: 'object' }, strict: 'yes' }] }, 'invalid_value', /tools\[0\]\.strict/],
    ];
    for (const [body, code, message] of cases) {
      const out = messagesToChat(body, 'gpt-4o', 'max_tokens');
      assert.ok(isGatewayError(out), JSON.stringify(body));
      assert.equal(out.code, code);
      assert.match(out.message, message);
    }
  });
});

describe('chat completions -> Messages (response)', () => {
  it('builds thinking, text and tool_use blocks, stop_reason and Anthropic usage', () => {
    const body = Buffer.from(
      JSON.stringify({
        id: 'chatcmpl-1',
        model: 'gpt-4o',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Sure.', reasoning_content: 'think', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }, finish_reason: 'tool_calls' }],
        usage: { prompt_tokens: 50, completion_tokens: 7, total_tokens: 57, prompt_tokens_details: { cached_tokens: 20 } },
      }),
    );
    const out = messagesToOpenAI.response(body, OPTIONS);
    assert.equal(out.status, 200);
    assert.deepEqual(JSON.parse(out.body.toString()), {
      id: 'chatcmpl-1',
      type: 'message',
      role: 'assistant',
      model: 'gpt-4o',
      content: [
        { type: 'thinking', thinking: 'think', signature: '' },
        { type: 'text', text: 'Sure.' },
        { type: 'tool_use', id: 'call_1', name: 'f', input: { a: 1 } },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 30, output_tokens: 7, cache_read_input_tokens: 20 },
    });
  });

  it('turns an OpenAI error into Anthropic error shape', () => {
    const out = JSON.parse(messagesToOpenAI.error(429, Buffer.from('{"error":{"message":"slow down","type":"rate_limit_error"}}')).toString());
    assert.deepEqual(out, { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } });
  });
});

describe('chat completion chunks -> Messages stream', () => {
  const chunks = [
    { id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
    { id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { reasoning_content: 'hm' }, finish_reason: null }] },
    { id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: null }] },
    { id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { content: ' there' }, finish_reason: null }] },
    { id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] }, finish_reason: null }] },
    { id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }, finish_reason: null }] },
    { id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '1}' } }] }, finish_reason: null }] },
    { id: 'c1', model: 'gpt-4o', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
    { id: 'c1', model: 'gpt-4o', choices: [], usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 } },
  ];
  const sse = chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('') + 'data: [DONE]\n\n';

  function run(pieceBytes: number): string {
    const t = new MessagesStreamTranslator();
    const bytes = Buffer.from(sse);
    let out = '';
    for (let i = 0; i < bytes.length; i += pieceBytes) out += t.push(bytes.subarray(i, i + pieceBytes)).toString();
    return out + t.end().toString();
  }

  it("emits Anthropic's full event sequence, the same whether chunks split every 3 bytes or not at all", () => {
    const whole = run(sse.length);
    assert.equal(run(3), whole);
    const evs = events(whole);
    assert.deepEqual(
      evs.map((e) => e.event),
      [
        'message_start', 'ping',
        'content_block_start', 'content_block_delta', 'content_block_stop',
        'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
        'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
        'message_delta', 'message_stop',
      ],
    );
    assert.deepEqual(evs[9]!.data['content_block'], { type: 'tool_use', id: 'call_1', name: 'f', input: {} });
    assert.deepEqual(evs[10]!.data['delta'], { type: 'input_json_delta', partial_json: '{"a":' });
    assert.equal(evs[10]!.data['index'], 2);
    assert.deepEqual(evs[13]!.data, { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: 10, output_tokens: 4 } });
  });

  it('ends with an error event when the provider stream breaks off or reports an error', () => {
    const t = new MessagesStreamTranslator();
    const out = t.push(Buffer.from(`data: ${JSON.stringify(chunks[2])}\n\n`)).toString() + t.end().toString();
    const last = events(out).at(-1)!;
    assert.equal(last.event, 'error');
    assert.equal((last.data['error'] as Record<string, unknown>)['type'], 'api_error');
    const u = new MessagesStreamTranslator();
    const err = events(u.push(Buffer.from('data: {"error":{"message":"boom","type":"server_error"}}\n\n')).toString());
    assert.deepEqual(err.at(-1)!.data, { type: 'error', error: { type: 'api_error', message: 'boom' } });
  });

  it('holds no more than one incomplete event between pushes (bounded state)', () => {
    const t = new MessagesStreamTranslator();
    const big = `data: ${JSON.stringify({ id: 'c', model: 'm', choices: [{ index: 0, delta: { content: 'x'.repeat(1000) }, finish_reason: null }] })}\n\n`;
    for (let i = 0; i < 2000; i++) t.push(Buffer.from(big));
    // 2 MB went through; what is kept is the decoder's partial line (none here) and a few fields.
    const seen = new WeakSet<object>();
    const kept = JSON.stringify(t, (_k, v: unknown) => {
      if (Buffer.isBuffer(v)) return 'b'.repeat(v.length);
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return undefined;
        seen.add(v);
      }
      return v;
    });
    assert.ok(kept.length < 20 * 1024, `state ${kept.length} bytes`);
  });
});

describe('signed thinking blocks through the Messages front door (composed with the Claude translators)', () => {
  const body = {
    model: 'x',
    max_tokens: 100,
    messages: [
      { role: 'user', content: 'Weather?' },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'Hmm', signature: 'sig' },
          { type: 'redacted_thinking', data: 'opaque' },
          { type: 'thinking', thinking: 'from another provider', signature: '' },
          { type: 'tool_use', id: 'toolu_1', name: 'w', input: {} },
        ],
      },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }] },
    ],
  };

  it('signed blocks go on as thinking_blocks only when composed (OpenAI-style providers get none)', () => {
    const composed = messagesToChat(body, 'm', 'max_tokens', undefined, true);
    assert.ok(!isGatewayError(composed));
    const turn = (composed['messages'] as Record<string, unknown>[])[1]!;
    assert.deepEqual(turn['thinking_blocks'], [{ type: 'thinking', thinking: 'Hmm', signature: 'sig' }, { type: 'redacted_thinking', data: 'opaque' }]);
    const plain = messagesToChat(body, 'm', 'max_tokens');
    assert.ok(!isGatewayError(plain));
    assert.equal((plain['messages'] as Record<string, unknown>[])[1]!['thinking_blocks'], undefined);
  });

  it('thinking_blocks come back as signed thinking blocks, streamed (signature_delta) and not', () => {
    const chat = {
      id: 'c',
      model: 'm',
      choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, reasoning_content: 'Hmm', thinking_blocks: [{ type: 'thinking', thinking: 'Hmm', signature: 'sig' }], tool_calls: [{ id: 't', type: 'function', function: { name: 'w', arguments: '{}' } }] } }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    };
    const res = JSON.parse(messagesToOpenAI.response(Buffer.from(JSON.stringify(chat)), OPTIONS).body.toString()) as { content: Record<string, unknown>[] };
    assert.deepEqual(res.content[0], { type: 'thinking', thinking: 'Hmm', signature: 'sig' });
    const chunk = (delta: Record<string, unknown>, finish: string | null = null): string => `data: ${JSON.stringify({ id: 'c', model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const t = new MessagesStreamTranslator();
    const sse = [
      chunk({ role: 'assistant', reasoning_content: 'H' }),
      chunk({ reasoning_content: 'mm' }),
      chunk({ thinking_blocks: [{ type: 'thinking', thinking: 'Hmm', signature: 'sig' }] }),
      chunk({ thinking_blocks: [{ type: 'thinking', thinking: 'Hmm', signature: 'sig' }, { type: 'redacted_thinking', data: 'opaque' }] }),
      chunk({ content: 'ok' }),
      chunk({}, 'stop'),
      `data: ${JSON.stringify({ id: 'c', model: 'm', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })}\n\n`,
      'data: [DONE]\n\n',
    ].join('');
    const out = events(Buffer.concat([t.push(Buffer.from(sse)), t.end()]).toString());
    const shape = out.filter((e) => e.event.startsWith('content_block')).map((e) => {
      const d = e.data;
      const inner = (d['delta'] ?? d['content_block']) as Record<string, unknown> | undefined;
      return `${e.event}:${String(d['index'])}${inner ? `:${String(inner['type'])}` : ''}`;
    });
    assert.deepEqual(shape, [
      'content_block_start:0:thinking',
      'content_block_delta:0:thinking_delta',
      'content_block_delta:0:thinking_delta',
      'content_block_delta:0:signature_delta',
      'content_block_stop:0',
      'content_block_start:1:redacted_thinking',
      'content_block_stop:1',
      'content_block_start:2:text',
      'content_block_delta:2:text_delta',
      'content_block_stop:2',
    ]);
    assert.deepEqual(out.find((e) => (e.data['delta'] as Record<string, unknown> | undefined)?.['type'] === 'signature_delta')?.data['delta'], { type: 'signature_delta', signature: 'sig' });
  });
});

describe("a tool's strict: true through chat completions", () => {
  const closed = { type: 'object', properties: { city: { type: 'string' }, unit: { type: ['string', 'null'], enum: ['c', 'f', null] } }, required: ['city', 'unit'], additionalProperties: false };
  const toolsOf = (schema: unknown, strict: unknown = true): Record<string, unknown> => {
    const out = messagesToChat({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], tools: [{ name: 'get_weather', input_schema: schema, strict }] }, 'gpt-4o', 'max_tokens');
    assert.ok(!isGatewayError(out), JSON.stringify(out));
    return (out['tools'] as { function: Record<string, unknown> }[])[0]!.function;
  };

  it('a schema inside OpenAI strict mode keeps strict: true on the function', () => {
    assert.deepEqual(toolsOf(closed), { name: 'get_weather', parameters: closed, strict: true });
    const nested = { type: 'object', properties: { stops: { type: 'array', items: { $ref: '#/$defs/stop' } } }, required: ['stops'], additionalProperties: false, $defs: { stop: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false } } };
    assert.equal(toolsOf(nested)['strict'], true);
  });

  it('a schema OpenAI would refuse in strict mode (400) is sent without strict; strict false or absent is not sent', () => {
    const optional = { ...closed, required: ['city'] };
    const open = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const deepOpen = { ...closed, properties: { ...closed.properties, where: { type: 'object', properties: { lat: { type: 'number' } }, required: ['lat'] } }, required: ['city', 'unit', 'where'] };
    for (const schema of [optional, open, deepOpen, { anyOf: [closed] }, { ...closed, allOf: [] }]) assert.equal(toolsOf(schema)['strict'], undefined, JSON.stringify(schema));
    assert.equal(toolsOf(closed, false)['strict'], undefined);
    assert.equal(toolsOf(closed, null)['strict'], undefined);
  });

  it('names the problem', () => {
    assert.match(String(openAIStrictProblem({ ...closed, required: ['city'] })), /'unit' is not in 'required'/);
    assert.match(String(openAIStrictProblem({ type: 'object', properties: {} })), /additionalProperties/);
    assert.match(String(openAIStrictProblem({ type: 'string' })), /root/);
    assert.equal(openAIStrictProblem(closed), undefined);
  });
});
