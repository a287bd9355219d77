import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { HealthTracker } from './health.js';
import { GrpcEndpointPicker, pickerServiceDefinition } from './picker.js';
import type { RequestPlan } from './plan.js';
import { ResilientRouter, type AttemptChoice } from './router.js';
import { capturingLogger, config, provider, tiersOf } from './test-support.js';

interface Seen {
  requestId: string;
  model: string;
  attempt: number;
  candidates: { id: string; provider: string; upstreamModel: string; weight: number }[];
  body: Buffer;
}

describe('external endpoint picker over gRPC', () => {
  let server: grpc.Server;
  let address = '';
  let answer: (req: Seen) => { id: string } | 'slow' | 'fail' = () => ({ id: '' });
  const seen: Seen[] = [];
  const held: (() => void)[] = [];

  before(async () => {
    server = new grpc.Server();
    server.addService(pickerServiceDefinition(), {
      Pick: (call: grpc.ServerUnaryCall<Seen, { id: string }>, cb: grpc.sendUnaryData<{ id: string }>) => {
        seen.push(call.request);
        const a = answer(call.request);
        if (a === 'fail') return cb({ code: grpc.status.UNAVAILABLE, details: 'scheduler down' });
        // A picker that never answers in time: answered only when the suite ends.
        if (a === 'slow') return void held.push(() => cb(null, { id: call.request.candidates[0]?.id ?? '' }));
        cb(null, a);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });
  after(() => {
    for (const answerLate of held) answerLate();
    server.forceShutdown();
  });

  function setup(timeoutMs = 100) {
    const { logger, lines } = capturingLogger();
    const health = new HealthTracker({ logger });
    const picker = new GrpcEndpointPicker(address, timeoutMs, logger);
    const cfg = config({ strategy: 'round-robin', endpointPicker: { address, timeoutMs } });
    const router = new ResilientRouter({ health, logger, picker: () => picker });
    const tiers = tiersOf(provider('ns/a'), provider('ns/b', { weight: 3 }));
    const body = { raw: Buffer.from('{"model":"m","messages":[{"role":"user","content":"long shared prefix"}]}'), json: {}, model: 'm', stream: false };
    const open = (): RequestPlan => router.open({ requestId: 'req-7', model: 'm', operation: 'chat/completions', body, tiers, config: cfg }) as RequestPlan;
    return { router, open, lines, picker };
  }

  it('sends the candidates, attempt and body, and routes where the picker says', async () => {
    answer = () => ({ id: 'ns/b#ns/b-model' });
    // A timeout no busy machine reaches: this test is about following the picker, not about falling back.
    const { router, open, picker } = setup(10_000);
    for (let i = 0; i < 3; i++) {
      const choice = (await router.next(open())) as AttemptChoice;
      assert.equal(choice.attempt.candidate.id, 'ns/b#ns/b-model');
    }
    const req = seen.at(-1)!;
    assert.equal(req.requestId, 'req-7');
    assert.equal(req.model, 'm');
    assert.equal(req.attempt, 1);
    assert.deepEqual(req.candidates.map((c) => [c.id, c.provider, c.upstreamModel, c.weight]), [['ns/a#ns/a-model', 'ns/a', 'ns/a-model', 1], ['ns/b#ns/b-model', 'ns/b', 'ns/b-model', 3]]);
    assert.match(req.body.toString(), /long shared prefix/);
    picker.close();
  });

  it('falls back to the built-in choice on a timeout, an error or an unknown id', async () => {
    const { router, open, lines, picker } = setup(50);
    for (const mode of ['slow', 'fail', 'unknown'] as const) {
      answer = () => (mode === 'unknown' ? { id: 'ns/zzz' } : mode);
      // 'slow' never answers before the suite ends, so getting a choice at all proves the timeout fired.
      const choice = (await router.next(open())) as AttemptChoice;
      assert.ok(['ns/a#ns/a-model', 'ns/b#ns/b-model'].includes(choice.attempt.candidate.id), mode);
    }
    assert.equal(lines.filter((l) => l['decision'] === 'picker-fallback').length, 3);
    picker.close();
  });
});
