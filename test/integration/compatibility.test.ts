/**
 * Per-model compatibility through real Envoy + Tollgate. <think> filters: an OpenAI-compatible engine
 * writes its reasoning inside the answer, with the tags split across stream chunks; `extract` moves it
 * to reasoning_content, `strip` drops it, a model without the setting is passed through untouched.
 * Parameter rules: dropped, renamed and defaulted request parameters, on a passthrough provider and
 * after translation to Anthropic.
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
    - name: o-series
      upstreamModel: o4-mini
      parameters:
        drop: [temperature]
        rename: { max_tokens: max_completion_tokens }
        defaults: { reasoning_effort: low }
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: claude }
spec:
  type: anthropic
  endpoint: "{{FAKE:claude}}"
  credentialSecretRef: { name: claude-cred, key: token }
  models:
    - name: claude-topk
      upstreamModel: claude-haiku-4-5
      parameters:
        defaults: { top_k: 40 }
        drop: [metadata]
---
apiVersion: v1
kind: Secret
metadata: { name: claude-cred }
stringData: { token: sk-ant-fake }
`,
  };
}

describe('per-model compatibility: reasoningTags and parameters', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: files(), fakes: { vllm: { pieces: PIECES, chunkIntervalMs: 1 } }, anthropicFakes: { claude: {} } });
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

  it('parameters: dropped, renamed and defaulted on a passthrough provider, the client untouched otherwise', async () => {
    await stack.client().chat.completions.create({ model: 'o-series', temperature: 0.3, max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] });
    const body = stack.fakes['vllm']!.received('/chat/completions').at(-1)!.body as Record<string, unknown>;
    assert.equal(body['model'], 'o4-mini');
    assert.equal(body['temperature'], undefined);
    assert.equal(body['max_tokens'], undefined);
    assert.equal(body['max_completion_tokens'], 50);
    assert.equal(body['reasoning_effort'], 'low');
    await stack.client().chat.completions.create({ model: 'r1-keep', temperature: 0.3, messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal((stack.fakes['vllm']!.received('/chat/completions').at(-1)!.body as Record<string, unknown>)['temperature'], 0.3, 'other models keep theirs');
  });

  it('parameters apply after translation: an Anthropic-only field added, one removed', async () => {
    const c = await stack.client().chat.completions.create({ model: 'claude-topk', user: 'u1', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(c.choices[0]?.message.content, 'Hello from the fake Anthropic model.');
    const got = stack.anthropic['claude']!.received().at(-1)!;
    assert.equal(got.status, 200);
    const body = got.body as Record<string, unknown>;
    assert.equal(body['top_k'], 40);
    assert.equal(body['metadata'], undefined);
  });
});
