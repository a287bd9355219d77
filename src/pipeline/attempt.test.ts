import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RequestPlan } from '../routing/plan.js';
import { HealthTracker } from '../routing/health.js';
import { ResilientRouter } from '../routing/router.js';
import { capturingLogger, config, provider, tiersOf } from '../routing/test-support.js';
import { isGatewayError } from '../errors.js';
import type { Candidate } from '../routing/plan.js';
import { attemptRewrite as attemptOrError, PER_TRY_TIMEOUT_HEADER } from './attempt.js';
import type { UpstreamRewrite } from './rewrite.js';
import { directRewrite } from './dispatch.js';
import type { RequestBody } from './request-body.js';

const raw = Buffer.from('{"model":"llama","messages":[]}');
const body: RequestBody = { raw, json: JSON.parse(raw.toString()) as Record<string, unknown>, model: 'llama', stream: false };

function attemptRewrite(p: RequestPlan, c: Candidate): UpstreamRewrite {
  const rw = attemptOrError(p, c);
  assert.ok(!(rw instanceof Promise) && !isGatewayError(rw), 'an OpenAI-style provider takes any body, synchronously');
  return rw;
}

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

describe('direct rewrite (one target, no attempt stage)', () => {
  it("carries the attempt's rewrite, the attempt limit for Envoy's retries, and strips client credentials and Envoy control headers", () => {
    const p = plan();
    const route = p.tiers[0]!.routes[0]!;
    const rw = directRewrite(p, { id: 'ml/vllm', route, weight: 1, address: undefined });
    const headers = new Map(rw.setHeaders);
    assert.equal(headers.get('authorization'), 'Bearer cred-ml/vllm');
    assert.equal(headers.get('x-envoy-max-retries'), String(p.config.maxAttempts - 1));
    assert.equal(headers.get(PER_TRY_TIMEOUT_HEADER), '15000');
    assert.equal(headers.has('x-tollgate-plan'), false, 'no plan header: nothing reads it');
    for (const h of ['x-api-key', 'api-key', 'x-envoy-retry-on', 'x-envoy-upstream-rq-timeout-ms']) assert.ok(rw.removeHeaders.includes(h), `${h} not removed`);
    for (const [name] of rw.setHeaders) assert.ok(!rw.removeHeaders.includes(name), `${name} is both set and removed`);
    assert.equal(JSON.parse(rw.body!.toString()).model, 'ml/vllm-model');
  });
});

describe('which plans go direct', () => {
  const { logger } = capturingLogger();
  const router = new ResilientRouter({ health: new HealthTracker({ logger }), logger });
  const open = (...providers: ReturnType<typeof provider>[]): RequestPlan =>
    router.open({ requestId: 'r', model: 'llama', operation: 'chat/completions', body, tiers: tiersOf(...providers), config: config() }) as RequestPlan;
  it('one target: direct; two targets (any tier): the attempt stage', () => {
    assert.equal(open(provider('a')).direct, true);
    assert.equal(open(provider('a'), provider('b')).direct, false);
    assert.equal(open(provider('a'), provider('b', { priority: 1 })).direct, false);
  });
  it("a direct plan's one attempt goes to its only target and is recorded on the plan", () => {
    const plan = open(provider('a'));
    const choice = router.beginDirect(plan);
    assert.equal(choice.attempt.candidate.id, 'a#a-model');
    assert.equal(choice.attempt.number, 1);
    assert.equal(choice.backoffMs, 0);
    assert.deepEqual(plan.attempts, [choice.attempt]);
    assert.throws(() => router.beginDirect(open(provider('a'), provider('b'))));
  });
});
