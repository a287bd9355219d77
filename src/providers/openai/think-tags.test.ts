/** The <think> filter: tags split anywhere across stream deltas, extract and strip, whole bodies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TagSplitter, THINK_TAGS } from './think-tags.js';

const TEXT = 'Hi <think>step 1, then <b> step 2</think>\n\nThe answer is <4>.';

describe('<think> tag filter', () => {
  it('splits a text cut at every pair of positions into the same answer and reasoning', () => {
    for (let a = 0; a <= TEXT.length; a++) {
      for (let b = a; b <= TEXT.length; b++) {
        const s = new TagSplitter();
        const parts = [s.push(TEXT.slice(0, a)), s.push(TEXT.slice(a, b)), s.push(TEXT.slice(b)), s.end()];
        assert.equal(parts.map((p) => p.content).join(''), 'Hi \n\nThe answer is <4>.', `cut ${a}/${b}`);
        assert.equal(parts.map((p) => p.reasoning).join(''), 'step 1, then <b> step 2', `cut ${a}/${b}`);
      }
    }
  });

  it('extracts from a whole answer (usage stays last) and strips', () => {
    const body = Buffer.from(JSON.stringify({ id: 'x', choices: [{ index: 0, message: { role: 'assistant', content: '<think>hmm</think>\n\nYes.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }));
    const options = { created: 1, includeUsage: false, model: 'm' };
    const extracted = JSON.parse(THINK_TAGS.extract.response(body, options).body.toString()) as { choices: { message: Record<string, unknown> }[] };
    assert.deepEqual(extracted.choices[0]!.message, { role: 'assistant', content: 'Yes.', reasoning_content: 'hmm' });
    assert.equal(Object.keys(extracted).at(-1), 'usage');
    const stripped = JSON.parse(THINK_TAGS.strip.response(body, options).body.toString()) as { choices: { message: Record<string, unknown> }[] };
    assert.deepEqual(stripped.choices[0]!.message, { role: 'assistant', content: 'Yes.' });
  });

  it('rewrites a stream whose tags are split across chunks, passing other chunks and [DONE] through', () => {
    const chunk = (content: string): string => `data: ${JSON.stringify({ id: 'c', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    const input = ['<thi', 'nk>why', ' not</th', 'ink>\n', 'Be', 'cause.'].map(chunk).join('') + `data: ${JSON.stringify({ id: 'c', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`;
    const t = THINK_TAGS.extract.stream({ created: 1, includeUsage: false, model: 'm' });
    const out = Buffer.concat([...Buffer.from(input)].map((_, i, all) => (i % 5 === 0 ? t.push(Buffer.from(input).subarray(i, Math.min(i + 5, all.length))) : Buffer.alloc(0))).concat([t.end()])).toString();
    let content = '';
    let reasoning = '';
    for (const e of out.split('\n\n').filter((x) => x.startsWith('data: {'))) {
      const d = (JSON.parse(e.slice(6)) as { choices: { delta: { content?: string; reasoning_content?: string } }[] }).choices[0]!.delta;
      content += d.content ?? '';
      reasoning += d.reasoning_content ?? '';
    }
    assert.equal(content, 'Because.');
    assert.equal(reasoning, 'why not');
    assert.ok(out.endsWith('data: [DONE]\n\n'));
  });
});
