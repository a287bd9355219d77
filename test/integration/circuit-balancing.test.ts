/**
 * Circuit breaking, Retry-After resting and load-aware balancing through real Envoy with fake
 * providers of different health and speed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { waitFor } from '../../src/dev/local-stack.js';
import { pickerServiceDefinition } from '../../src/routing/picker.js';
import { twoProviders } from '../harness/resilience.js';
import { startStack, type Stack } from '../harness/stack.js';

async function ask(stack: Stack): Promise<string> {
  const completion = await stack.client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }] });
  return completion.model;
}

function hits(stack: Stack, name: string): number {
  return stack.fakes[name]!.received('/chat/completions').length;
}

async function decisions(stack: Stack, decision: string): Promise<Record<string, unknown>[]> {
  return (await stack.logs()).filter((l) => l['msg'] === 'routing decision' && l['decision'] === decision);
}

describe('circuit breaker: cool-down and half-open probe', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: twoProviders({ resilience: '    circuitBreaker: { consecutiveFailures: 3, cooldownSeconds: 2 }' }),
      fakes: { primary: { status: 500 }, secondary: {} },
    });
  });
  after(() => stack?.stop());

  it('after 3 failures the primary gets no traffic for the cool-down, then one probe brings it back', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await ask(stack), 'secondary-model');
    assert.equal(hits(stack, 'primary'), 3);
    const ejectedAt = Date.now();
    await waitFor('the ejection decision', async () => (await decisions(stack, 'ejected')).length === 1);
    const ejected = (await decisions(stack, 'ejected'))[0]!;
    assert.equal(ejected['target'], 'default/primary#primary-model');
    assert.equal(ejected['provider'], 'default/primary');
    assert.equal(ejected['model'], 'primary-model');
    assert.equal(ejected['reason'], 'http_5xx');
    assert.equal(ejected['consecutiveFailures'], 3);

    // During the cool-down: straight to the secondary, the primary sees nothing.
    for (let i = 0; i < 5; i++) assert.equal(await ask(stack), 'secondary-model');
    assert.ok(Date.now() - ejectedAt < 2000, 'still within the cool-down');
    assert.equal(hits(stack, 'primary'), 3, 'no traffic to an ejected provider');

    // The primary recovers; after the cool-down one request probes it and it is back.
    stack.fakes['primary']!.behaviour.status = undefined;
    await new Promise((r) => setTimeout(r, 2100 - (Date.now() - ejectedAt)));
    assert.equal(await ask(stack), 'primary-model', 'the probe went to the primary');
    assert.equal(hits(stack, 'primary'), 4);
    assert.equal(await ask(stack), 'primary-model');
    await waitFor('probe and return decisions', async () => (await decisions(stack, 'returned')).length === 1);
    assert.equal((await decisions(stack, 'probe')).length, 1);
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_circuit_transitions_total\{provider="default\/primary",model="primary-model",decision="ejected"\} 1/);
    assert.match(metrics, /tollgate_circuit_transitions_total\{provider="default\/primary",model="primary-model",decision="returned"\} 1/);
    assert.match(metrics, /tollgate_circuit_open_targets\{provider="default\/primary",model="primary-model"\} 0/);
  });
});

describe('429 with Retry-After rests the provider', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ files: twoProviders(), fakes: { primary: { status: 429, retryAfterSeconds: 3 }, secondary: {} } });
  });
  after(() => stack?.stop());

  it('no traffic to the primary until Retry-After has passed', async () => {
    assert.equal(await ask(stack), 'secondary-model');
    // The rest starts when the gateway saw the 429, which is before the first answer came back.
    const restSeenBy = Date.now();
    assert.equal(hits(stack, 'primary'), 1);
    assert.equal(await ask(stack), 'secondary-model');
    assert.equal(await ask(stack), 'secondary-model');
    assert.ok(Date.now() - restSeenBy < 3000, 'the follow-up requests ran inside the rest window');
    assert.equal(hits(stack, 'primary'), 1, 'rested: not asked again');
    stack.fakes['primary']!.behaviour.status = undefined;
    await new Promise((r) => setTimeout(r, 3100 - (Date.now() - restSeenBy)));
    assert.equal(await ask(stack), 'primary-model');
    const rested = (await decisions(stack, 'rested'))[0]!;
    assert.equal(rested['restMs'], 3000);
  });
});

describe('latency-aware balancing', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: twoProviders({ samePriority: true, resilience: '    strategy: latency' }),
      fakes: { primary: { latencyMs: 150 }, secondary: { latencyMs: 5 } },
    });
  });
  after(() => stack?.stop());

  it('sends measurably more traffic to the faster of two providers', async (t) => {
    for (let i = 0; i < 40; i++) await ask(stack);
    const slow = hits(stack, 'primary');
    const fast = hits(stack, 'secondary');
    t.diagnostic(`fast ${fast} / slow ${slow} of 40`);
    assert.equal(slow + fast, 40);
    assert.ok(fast >= 3 * slow, `fast ${fast} vs slow ${slow}`);
    assert.ok(slow >= 1, 'the slow provider is still measured');
  });
});

describe('latency-aware balancing: tokens per second', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: twoProviders({ samePriority: true, resilience: '    strategy: latency' }),
      // The primary answers first (TTFB ~0 vs 30 ms) but generates 20 tokens in ~0.8 s; the secondary
      // in ~40 ms. By TTFB alone the primary would win; by tokens per second the secondary does.
      fakes: { primary: { chunks: 20, chunkIntervalMs: 40 }, secondary: { latencyMs: 30, chunks: 20, chunkIntervalMs: 2 } },
    });
  });
  after(() => stack?.stop());

  it('streams go mostly to the provider that generates faster, from the usage of finished streams', async (t) => {
    for (let i = 0; i < 30; i++) {
      const s = await stack.client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], stream: true });
      for await (const _ of s);
    }
    const slow = hits(stack, 'primary');
    const fast = hits(stack, 'secondary');
    t.diagnostic(`fast ${fast} / slow ${slow} of 30`);
    assert.equal(slow + fast, 30);
    assert.ok(fast >= 2 * slow, `fast ${fast} vs slow ${slow}`);
  });
});

describe('weighted balancing', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      files: twoProviders({ samePriority: true, weights: [3, 1], resilience: '    strategy: weighted' }),
      fakes: { primary: {}, secondary: {} },
    });
  });
  after(() => stack?.stop());

  it('splits 200 requests about 3:1 (the exact 5% split over 1,000 is a unit test of the chooser)', async (t) => {
    for (let batch = 0; batch < 10; batch++) await Promise.all(Array.from({ length: 20 }, () => ask(stack)));
    const share = hits(stack, 'primary') / 200;
    t.diagnostic(`primary share ${share}`);
    assert.equal(hits(stack, 'primary') + hits(stack, 'secondary'), 200);
    assert.ok(Math.abs(share - 0.75) <= 0.1, `primary share ${share}`);
  });
});

describe('external endpoint picker (gRPC) with fallback', () => {
  let stack: Stack;
  let picker: grpc.Server;
  let up = true;
  before(async () => {
    picker = new grpc.Server();
    picker.addService(pickerServiceDefinition(), {
      Pick: (call: grpc.ServerUnaryCall<{ candidates: { id: string }[] }, { id: string }>, cb: grpc.sendUnaryData<{ id: string }>) => {
        if (!up) return cb({ code: grpc.status.UNAVAILABLE, details: 'down' });
        cb(null, { id: call.request.candidates.find((c) => c.id === 'default/secondary#secondary-model')?.id ?? '' });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      picker.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    stack = await startStack({
      files: twoProviders({ samePriority: true, weights: [9, 1], resilience: `    endpointPicker: { address: "127.0.0.1:${port}", timeoutMs: 200 }` }),
      fakes: { primary: {}, secondary: {} },
    });
  });
  after(async () => {
    await stack?.stop();
    picker?.forceShutdown();
  });

  it('routes where the picker says, and falls back to the built-in choice when it is down', async () => {
    for (let i = 0; i < 10; i++) assert.equal(await ask(stack), 'secondary-model');
    assert.equal(hits(stack, 'primary'), 0, 'the 9:1 weight did not apply: the picker decided');
    up = false;
    for (let i = 0; i < 20; i++) await ask(stack);
    assert.ok(hits(stack, 'primary') > 0, 'built-in weighted choice again');
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(metrics, /tollgate_endpoint_picker_total\{result="picked"\} 10/);
    assert.match(metrics, /tollgate_endpoint_picker_total\{result="error"\} 20/);
  });
});
