import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonUsageTail, MAX_EVENT_BYTES, SseUsageMeter } from './response-usage.js';

const ev = (o: unknown): string => `data: ${JSON.stringify(o)}\n\n`;
const STREAM =
  ev({ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }) +
  ev({ choices: [{ index: 0, delta: { content: 'Hello' } }] }) +
  ev({ choices: [{ index: 0, delta: { content: ' world' } }] }) +
  ev({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
  ev({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 } }) +
  'data: [DONE]\n\n';
const WITHOUT_USAGE = STREAM.replace(/data: \{"choices":\[\],"usage"[^\n]*\n\n/, '');

/** Feeds `text` cut at the given offsets; returns what the client would see. */
function feed(meter: SseUsageMeter, text: string, cuts: number[]): string {
  const buf = Buffer.from(text);
  const bounds = [0, ...cuts, buf.length];
  let out = '';
  for (let i = 0; i + 1 < bounds.length; i++) {
    const chunk = buf.subarray(bounds[i], bounds[i + 1]);
    const replaced = meter.push(chunk, i + 2 === bounds.length);
    out += (replaced ?? chunk).toString();
  }
  return out;
}

describe('SSE usage meter', () => {
  it('finds usage and counts text for every split position, passing bytes through unchanged', () => {
    for (let cut = 1; cut < STREAM.length; cut++) {
      const m = new SseUsageMeter(false);
      assert.equal(feed(m, STREAM, [cut]), STREAM);
      assert.deepEqual(m.usage, { promptTokens: 11, completionTokens: 2 }, `cut ${cut}`);
      assert.equal(m.counted, 2);
      assert.equal(m.done, true);
    }
  });

  it('removes the usage-only event when stripping, wherever the chunks split', () => {
    for (let a = 1; a < STREAM.length; a += 7) {
      for (let b = a + 1; b < STREAM.length; b += 13) {
        const m = new SseUsageMeter(true);
        assert.equal(feed(m, STREAM, [a, b]), WITHOUT_USAGE, `cuts ${a},${b}`);
        assert.equal(m.usage?.completionTokens, 2);
      }
    }
  });

  it('handles CRLF line endings and one byte at a time', () => {
    const crlf = STREAM.replace(/\n/g, '\r\n');
    const m = new SseUsageMeter(true);
    const cuts = Array.from({ length: crlf.length - 1 }, (_, i) => i + 1);
    assert.equal(feed(m, crlf, cuts), WITHOUT_USAGE.replace(/\n/g, '\r\n'));
    assert.equal(m.usage?.promptTokens, 11);
  });

  it('keeps its buffer bounded: an over-long event passes through unparsed', () => {
    const big = ev({ choices: [{ delta: { content: 'x'.repeat(MAX_EVENT_BYTES * 2) } }] });
    const text = big + STREAM;
    const m = new SseUsageMeter(true);
    const out = feed(m, text, [1000, 70_000, 140_000]);
    assert.equal(out, big + WITHOUT_USAGE);
    assert.equal(m.usage?.completionTokens, 2);
  });

  it('does not take usage text inside content for usage', () => {
    const tricky = ev({ choices: [{ delta: { content: '"usage":{"prompt_tokens":1}' } }] }) + 'data: [DONE]\n\n';
    const m = new SseUsageMeter(true);
    assert.equal(feed(m, tricky, [10]), tricky);
    assert.equal(m.usage, undefined);
    assert.equal(m.counted, 2);
  });
});

describe('JSON usage tail', () => {
  it('reads the top-level usage at the end of a body split into chunks', () => {
    const body = JSON.stringify({ id: 'x', choices: [{ message: { content: 'y'.repeat(50_000) } }], usage: { prompt_tokens: 5, completion_tokens: 7 }, system_fingerprint: 'fp' });
    const t = new JsonUsageTail();
    for (let i = 0; i < body.length; i += 3000) t.push(Buffer.from(body.slice(i, i + 3000)));
    assert.deepEqual(t.usage(), { promptTokens: 5, completionTokens: 7 });
    const none = new JsonUsageTail();
    none.push(Buffer.from('{"error":{"message":"no"}}'));
    assert.equal(none.usage(), undefined);
  });
});

/** What the meter should count for one event: every content/arguments string, by escaped length. */
function referenceTokens(value: unknown): number {
  let n = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if ((k.endsWith('content') || k === 'arguments') && typeof x === 'string') {
          const len = Buffer.byteLength(JSON.stringify(x)) - 2;
          if (len > 0) n += 1 + (len >> 4);
        } else walk(x);
      }
    }
  };
  walk(value);
  return n;
}

/** A small deterministic PRNG (tests must not depend on Math.random). */
function prng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

describe('SSE usage meter: SSE variants', () => {
  it('reads `data:` without a space', () => {
    const text = STREAM.replace(/data: /g, 'data:');
    const m = new SseUsageMeter(true);
    assert.equal(feed(m, text, [17, 90]), WITHOUT_USAGE.replace(/data: /g, 'data:'));
    assert.deepEqual(m.usage, { promptTokens: 11, completionTokens: 2 });
    assert.equal(m.counted, 2);
    assert.equal(m.done, true);
  });

  it('joins multi-line data: a usage event over several data lines is found and removed', () => {
    const multi =
      'data: {"choices":[{"index":0,\ndata: "delta":{"content":"Hello"}}]}\n\n' +
      'event: message\nid: 7\ndata: {"choices":[],\r\ndata: "usage":{"prompt_tokens":4,\r\ndata: "completion_tokens":1}}\r\n\r\n' +
      'data: [DONE]\n\n';
    for (let cut = 1; cut < multi.length; cut++) {
      const m = new SseUsageMeter(true);
      assert.equal(feed(m, multi, [cut]), multi.replace(/event: message[^]*?\r\n\r\n/, ''), `cut ${cut}`);
      assert.deepEqual(m.usage, { promptTokens: 4, completionTokens: 1 });
      assert.equal(m.counted, 1);
      assert.equal(m.done, true);
    }
  });

  it('sees [DONE] only as a whole data value', () => {
    const m = new SseUsageMeter(false);
    feed(m, 'data: [DONE]x\n\ndata: ["[DONE]"]\n\n: [DONE]\n\n', [3]);
    assert.equal(m.done, false);
    const last = new SseUsageMeter(false);
    feed(last, 'data: [DONE]\r', [8]); // no line end before the body ends
    assert.equal(last.done, true);
  });

  it('never parses OpenAI chunks carrying "usage":null, counts every choice and tool call, ignores comments', () => {
    const chunk = (rest: string): string => `data: {"id":"c1","object":"chat.completion.chunk",${rest},"usage":null}\n\n`;
    const text =
      ': keep-alive\n\n' +
      chunk('"choices":[{"index":0,"delta":{"content":"one"}},{"index":1,"delta":{"content":"two"}}]') +
      chunk('"choices":[{"index":0,"delta":{"reasoning_content":"hmm","content":null}}]') +
      chunk('"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\\"a\\":1}"}},{"index":1,"function":{"arguments":"{}"}}]}}]') +
      'data: {"choices":[{"delta":{"content": "spaced"}}]}\n\n' +
      'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":6}}\n\n' +
      'data: [DONE]\n\n';
    const m = new SseUsageMeter(true);
    const out = feed(m, text, []);
    assert.equal(out, text.replace(/data: \{"id":"c1","choices":\[\],"usage"[^\n]*\n\n/, ''));
    assert.deepEqual(m.usage, { promptTokens: 9, completionTokens: 6 });
    assert.equal(m.counted, 6); // one, two, hmm, 2 tool-call argument deltas, spaced
  });

  it('does not remove an event with usage that also has choices, nor a usage that is not top-level', () => {
    const text =
      'data: {"choices":[{"delta":{"content":"x"},"usage":{"prompt_tokens":1,"completion_tokens":1}}]}\n\n' +
      'data: {"choices":[{"delta":{"content":"y"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n';
    const m = new SseUsageMeter(true);
    assert.equal(feed(m, text, [40]), text);
    assert.deepEqual(m.usage, { promptTokens: 3, completionTokens: 2 });
    assert.equal(m.counted, 1); // the event that carried usage is not counted again
  });

  it('ends an over-long event at a blank line that starts the next chunk', () => {
    const bigEvent = { choices: [{ delta: { content: 'x'.repeat(MAX_EVENT_BYTES + 10) } }] };
    const big = ev(bigEvent);
    const text = big + STREAM;
    const m = new SseUsageMeter(true);
    // The first chunk holds the whole data line but not the blank line: too long to hold, so it
    // passes; its line was complete, so its text counts. The next event is read as usual.
    assert.equal(feed(m, text, [big.length - 1]), big + WITHOUT_USAGE);
    assert.deepEqual(m.usage, { promptTokens: 11, completionTokens: 2 });
    assert.equal(m.counted, 2 + referenceTokens(bigEvent));
  });

  it('reads a last event that has no blank line', () => {
    const text = STREAM.replace('data: [DONE]\n\n', '').slice(0, -2);
    const m = new SseUsageMeter(true);
    assert.equal(feed(m, text, [20]), text); // the body ended: nothing is held back or removed
    assert.equal(m.usage?.promptTokens, 11);
  });

  it('counts like a full JSON parse of every event, wherever random chunk boundaries fall', () => {
    const rand = prng(42);
    const words = ['Hi', ' there', ' "quoted"', ' back\\slash', ' é', ' 中文', '\n', ' a longer piece of streamed text here'];
    const events: unknown[] = [];
    for (let i = 0; i < 60; i++) {
      const content = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => words[Math.floor(rand() * words.length)]).join('');
      events.push(
        i % 7 === 3
          ? { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: `{"q":"${content}"}` } }] } }], usage: null }
          : { id: 'x', choices: [{ index: 0, delta: { content }, finish_reason: null }], usage: null },
      );
    }
    const expected = events.reduce<number>((s, e) => s + referenceTokens(e), 0);
    const usage = { choices: [], usage: { prompt_tokens: 5, completion_tokens: expected } };
    const text = events.map((e, i) => (i % 2 ? ev(e).replace(/\n/g, '\r\n') : ev(e))).join('') + ev(usage) + 'data: [DONE]\n\n';
    const clientText = text.replace(ev(usage), '');
    const bytes = Buffer.byteLength(text);
    for (let round = 0; round < 50; round++) {
      const cuts = Array.from({ length: 1 + Math.floor(rand() * 40) }, () => 1 + Math.floor(rand() * (bytes - 1)));
      cuts.sort((a, b) => a - b);
      const m = new SseUsageMeter(true);
      const buf = Buffer.from(text);
      const bounds = [0, ...new Set(cuts), buf.length];
      const out: Buffer[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) {
        const chunk = buf.subarray(bounds[i], bounds[i + 1]);
        out.push(m.push(chunk, i + 2 === bounds.length) ?? chunk);
      }
      assert.equal(Buffer.concat(out).toString(), clientText, `round ${round}`);
      assert.equal(m.counted, expected, `round ${round}`);
      assert.equal(m.usage?.completionTokens, expected);
      assert.equal(m.done, true);
    }
  });
});
