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
