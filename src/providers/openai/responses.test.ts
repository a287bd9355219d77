import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../../errors.js';
import { responsesToChat, responsesToOpenAICompatible } from './responses.js';

const OPTIONS = { model: 'qwen3', created: 1_700_000_000, includeUsage: true };

function chunk(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

/** An OpenAI chat stream: text, then one tool call in two pieces, finish, usage, [DONE]. */
const CHAT_STREAM = [
  chunk({ id: 'chatcmpl-1', model: 'qwen3', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }),
  chunk({ id: 'chatcmpl-1', model: 'qwen3', choices: [{ index: 0, delta: { content: 'Hello' }, finish_reason: null }] }),
  chunk({ id: 'chatcmpl-1', model: 'qwen3', choices: [{ index: 0, delta: { content: ' "world"' }, finish_reason: null }] }),
  chunk({ id: 'chatcmpl-1', model: 'qwen3', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":' } }] }, finish_reason: null }] }),
  chunk({ id: 'chatcmpl-1', model: 'qwen3', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, finish_reason: null }] }),
  chunk({ id: 'chatcmpl-1', model: 'qwen3', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }),
  chunk({ id: 'chatcmpl-1', model: 'qwen3', choices: [], usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21, prompt_tokens_details: { cached_tokens: 4 } } }),
  'data: [DONE]\n\n',
].join('');

const CHAT_BODY = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  model: 'qwen3',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello "world"', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] }, finish_reason: 'tool_calls' }],
  usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21, prompt_tokens_details: { cached_tokens: 4 } },
};

function events(text: string): { type: string; data: Record<string, unknown> }[] {
  return text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => {
      const [head, data] = e.split('\n');
      const type = (head ?? '').slice('event: '.length);
      const json = JSON.parse((data ?? '').slice('data: '.length)) as Record<string, unknown>;
      assert.equal(json['type'], type);
      return { type, data: json };
    });
}

describe('Responses -> chat completions: request', () => {
  it('instructions, input items, tools, tool_choice, text.format, caps and reasoning', () => {
    const chat = responsesToChat(
      {
        model: 'm',
        instructions: 'Be brief.',
        input: [
          { role: 'developer', content: 'Use tools.' },
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather?' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'low' }] },
          { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'xyz' },
          { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Checking.' }] },
          { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' },
          { type: 'function_call', call_id: 'c2', name: 'get_weather', arguments: '{"city":"Rome"}' },
          { type: 'function_call_output', call_id: 'c1', output: 'Sunny' },
          { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'Rain' }] },
        ],
        tools: [{ type: 'function', name: 'get_weather', description: 'Weather', parameters: { type: 'object' }, strict: true }],
        tool_choice: { type: 'function', name: 'get_weather' },
        parallel_tool_calls: false,
        text: { format: { type: 'json_schema', name: 'w', schema: { type: 'object' }, strict: true } },
        max_output_tokens: 300,
        temperature: 0.2,
        reasoning: { effort: 'minimal', summary: 'auto' },
        store: false,
        include: ['reasoning.encrypted_content'],
        stream: true,
      },
      'qwen3',
      200,
    );
    assert.ok(!isGatewayError(chat), JSON.stringify(chat));
    assert.deepEqual(chat, {
      model: 'qwen3',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'system', content: 'Use tools.' },
        { role: 'user', content: [{ type: 'text', text: 'Weather?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }] },
        {
          role: 'assistant',
          content: 'Checking.',
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            { id: 'c2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'Sunny' },
        { role: 'tool', tool_call_id: 'c2', content: 'Rain' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object' }, strict: true } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      response_format: { type: 'json_schema', json_schema: { name: 'w', schema: { type: 'object' }, strict: true } },
      max_tokens: 200,
      temperature: 0.2,
      reasoning_effort: 'low',
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('what needs OpenAI-side state or tools is a clear 400', () => {
    const code = (body: Record<string, unknown>): string | undefined => {
      const r = responsesToChat({ model: 'm', input: 'x', ...body }, 'u');
      return isGatewayError(r) ? `${r.code}: ${r.message}` : undefined;
    };
    assert.match(code({ previous_response_id: 'resp_1' }) ?? '', /^unsupported_parameter: 'previous_response_id'/);
    assert.match(code({ background: true }) ?? '', /^unsupported_parameter/);
    assert.match(code({ tools: [{ type: 'web_search' }] }) ?? '', /tool type 'web_search'/);
    assert.match(code({ input: [{ type: 'item_reference', id: 'x' }] }) ?? '', /input item 'item_reference'/);
    assert.match(code({ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }) ?? '', /content part 'input_file'/);
    assert.match(code({ input: 42 }) ?? '', /^invalid_value/);
    assert.equal(code({ background: false, store: true }), undefined);
  });
});

describe('chat completions -> Responses: answer and stream', () => {
  it('non-streamed: message and function_call items, usage, store false', () => {
    const r = responsesToOpenAICompatible.response(Buffer.from(JSON.stringify(CHAT_BODY)), OPTIONS);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body.toString()) as Record<string, unknown>;
    assert.equal(body['object'], 'response');
    assert.equal(body['status'], 'completed');
    assert.equal(body['store'], false);
    assert.match(String(body['id']), /^resp_[0-9a-f]{40}$/);
    const output = body['output'] as Record<string, unknown>[];
    assert.deepEqual(output.map((o) => o['type']), ['message', 'function_call']);
    assert.deepEqual((output[0]?.['content'] as unknown[])[0], { type: 'output_text', text: 'Hello "world"', annotations: [] });
    assert.equal(output[1]?.['arguments'], '{"city":"Paris"}');
    assert.equal(output[1]?.['call_id'], 'call_1');
    assert.deepEqual(body['usage'], { input_tokens: 12, input_tokens_details: { cached_tokens: 4 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 21 });
    assert.deepEqual(Object.keys(body).at(-1), 'usage');
  });

  it('streamed, split anywhere: the documented event sequence; the final response equals the non-streamed one', () => {
    const plain = JSON.parse(responsesToOpenAICompatible.response(Buffer.from(JSON.stringify(CHAT_BODY)), OPTIONS).body.toString()) as unknown;
    const bytes = Buffer.from(CHAT_STREAM);
    for (const step of [1, 7, 64, bytes.length]) {
      const t = responsesToOpenAICompatible.stream(OPTIONS);
      let out = '';
      for (let i = 0; i < bytes.length; i += step) out += t.push(bytes.subarray(i, i + step)).toString();
      out += t.end().toString();
      const ev = events(out);
      assert.deepEqual(ev.map((e) => e.type), [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.output_item.added',
        'response.function_call_arguments.delta',
        'response.function_call_arguments.delta',
        'response.function_call_arguments.done',
        'response.output_item.done',
        'response.completed',
      ], `step ${step}`);
      assert.deepEqual(ev.map((e) => e.data['sequence_number']), ev.map((_, i) => i));
      assert.deepEqual(ev.at(-1)?.data['response'], plain, `step ${step}`);
    }
  });

  it('a stream cut before it finished ends with an error event; length becomes response.incomplete', () => {
    const cut = responsesToOpenAICompatible.stream(OPTIONS);
    const partial = CHAT_STREAM.slice(0, CHAT_STREAM.indexOf('tool_calls'));
    const out = cut.push(Buffer.from(partial)).toString() + cut.end().toString();
    assert.equal(events(out).at(-1)?.type, 'error');
    const short = responsesToOpenAICompatible.stream(OPTIONS);
    const text = chunk({ id: 'x', choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: 'length' }] }) + chunk({ id: 'x', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } }) + 'data: [DONE]\n\n';
    const last = events(short.push(Buffer.from(text)).toString() + short.end().toString()).at(-1);
    assert.equal(last?.type, 'response.incomplete');
    assert.deepEqual((last?.data['response'] as Record<string, unknown>)['incomplete_details'], { reason: 'max_output_tokens' });
  });
});

describe('reasoning: summaries out, thinking blocks round-trip through encrypted_content', () => {
  const BLOCKS = [{ type: 'thinking', thinking: 'Let me think.', signature: 'sig-1' }];
  const body = {
    id: 'chatcmpl-2',
    model: 'claude',
    choices: [{ index: 0, message: { role: 'assistant', content: null, reasoning_content: 'Let me think.', thinking_blocks: BLOCKS, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }],
    usage: { prompt_tokens: 5, completion_tokens: 7 },
  };
  const stream = [
    chunk({ id: 'chatcmpl-2', model: 'claude', choices: [{ index: 0, delta: { role: 'assistant', reasoning_content: 'Let me ' }, finish_reason: null }] }),
    chunk({ id: 'chatcmpl-2', model: 'claude', choices: [{ index: 0, delta: { reasoning_content: 'think.' }, finish_reason: null }] }),
    chunk({ id: 'chatcmpl-2', model: 'claude', choices: [{ index: 0, delta: { thinking_blocks: BLOCKS }, finish_reason: null }] }),
    chunk({ id: 'chatcmpl-2', model: 'claude', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: null }] }),
    chunk({ id: 'chatcmpl-2', model: 'claude', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 5, completion_tokens: 7 } }),
    'data: [DONE]\n\n',
  ].join('');

  it('a reasoning item comes first, in the answer and in the stream (whose final response equals the answer)', () => {
    const plain = JSON.parse(responsesToOpenAICompatible.response(Buffer.from(JSON.stringify(body)), OPTIONS).body.toString()) as { output: Record<string, unknown>[] };
    const reasoning = plain.output[0] as Record<string, unknown>;
    assert.equal(reasoning['type'], 'reasoning');
    assert.deepEqual(reasoning['summary'], [{ type: 'summary_text', text: 'Let me think.' }]);
    assert.match(String(reasoning['encrypted_content']), /^tollgate\.thinking\.v1:/);
    const t = responsesToOpenAICompatible.stream(OPTIONS);
    const ev = events(t.push(Buffer.from(stream)).toString() + t.end().toString());
    assert.deepEqual(ev.slice(2, 8).map((e) => e.type), [
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
    ]);
    assert.deepEqual(ev.at(-1)?.data['response'], plain);
  });

  it("the next request's reasoning item gives its thinking blocks back to the assistant turn", () => {
    const plain = JSON.parse(responsesToOpenAICompatible.response(Buffer.from(JSON.stringify(body)), OPTIONS).body.toString()) as { output: Record<string, unknown>[] };
    const chat = responsesToChat({ model: 'm', input: [{ role: 'user', content: 'Go' }, ...plain.output, { type: 'function_call_output', call_id: 'toolu_1', output: 'ok' }] }, 'claude');
    assert.ok(!isGatewayError(chat));
    const messages = chat['messages'] as Record<string, unknown>[];
    assert.deepEqual(messages[1], { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{}' } }], thinking_blocks: BLOCKS });
    // Another provider's encrypted reasoning is not ours to read: dropped.
    const foreign = responsesToChat({ model: 'm', input: [{ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'gAAAAB-openai' }, { role: 'user', content: 'Hi' }] }, 'x');
    assert.ok(!isGatewayError(foreign));
    assert.deepEqual(foreign['messages'], [{ role: 'user', content: 'Hi' }]);
  });
});
