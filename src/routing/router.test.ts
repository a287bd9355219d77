import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatewayError } from '../errors.js';
import type { RequestBody } from '../pipeline/request-body.js';
import { HealthTracker, type TargetRef } from './health.js';
import type { Candidate, RequestPlan } from './plan.js';
import { ResilientRouter, type AttemptChoice, type EndpointPicker } from './router.js';
import { capturingLogger, clock, config, provider, seeded, tiersOf } from './test-support.js';

const body: RequestBody = { raw: Buffer.from('{"model":"m"}'), json: { model: 'm' }, model: 'm', stream: false };

/** The target of provider `name` in tiersOf(): its model is `${name}-model`. */
const ref = (name: string): TargetRef => ({ id: `${name}#${name}-model`, provider: name, model: `${name}-model`, host: name });

function setup(spec = {}, extra: Partial<ConstructorParameters<typeof ResilientRouter>[0]> = {}) {
  const { logger, lines } = capturingLogger();
  const c = clock();
  const health = new HealthTracker({ logger, now: c.now });
  const router = new ResilientRouter({ health, logger, now: c.now, random: seeded(9), ...extra });
  const cfg = config(spec);
  return { router, health, lines, clock: c, cfg };
}

function choice(x: AttemptChoice | unknown): AttemptChoice {
  if (isGatewayError(x) || x instanceof Promise) throw new Error(`expected a choice, got ${JSON.stringify(x)}`);
  return x as AttemptChoice;
}

describe('failover order', () => {
  it('tries the preferred tier, then the next, then repeats the least-tried with backoff', () => {
    const { router, cfg, lines } = setup({ backoff: { baseMs: 100, maxMs: 1000 } });
    const tiers = tiersOf(provider('a'), provider('b', { priority: 1 }));
    const plan = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: cfg }) as RequestPlan;
    const first = choice(router.next(plan));
    assert.equal(first.attempt.candidate.id, 'a#a-model');
    assert.equal(first.backoffMs, 0);
    router.result(plan, first.attempt, { ok: false, reason: 'http_429', status: 429 });
    router.end(first.attempt);
    const second = choice(router.next(plan));
    assert.equal(second.attempt.candidate.id, 'b#b-model');
    assert.equal(second.backoffMs, 0, 'no backoff towards another provider');
    router.result(plan, second.attempt, { ok: false, reason: 'timeout', status: 504 });
    const third = choice(router.next(plan));
    assert.equal(third.attempt.candidate.id, 'a#a-model');
    assert.ok(third.backoffMs >= 0 && third.backoffMs < 100, `backoff ${third.backoffMs}`);
    router.result(plan, third.attempt, { ok: true, ttfbMs: 5 });
    assert.equal(plan.winner?.id, 'a#a-model');
    const failovers = lines.filter((l) => l['decision'] === 'failover');
    assert.deepEqual(failovers.map((l) => [l['from'], l['to'], l['reason']]), [['a#a-model', 'b#b-model', 'http_429'], ['b#b-model', 'a#a-model', 'timeout']]);
  });

  it('after the last allowed attempt fails, one summary error (no provider names); a single attempt keeps its own', () => {
    const { router, cfg } = setup({ maxAttempts: 2 });
    const tiers = tiersOf(provider('ns/a'), provider('ns/b', { priority: 1 }));
    const plan = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: cfg }) as RequestPlan;
    const first = choice(router.next(plan));
    router.result(plan, first.attempt, { ok: false, reason: 'http_5xx', status: 500 });
    assert.equal(router.exhausted(plan, first.attempt), undefined, 'attempts remain');
    const second = choice(router.next(plan));
    router.result(plan, second.attempt, { ok: false, reason: 'timeout', status: 504 });
    const err = router.exhausted(plan, second.attempt);
    assert.equal(err?.code, 'provider_unavailable');
    assert.equal(err?.message, "All 2 upstream attempts for the model 'm' failed (HTTP 500, 504). Retry later.");
    assert.ok(!err?.message.includes('ns/'));
    const single = setup({ maxAttempts: 1 });
    const p1 = single.router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: single.cfg }) as RequestPlan;
    const only = choice(single.router.next(p1));
    single.router.result(p1, only.attempt, { ok: false, reason: 'http_429', status: 429 });
    assert.equal(single.router.exhausted(p1, only.attempt), undefined);
  });

  it('a last attempt that was throttled or overloaded is passed on (no summary); after a 429, nowhere left to go is a 429 with Retry-After', () => {
    const { router, cfg } = setup({ maxAttempts: 2 });
    const tiers = tiersOf(provider('ns/a'), provider('ns/b', { priority: 1 }));
    const plan = router.open({ requestId: 'r', model: 'm', operation: 'messages', body, tiers, config: cfg }) as RequestPlan;
    const first = choice(router.next(plan));
    router.result(plan, first.attempt, { ok: false, reason: 'http_5xx', status: 500 });
    const second = choice(router.next(plan));
    router.result(plan, second.attempt, { ok: false, reason: 'http_429', status: 429 });
    assert.equal(router.exhausted(plan, second.attempt, 'throttled'), undefined);
    assert.equal(router.exhausted(plan, second.attempt, 'overloaded'), undefined);
    assert.equal(router.exhausted(plan, second.attempt)?.code, 'provider_unavailable', 'any other class: the summary');
    assert.equal(router.exhaustedDirect(plan, 3, 529, 'overloaded'), undefined);
    assert.equal(router.exhaustedDirect(plan, 3, 500)?.code, 'provider_unavailable');
    // Both rest after 429s with Retry-After: the next attempt has no target.
    const resting = setup({ maxAttempts: 3 });
    const p2 = resting.router.open({ requestId: 'r2', model: 'm', operation: 'messages', body, tiers, config: resting.cfg }) as RequestPlan;
    for (let i = 0; i < 2; i++) {
      const c = choice(resting.router.next(p2));
      resting.router.result(p2, c.attempt, { ok: false, reason: 'http_429', status: 429, retryAfterMs: 4000 });
    }
    const refused = resting.router.next(p2);
    assert.ok(isGatewayError(refused), JSON.stringify(refused));
    assert.equal(refused.code, 'provider_rate_limited');
    assert.equal(refused.headers?.['retry-after'], '4');
  });

  it('skips ejected targets; hard-open (budget 0) refuses with Retry-After when every target is out', () => {
    const { router, health, cfg } = setup({ circuitBreaker: { consecutiveFailures: 1, cooldownSeconds: 7, probeBudgetPerSecond: 0 } });
    const tiers = tiersOf(provider('a'), provider('b', { priority: 1 }));
    health.onAttemptStart(ref('a'), 'x');
    health.onAttemptResult('a#a-model', { ok: false, reason: 'http_5xx', status: 500 }, cfg, 'x');
    const plan = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: cfg }) as RequestPlan;
    assert.equal(choice(router.next(plan)).attempt.candidate.id, 'b#b-model');
    health.onAttemptResult('b#b-model', { ok: false, reason: 'http_5xx', status: 500 }, cfg, 'r');
    const refused = router.open({ requestId: 'r2', model: 'm', operation: 'chat/completions', body, tiers, config: cfg });
    assert.ok(isGatewayError(refused));
    assert.equal(refused.code, 'provider_unavailable');
    assert.equal(refused.headers?.['retry-after'], '7');
  });

  it("retryAfterSeconds: the gateway's cool-down for a passed-on 429 that came without Retry-After; none while a target is available", () => {
    const { router, cfg } = setup({ maxAttempts: 1, circuitBreaker: { consecutiveFailures: 1, cooldownSeconds: 7, probeBudgetPerSecond: 0 } });
    const tiers = tiersOf(provider('a'));
    const plan = router.open({ requestId: 'r', model: 'm', operation: 'messages', body, tiers, config: cfg }) as RequestPlan;
    assert.equal(router.retryAfterSeconds(plan), undefined, 'available');
    const only = choice(router.next(plan));
    router.result(plan, only.attempt, { ok: false, reason: 'http_429', status: 429 });
    assert.equal(router.retryAfterSeconds(plan), 7, 'ejected for its cool-down');
  });

  it('with every target out, still sends to the least recently failed one within the probe budget', () => {
    const { router, health, cfg, clock: c, lines } = setup({ circuitBreaker: { consecutiveFailures: 1, cooldownSeconds: 30, probeBudgetPerSecond: 2 } });
    const tiers = tiersOf(provider('a'), provider('b', { priority: 1 }));
    const failTarget = (id: string): void => {
      const [host, model] = id.split('#') as [string, string];
      health.onAttemptStart({ id, provider: host, model, host }, 'x');
      health.onAttemptResult(id, { ok: false, reason: 'http_5xx', status: 500 }, cfg, 'x');
      health.onAttemptEnd(id, { hadResponse: true });
    };
    failTarget('b#b-model');
    c.advance(100);
    failTarget('a#a-model'); // a failed last: b is the least recently failed
    const open = (): RequestPlan | ReturnType<typeof router.open> => router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: cfg });
    const first = open() as RequestPlan;
    assert.ok(!isGatewayError(first), 'not refused although both are cooling down');
    const attempt = choice(router.next(first));
    assert.equal(attempt.attempt.candidate.id, 'b#b-model');
    assert.equal(health.circuit('b#b-model'), 'open', 'a last resort is not the half-open probe');
    assert.ok(lines.some((l) => l['decision'] === 'last-resort' && l['target'] === 'b#b-model' && l['provider'] === 'b' && l['model'] === 'b-model'));
    // The second token of b's budget (2 per second); then a's, whose budget is its own.
    assert.equal(choice(router.next(open() as RequestPlan)).attempt.candidate.id, 'b#b-model');
    assert.equal(choice(router.next(open() as RequestPlan)).attempt.candidate.id, 'a#a-model');
    assert.equal(choice(router.next(open() as RequestPlan)).attempt.candidate.id, 'a#a-model');
    const refused = open();
    assert.ok(isGatewayError(refused), 'budget spent');
    assert.equal(refused.headers?.['retry-after'], '1', 'the budget refills within a second');
    c.advance(500);
    const again = open() as RequestPlan;
    assert.ok(!isGatewayError(again), 'one token refilled after 500 ms');
    // It answers: the circuit closes at once, without waiting out the 30 s cool-down.
    const ok = choice(router.next(again));
    router.result(again, ok.attempt, { ok: true, ttfbMs: 3 });
    assert.equal(health.circuit('b#b-model'), 'closed');
    assert.ok(lines.some((l) => l['decision'] === 'returned' && l['reason'] === 'last-resort attempt succeeded'));
  });

  it('never sends to a target resting after a 429 with Retry-After: 503 with the provider\'s wait', () => {
    const { router, health, cfg } = setup();
    const tiers = tiersOf(provider('a'));
    health.onAttemptStart(ref('a'), 'x');
    health.onAttemptResult('a#a-model', { ok: false, reason: 'http_429', status: 429, retryAfterMs: 4000 }, cfg, 'x');
    const refused = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: cfg });
    assert.ok(isGatewayError(refused));
    assert.equal(refused.headers?.['retry-after'], '4');
  });

  it('a single target that is out goes direct as a last resort, spending one token', () => {
    const { router, health, cfg } = setup({ circuitBreaker: { consecutiveFailures: 1, probeBudgetPerSecond: 1 } });
    const tiers = tiersOf(provider('a'));
    health.onAttemptStart(ref('a'), 'x');
    health.onAttemptResult('a#a-model', { ok: false, reason: 'http_5xx', status: 500 }, cfg, 'x');
    const plan = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: cfg }) as RequestPlan;
    assert.equal(plan.direct, true);
    router.beginDirect(plan);
    assert.ok(health.lastResortWaitMs('a#a-model', cfg) > 0, 'the token was spent');
    assert.ok(isGatewayError(router.open({ requestId: 'r2', model: 'm', operation: 'chat/completions', body, tiers, config: cfg })));
  });

  it('targets are per (provider, model): one model of a provider failing leaves its other models in', () => {
    const { router, health, cfg } = setup({ circuitBreaker: { consecutiveFailures: 1, probeBudgetPerSecond: 0 } });
    const p = provider('p');
    const tiersFor = (model: string) => [{ priority: 0, routes: [{ provider: p, upstreamModel: model, limits: [], limitScopeId: `provider:p:${model}` }], totalWeight: 1 }];
    const planA = router.open({ requestId: 'r', model: 'a', operation: 'chat/completions', body, tiers: tiersFor('model-a'), config: cfg }) as RequestPlan;
    const a = router.beginDirect(planA);
    assert.equal(a.attempt.candidate.id, 'p#model-a');
    router.result(planA, a.attempt, { ok: false, reason: 'http_429', status: 429, retryAfterMs: 60_000 });
    const planA2 = router.open({ requestId: 'r', model: 'a', operation: 'chat/completions', body, tiers: tiersFor('model-a'), config: cfg });
    assert.ok(isGatewayError(planA2), 'model-a rests');
    assert.equal(health.isAvailable('p#model-b'), true);
    const planB = router.open({ requestId: 'r', model: 'b', operation: 'chat/completions', body, tiers: tiersFor('model-b'), config: cfg });
    assert.ok(!isGatewayError(planB), 'model-b of the same provider still served');
  });

  it('discovered endpoints are separate targets with the provider weight split between them', () => {
    const endpoints = { endpoints: (ns: string, svc: string, port: number) => (ns === 'ml' && svc === 'vllm' && port === 8000 ? ['10.0.0.1:8000', '10.0.0.2:8000'] : []) };
    const { router, cfg } = setup({ strategy: 'round-robin' }, { endpoints });
    const tiers = tiersOf(provider('ml/vllm', { service: { namespace: 'ml', name: 'vllm', port: 8000 }, weight: 4 }));
    const seen: Candidate[] = [];
    for (let i = 0; i < 2; i++) {
      const plan = router.open({ requestId: `r${i}`, model: 'm', operation: 'chat/completions', body, tiers, config: cfg }) as RequestPlan;
      seen.push(choice(router.next(plan)).attempt.candidate);
    }
    assert.deepEqual(seen.map((c) => c.address).sort(), ['10.0.0.1:8000', '10.0.0.2:8000']);
    assert.equal(seen[0]?.weight, 2);
    assert.equal(seen[0]?.id, `ml/vllm@${seen[0]?.address}#ml/vllm-model`);
    const none = router.open({ requestId: 'x', model: 'm', operation: 'chat/completions', body, tiers: tiersOf(provider('ml/empty', { service: { namespace: 'ml', name: 'empty', port: 1 } })), config: cfg });
    assert.ok(isGatewayError(none));
  });

  it('asks the external picker when configured and falls back to the built-in choice on failure', async () => {
    let answer: string | undefined | Error = 'b#b-model';
    const picker: EndpointPicker = {
      pick: async () => {
        if (answer instanceof Error) throw answer;
        return answer;
      },
    };
    const { router, cfg, lines } = setup({ strategy: 'round-robin', endpointPicker: { address: 'x:1' } }, { picker: () => picker });
    const tiers = tiersOf(provider('a'), provider('b'));
    const open = (): RequestPlan => router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: cfg }) as RequestPlan;
    assert.equal((await router.next(open()) as AttemptChoice).attempt.candidate.id, 'b#b-model');
    assert.equal((await router.next(open()) as AttemptChoice).attempt.candidate.id, 'b#b-model');
    answer = 'not-a-candidate';
    const fallback = (await router.next(open())) as AttemptChoice;
    assert.ok(['a#a-model', 'b#b-model'].includes(fallback.attempt.candidate.id));
    assert.ok(lines.some((l) => l['decision'] === 'picker-fallback'));
    answer = new Error('down');
    assert.ok(['a#a-model', 'b#b-model'].includes(((await router.next(open())) as AttemptChoice).attempt.candidate.id));
  });

  it('plans are removed on close and bounded by a TTL', () => {
    const { router, cfg, clock: c } = setup();
    const plan = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers: tiersOf(provider('a')), config: cfg }) as RequestPlan;
    assert.equal(router.plans.get(plan.id), plan);
    router.close(plan.id);
    assert.equal(router.plans.get(plan.id), undefined);
    const old = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers: tiersOf(provider('a')), config: cfg }) as RequestPlan;
    c.advance(31 * 60_000);
    assert.equal(router.plans.get(old.id), undefined);
  });
});

describe('direct plans: tries Envoy retried', () => {
  it('count as failures of the one target, capped at the attempt limit whatever the try count says', () => {
    const { router, health, cfg } = setup({ maxAttempts: 3, circuitBreaker: { consecutiveFailures: 3 } });
    const plan = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers: tiersOf(provider('a')), config: cfg }) as RequestPlan;
    assert.equal(plan.direct, true);
    const { attempt } = choice(router.beginDirect(plan));
    router.retried(plan, attempt, 1_000_000, false); // counted as 2: Envoy makes at most 3 tries
    assert.equal(health.circuit('a#a-model'), 'closed');
    router.result(plan, attempt, { ok: false, reason: 'http_5xx', status: 500 });
    assert.equal(health.circuit('a#a-model'), 'open', 'the two retried tries and the final one: 3 consecutive failures');
  });
});
