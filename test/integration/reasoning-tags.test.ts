/**
 * Per-model <think> filters through real Envoy + Tollgate: an OpenAI-compatible engine that writes
 * its reasoning inside the answer, with the tags split across stream chunks. `extract` moves it to
 * reasoning_content, `strip` drops it, and a model without the setting is passed through untouched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basicConfig, startStack, type Stack } from '../harness/stack.js';

const PIECES = ['<thi', 'nk>Let me', ' think</th', 'ink>\n\n', 'The', ' answer.'];

function files(): Record<string, string> {
  return {
    'keys.yaml': basicConfig()['keys.yaml'] as string,
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: vllm }
spec:
  type: openai-compatible
  endpoint: "{{FAKE:vllm}}"
  models:
    - name: r1-extract
      upstreamModel: deepseek-r1
      reasoningTags: extract
    - name: r1-strip
      upstreamModel: deepseek-r1
      reasoningTags: strip
    - name: r1-keep
      upstreamModel: deepseek-r1
`,
  };
}

describe('reasoningTags: <think> in answers of OpenAI-style engines', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: files(), fakes: { vllm: { pieces: PIECES, chunkIntervalMs: 1 } } });
  });
  after(() => stack?.stop());

  async function streamed(model: string, askUsage = true): Promise<{ content: string; reasoning: string; usage: unknown }> {
    let content = '';
    let reasoning = '';
    let usage: unknown;
    for await (const chunk of await stack.client().chat.completions.create({ model, stream: true, ...(askUsage ? { stream_options: { include_usage: true } } : {}), messages: [{ role: 'user', content: 'Why?' }] })) {
      const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
      content += delta?.content ?? '';
      reasoning += delta?.reasoning_content ?? '';
      usage = chunk.usage ?? usage;
    }
    return { content, reasoning, usage };
  }

  it('extract: the reasoning moves to reasoning_content, streamed (tags split across chunks) and not', async () => {
    const c = await stack.client().chat.completions.create({ model: 'r1-extract', messages: [{ role: 'user', content: 'Why?' }] });
    const msg = c.choices[0]!.message as { content: string | null; reasoning_content?: string };
    assert.equal(msg.content, 'The answer.');
    assert.equal(msg.reasoning_content, 'Let me think');
    assert.equal(c.usage?.completion_tokens, PIECES.length);
    const s = await streamed('r1-extract');
    assert.deepEqual({ content: s.content, reasoning: s.reasoning }, { content: 'The answer.', reasoning: 'Let me think' });
    assert.ok(s.usage, 'stream usage still delivered');
  });

  it('strip: the reasoning is dropped', async () => {
    const c = await stack.client().chat.completions.create({ model: 'r1-strip', messages: [{ role: 'user', content: 'Why?' }] });
    assert.equal(c.choices[0]?.message.content, 'The answer.');
    assert.equal((c.choices[0]!.message as { reasoning_content?: string }).reasoning_content, undefined);
    const s = await streamed('r1-strip', false);
    assert.deepEqual({ content: s.content, reasoning: s.reasoning }, { content: 'The answer.', reasoning: '' });
    assert.equal(s.usage, undefined, 'the usage chunk the gateway asked for (accounting) is not shown');
    const body = stack.fakes['vllm']!.received('/chat/completions').at(-1)!.body as Record<string, unknown>;
    assert.deepEqual(body['stream_options'], { include_usage: true }, 'the gateway still meters the stream');
  });

  it('keep (default): the answer is passed through as the engine wrote it', async () => {
    const c = await stack.client().chat.completions.create({ model: 'r1-keep', messages: [{ role: 'user', content: 'Why?' }] });
    assert.equal(c.choices[0]?.message.content, PIECES.join(''));
    assert.equal((await streamed('r1-keep')).content, PIECES.join(''));
  });
});
