/**
 * LLM timeouts through real Envoy: the first-byte and idle timeouts never cut a long healthy
 * stream, an idle stall mid-stream ends the stream (not retried), the overall limit is enforced
 * when set, and a refused connection fails over.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/dev/local-stack.js';
import { basicConfig, startStack, type Stack } from '../harness/stack.js';

async function readStream(stack: Stack, model = 'gpt-4o-mini'): Promise<{ pieces: number; finish: string | undefined; error: unknown; ms: number }> {
  const started = Date.now();
  let pieces = 0;
  let finish: string | undefined;
  const error = await (async () => {
    const stream = await stack.client().chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], stream: true });
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) pieces++;
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
  })().then(() => undefined, (e: unknown) => e);
  return { pieces, finish, error, ms: Date.now() - started };
}

describe('timeouts that never cut healthy streams', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: basicConfig(),
      fakes: { primary: { chunks: 8, chunkIntervalMs: 400 } },
      envoy: { streamIdleTimeout: '1s', firstByteTimeout: '2s' },
    });
  });
  after(() => stack?.stop());

  it('a 3.2 s stream with a chunk every 400 ms outlives the 2 s first-byte and 1 s idle timeouts', async () => {
    const r = await readStream(stack);
    assert.equal(r.error, undefined);
    assert.equal(r.pieces, 8);
    assert.equal(r.finish, 'stop');
    assert.ok(r.ms >= 3000, `took ${r.ms} ms`);
  });

  it('a stream that stalls mid-way longer than the idle timeout ends with an error, and is not retried', async () => {
    const fake = stack.fakes['primary']!;
    Object.assign(fake.behaviour, { chunks: 3, chunkIntervalMs: 3000 });
    fake.requests.length = 0;
    try {
      const r = await readStream(stack);
      assert.ok(r.error instanceof Error, 'the client sees the stream break');
      assert.equal(r.finish, undefined, 'no clean end');
      assert.ok(r.ms < 3000, `cut by the 1 s idle timeout, not by the end of the stall (${r.ms} ms)`);
      assert.equal(fake.requests.length, 1, 'no retry after the response started');
    } finally {
      Object.assign(fake.behaviour, { chunks: 8, chunkIntervalMs: 400 });
    }
  });
});

describe('overall request limit and refused connections', () => {
  let stack: Stack;
  before(async () => {
    const closed = await freePort(); // nothing listens here: connection refused
    const files = basicConfig();
    files['providers.yaml'] = `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: down }
spec:
  type: openai
  endpoint: "http://127.0.0.1:${closed}/v1"
  models: [{ name: gpt-4o-mini }]
---
${files['providers.yaml']!.replace('spec:\n', 'spec:\n  priority: 1\n')}`;
    stack = await startStack({ files, fakes: { primary: { chunks: 8, chunkIntervalMs: 400 } }, envoy: { requestTimeout: '2s' } });
  });
  after(() => stack?.stop());

  it('a refused connection fails over to the next provider', async () => {
    const c = await stack.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(c.choices[0]?.finish_reason, 'stop');
    assert.equal(stack.fakes['primary']!.requests.length, 1);
  });

  it('with an overall limit of 2 s, a 3.2 s stream is cut (the limit is opt-in: 0s by default)', async () => {
    const r = await readStream(stack);
    assert.ok(r.error instanceof Error, 'cut by the overall limit');
    assert.ok(r.pieces < 8);
  });
});
