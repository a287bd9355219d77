/** The gateway end to end: real Envoy + Tollgate + a fake provider, driven by the openai client. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basicConfig, startStack, TEST_KEY, type Stack } from '../harness/stack.js';

describe('gateway through real Envoy', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: basicConfig(), fakes: { primary: { chunks: 5, chunkIntervalMs: 10 } } });
  });
  after(() => stack?.stop());

  it('serves a non-streaming chat completion and the upstream sees its own credential, never the client key', async () => {
    const completion = await stack.client().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Hello' }],
    });
    assert.equal(completion.choices[0]?.message.content, 'Hello from the Tollgate fake');
    const seen = stack.fakes['primary']!.received('/chat/completions').at(-1)!;
    assert.equal(seen.headers['authorization'], 'Bearer sk-upstream-primary');
    assert.ok(!JSON.stringify(seen.headers).includes(TEST_KEY), 'client key leaked upstream');
  });
});
