/**
 * Graceful shutdown: SIGTERM (and Envoy's preStop call to /drain) while 50 streams are open. Every
 * stream completes, late requests are still answered, and Tollgate exits only when it is drained.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basicConfig, startStack, type Stack } from '../harness/stack.js';

const CHUNKS = 15;
const CHUNK_MS = 100;

describe('graceful shutdown', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: basicConfig(), fakes: { primary: { chunks: CHUNKS, chunkIntervalMs: CHUNK_MS } } });
  });
  after(() => stack?.stop());

  it('SIGTERM during 50 open streams: all complete, then Tollgate exits cleanly', async () => {
    const client = stack.client();
    let firstChunks = 0;
    let signalFirstChunks: () => void = () => undefined;
    const allStarted = new Promise<void>((resolve) => (signalFirstChunks = resolve));
    const streams = Array.from({ length: 50 }, async () => {
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true });
      let pieces = 0;
      let finish: string | null | undefined;
      let counted = false;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) pieces++;
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (!counted) {
          counted = true;
          if (++firstChunks === 50) signalFirstChunks();
        }
      }
      return { pieces, finish, doneAt: Date.now() };
    });
    await allStarted;

    // What the kubelet does: Envoy's preStop hook calls /drain, Tollgate gets SIGTERM.
    const drain = fetch(`${stack.adminUrl}/drain`).then(async (r) => ({ status: r.status, at: Date.now(), body: await r.text() }));
    stack.gateway.child.kill('SIGTERM');
    const exited = stack.gateway.waitExit().then((code) => ({ code, at: Date.now() }));

    const ready = await fetch(`${stack.adminUrl}/readyz`);
    assert.equal(ready.status, 503, 'not ready while draining');
    await ready.text();
    // A request that still arrives during the drain is answered, not refused.
    const late = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'late' }] });
    assert.equal(late.choices[0]?.finish_reason, 'stop');

    const results = await Promise.all(streams);
    for (const r of results) {
      assert.equal(r.pieces, CHUNKS, 'every stream got all of its chunks');
      assert.equal(r.finish, 'stop', 'every stream ended cleanly');
    }
    const lastDone = Math.max(...results.map((r) => r.doneAt));
    const drained = await drain;
    assert.equal(drained.status, 200);
    assert.equal(JSON.parse(drained.body).drained, true);
    assert.ok(drained.at >= lastDone - 50, '/drain answered only after the streams were done');
    const exit = await exited;
    assert.equal(exit.code, 0);
    assert.ok(exit.at >= lastDone - 50, 'Tollgate exited only after the streams were done');
    const logs = await stack.logs();
    assert.ok(logs.some((l) => l['msg'] === 'asked Envoy to drain its listeners'));
    assert.ok(logs.some((l) => l['msg'] === 'drained: no request in flight'));
  });
});
