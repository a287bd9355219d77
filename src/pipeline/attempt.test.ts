import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RequestPlan } from '../routing/plan.js';
import { config, provider, tiersOf } from '../routing/test-support.js';
import { attemptRewrite, PER_TRY_TIMEOUT_HEADER } from './attempt.js';
import type { RequestBody } from './request-body.js';

const raw = Buffer.from('{"model":"llama","messages":[]}');
const body: RequestBody = { raw, json: JSON.parse(raw.toString()) as Record<string, unknown>, model: 'llama', stream: false };

function plan(p = provider('ml/vllm', { firstByteTimeoutMs: 15_000 })): RequestPlan {
  return { id: 'x', requestId: 'req-1', model: 'llama', operation: 'chat/completions', body, tiers: tiersOf(p), config: config(), createdMs: 0, attempts: [], winner: undefined };
}

describe('attempt rewrite', () => {
  it("sends a discovered endpoint's address as the authority, with the provider's path, model and first-byte timeout", () => {
    const p = plan();
    const route = p.tiers[0]!.routes[0]!;
    const rw = attemptRewrite(p, { id: 'ml/vllm@10.0.0.7:8000', route, weight: 1, address: '10.0.0.7:8000' });
    const headers = new Map(rw.setHeaders);
    assert.equal(headers.get(':authority'), '10.0.0.7:8000');
    assert.equal(headers.get(':path'), '/v1/chat/completions');
    assert.equal(headers.get(PER_TRY_TIMEOUT_HEADER), '15000');
    assert.equal(headers.get('authorization'), 'Bearer cred-ml/vllm');
    assert.equal(JSON.parse(rw.body!.toString()).model, 'ml/vllm-model');
  });

  it("keeps the provider's own host and sets no timeout header when none is configured", () => {
    const p = plan(provider('a'));
    const rw = attemptRewrite(p, { id: 'a', route: p.tiers[0]!.routes[0]!, weight: 1, address: undefined });
    const headers = new Map(rw.setHeaders);
    assert.equal(headers.get(':authority'), 'a.example:80');
    assert.equal(headers.has(PER_TRY_TIMEOUT_HEADER), false);
  });

  it('refuses to build an attempt once the response was settled', () => {
    const p = plan();
    p.body = undefined;
    assert.throws(() => attemptRewrite(p, { id: 'a', route: p.tiers[0]!.routes[0]!, weight: 1, address: undefined }));
  });
});
