import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnthropicUsageMeter, ResponsesUsageMeter } from './event-usage.js';

const ev = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

function feed(meter: { push(c: Buffer, end: boolean): unknown }, text: string, piece: number): void {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += piece) meter.push(bytes.subarray(i, i + piece), i + piece >= bytes.length);
}

describe('Anthropic stream usage meter', () => {
  const start = ev('message_start', { type: 'message_start', message: { id: 'm', usage: { input_tokens: 30, cache_read_input_tokens: 10, output_tokens: 1 } } });
  const delta = ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' word' } });

  it('counts streamed text until message_delta gives the usage (message_start output is a placeholder)', () => {
    const m = new AnthropicUsageMeter();
    feed(m, start + delta.repeat(50), 7);
    assert.equal(m.usage, undefined, 'no usage before message_delta');
    assert.equal(m.counted, 50, 'one token per short delta, not per event byte');
    feed(m, ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 48 } }) + ev('message_stop', { type: 'message_stop' }), 5);
    assert.deepEqual(m.usage, { promptTokens: 40, completionTokens: 48, cachedReadTokens: 10 });
    assert.equal(m.done, true);
  });

  it('takes input tokens from message_delta when message_start had none (translated streams)', () => {
    const m = new AnthropicUsageMeter();
    feed(m, ev('message_start', { type: 'message_start', message: { usage: { input_tokens: 0, output_tokens: 0 } } }) + ev('message_delta', { type: 'message_delta', usage: { input_tokens: 12, output_tokens: 3 } }), 1000);
    assert.deepEqual(m.usage, { promptTokens: 12, completionTokens: 3 });
  });
});

describe('Responses stream usage meter', () => {
  it('reads response.usage from response.completed and counts deltas before it', () => {
    const m = new ResponsesUsageMeter();
    const text =
      ev('response.created', { type: 'response.created', response: { usage: null } }) +
      ev('response.output_text.delta', { type: 'response.output_text.delta', item_id: 'i', delta: 'Hello' }).repeat(3) +
      ev('response.completed', { type: 'response.completed', response: { usage: { input_tokens: 9, output_tokens: 3, input_tokens_details: { cached_tokens: 2 }, output_tokens_details: { reasoning_tokens: 1 } } } });
    feed(m, text, 11);
    assert.equal(m.counted, 3);
    assert.deepEqual(m.usage, { promptTokens: 9, completionTokens: 3, cachedReadTokens: 2, reasoningTokens: 1 });
    assert.equal(m.done, true);
  });
});
