/**
 * Graceful shutdown: SIGTERM and Envoy's preStop call (POST /drain with the pod token) while 50
 * streams are open. Every stream completes, late requests are still answered, and Tollgate exits
 * only when it is drained. The chart's own preStop hook, run as the kubelet runs it, drains a
 * Tollgate that gets no signal at all, and that Tollgate then exits by itself (issue 19: a drained
 * replica never lingers alive but unready). Callers without the token change nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../src/dev/envoy-config.js';
import { controlPlaneBin, runTool } from '../harness/control-plane.js';
import { basicConfig, startStack, type Stack } from '../harness/stack.js';

/** Envoy's preStop command as the chart renders it (default values). */
async function chartPreStop(): Promise<string[]> {
  const helm = join(await controlPlaneBin(), 'helm');
  const out = await runTool(helm, ['template', 't', join(REPO_ROOT, 'charts/tollgate'), '-s', 'templates/deployment.yaml'], {});
  const deploy = parseAllDocuments(out.stdout)[0]?.toJS() as { spec: { template: { spec: { containers: { name: string; lifecycle?: { preStop?: { exec?: { command: string[] } } } }[] } } } };
  const command = deploy.spec.template.spec.containers.find((c) => c.name === 'envoy')?.lifecycle?.preStop?.exec?.command;
  if (!command) throw new Error('the chart has no exec preStop hook on the envoy container');
  return command;
}

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

    // Someone else in the cluster tries first: refused, and nothing changes.
    for (const init of [{ method: 'GET' }, { method: 'POST' }, { method: 'POST', headers: { authorization: 'Bearer not-the-pod-token-not-the-pod-token-xx' } }]) {
      const r = await fetch(`${stack.adminUrl}/drain`, init);
      assert.equal(r.status, 401, `${init.method} /drain without the pod token`);
      await r.text();
    }
    const stillReady = await fetch(`${stack.adminUrl}/readyz`);
    assert.equal(stillReady.status, 200, 'a refused drain changes nothing');
    await stillReady.text();

    // What the kubelet does: Envoy's preStop hook POSTs /drain with the pod token, Tollgate gets SIGTERM.
    const token = (await readFile(stack.podTokenFile, 'utf8')).trim();
    const drain = fetch(`${stack.adminUrl}/drain`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({ status: r.status, at: Date.now(), body: await r.text() }));
    stack.gateway.child.kill('SIGTERM');
    const exited = stack.gateway.waitExit().then((code) => ({ code, at: Date.now() }));

    const ready = await fetch(`${stack.adminUrl}/readyz`);
    assert.equal(ready.status, 503, 'not ready while draining');
    assert.equal(await ready.text(), 'draining\n');
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

describe('graceful shutdown through the chart\'s preStop hook alone', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: basicConfig(), fakes: { primary: { chunks: 10, chunkIntervalMs: 100 } } });
  });
  after(() => stack?.stop());

  it('the hook drains (open streams complete), returns when drained, and Tollgate then exits on its own', async () => {
    const [shell, ...args] = await chartPreStop();
    assert.equal(shell, '/bin/bash');
    const adminPort = new URL(stack.adminUrl).port;
    // The pod's paths and port, mapped to this stack's: everything else runs exactly as rendered.
    const script = args.map((a) => a.replaceAll('/run/tollgate/pod-token', stack.podTokenFile).replaceAll('/dev/tcp/127.0.0.1/9090', `/dev/tcp/127.0.0.1/${adminPort}`));
    assert.ok(script.some((a) => a.includes(stack.podTokenFile) && a.includes(`/dev/tcp/127.0.0.1/${adminPort}`)), 'the hook uses the token file and the admin port');

    const client = stack.client();
    const streams = Array.from({ length: 5 }, async () => {
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], stream: true });
      let finish: string | null | undefined;
      for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
      return { finish, doneAt: Date.now() };
    });
    await new Promise((r) => setTimeout(r, 200));
    const exited = stack.gateway.waitExit().then((code) => ({ code, at: Date.now() }));
    const hook = promisify(execFile)(shell!, script).then(({ stdout, stderr }) => ({ stdout, stderr, at: Date.now() }));

    await new Promise((r) => setTimeout(r, 100));
    const ready = await fetch(`${stack.adminUrl}/readyz`);
    assert.deepEqual([ready.status, await ready.text()], [503, 'draining\n'], 'the hook started the drain');

    const results = await Promise.all(streams);
    assert.ok(results.every((r) => r.finish === 'stop'), 'every open stream ended cleanly');
    const lastDone = Math.max(...results.map((r) => r.doneAt));
    const ran = await hook; // exits 0 only on a 200 from /drain
    assert.ok(ran.at >= lastDone - 50, 'the hook returned only after the streams were done');
    const exit = await exited;
    assert.equal(exit.code, 0, 'Tollgate exited by itself, with no signal');
    assert.ok(exit.at >= ran.at - 50);
    const logs = await stack.logs();
    assert.ok(logs.some((l) => l['msg'] === 'admin action' && l['path'] === '/drain' && l['caller'] === 'pod'));
    assert.ok(logs.some((l) => l['msg'] === 'stopped'));
  });
});
