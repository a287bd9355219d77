/**
 * A streamed Responses create passed through to OpenAI, when nothing but the stored response's id
 * needs its body (`--stream-usage limited`, no token limit, no guardrail): the ext_proc reads the id
 * from the first event, then ends its stream with Envoy, and Envoy sends the rest of the answer
 * straight to the client. Real Envoy + Tollgate, the official `openai` SDK: every event arrives once
 * and in order, the id is recorded (retrieve finds it), the request is counted, and Envoy's own
 * counters show the chunks no longer cross to the ext_proc.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../src/dev/local-stack.js';
import { basicConfig, startStack, type Stack } from '../harness/stack.js';

const DELTAS = 80;

/** Envoy's ext_proc messages sent to the ext_proc so far (all ext_proc filters). */
async function extprocMessages(stack: Stack): Promise<number> {
  const text = await (await fetch(`${stack.envoyAdminUrl}/stats?filter=ext_proc`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /\.ext_proc\.stream_msgs_sent: (\d+)$/.exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

describe('Responses stream passed through: the ext_proc lets go once the id is read', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: basicConfig({ fake: 'ra', models: ['gpt-4.1'] }),
      // One network write every few ms: each delta reaches Envoy as its own body chunk.
      fakes: { ra: { chunks: DELTAS, chunkIntervalMs: 4 } },
      gatewayArgs: ['--stream-usage', 'limited'],
    });
  });
  after(async () => {
    await stack?.stop();
  });

  it('every event arrives once and in order, the id is recorded, and the chunks bypass the ext_proc', async () => {
    const before = await extprocMessages(stack);
    const stream = await stack.client().responses.create({ model: 'gpt-4.1', input: 'Hi', stream: true });
    const seq: number[] = [];
    let text = '';
    let id: string | undefined;
    let done: string | undefined;
    for await (const e of stream) {
      seq.push(e.sequence_number);
      if (e.type === 'response.created') id = e.response.id;
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed') done = e.response.output_text ?? (e.response.output[0] as { content?: { text: string }[] } | undefined)?.content?.[0]?.text;
    }
    // DELTAS deltas plus 7 framing events (created, in_progress, item added/done, part added/done, text done) and completed.
    assert.deepEqual(seq, Array.from({ length: DELTAS + 8 }, (_, i) => i));
    assert.equal(done, text);
    assert.equal(text.length > 0, true);
    const sent = (await extprocMessages(stack)) - before;
    // Request headers, body, response headers and the first body chunk(s): not one message per event.
    assert.ok(sent < DELTAS / 2, `Envoy sent ${sent} ext_proc messages for a ${DELTAS + 8}-event stream`);
    assert.ok(id);
    const stored = await stack.client().responses.retrieve(id);
    assert.equal(stored.id, id);
    let metrics = '';
    await waitFor('the create counted', async () => {
      metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
      return /tollgate_requests_total\{[^}]*model="gpt-4.1"[^}]*status="200",api="responses"\} [1-9]/.test(metrics);
    }).catch((err: unknown) => assert.fail(`${String(err)}: ${metrics.split('\n').filter((l) => l.startsWith('tollgate_requests_total')).join('\n')}`));
  });

  it('twenty concurrent streams all arrive whole', async () => {
    const one = async (): Promise<{ seq: number[]; text: string; final: string }> => {
      const stream = await stack.client().responses.create({ model: 'gpt-4.1', input: 'Hi', stream: true });
      const seq: number[] = [];
      let text = '';
      let final = '';
      for await (const e of stream) {
        seq.push(e.sequence_number);
        if (e.type === 'response.output_text.delta') text += e.delta;
        if (e.type === 'response.output_text.done') final = e.text;
      }
      return { seq, text, final };
    };
    const all = await Promise.all(Array.from({ length: 20 }, one));
    for (const r of all) {
      assert.deepEqual(r.seq, Array.from({ length: DELTAS + 8 }, (_, i) => i));
      assert.equal(r.text, r.final);
    }
  });
});
