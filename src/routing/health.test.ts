import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cooldownFor, finalErrorClass, HealthTracker, parseRetryAfter, type TargetRef } from './health.js';
import { gatewayConfigSpecSchema } from '../config/schema.js';
import { validate } from '../config/validate.js';
import { capturingLogger, clock, config } from './test-support.js';

const cfg = config({ circuitBreaker: { consecutiveFailures: 3, cooldownSeconds: 10, maxCooldownSeconds: 35 } });
const ref = (id: string, host = id): TargetRef => ({ id, provider: host, model: 'm', host });

function fail(h: HealthTracker, id = 'p'): void {
  h.onAttemptStart(ref(id), 'r');
  h.onAttemptResult(id, { ok: false, reason: 'http_5xx', status: 500 }, cfg, 'r');
  h.onAttemptEnd(id, { hadResponse: true });
}
function succeed(h: HealthTracker, id = 'p', ttfbMs = 20): void {
  h.onAttemptStart(ref(id), 'r');
  h.onAttemptResult(id, { ok: true, ttfbMs }, cfg, 'r');
  h.onAttemptEnd(id, { hadResponse: true });
}

describe('circuit breaker', () => {
  it('ejects after N consecutive failures, probes once after the cool-down, returns on success', () => {
    const { logger, lines } = capturingLogger();
    const c = clock();
    const h = new HealthTracker({ logger, now: c.now });
    fail(h);
    fail(h);
    succeed(h); // a success resets the count
    fail(h);
    fail(h);
    assert.equal(h.circuit('p'), 'closed');
    fail(h);
    assert.equal(h.circuit('p'), 'open');
    assert.equal(h.isAvailable('p'), false);
    assert.equal(h.msUntilAvailable(['p']), 10_000);
    c.advance(10_000);
    assert.equal(h.isAvailable('p'), true, 'cool-down over: one probe may go');
    h.onAttemptStart(ref('p'), 'probe-1');
    assert.equal(h.circuit('p'), 'half-open');
    assert.equal(h.isAvailable('p'), false, 'only one probe at a time');
    h.onAttemptResult('p', { ok: true, ttfbMs: 5 }, cfg, 'probe-1');
    assert.equal(h.circuit('p'), 'closed');
    assert.equal(h.isAvailable('p'), true);
    const decisions = lines.filter((l) => l['msg'] === 'routing decision').map((l) => l['decision']);
    assert.deepEqual(decisions, ['ejected', 'probe', 'returned']);
    const ejected = lines.find((l) => l['decision'] === 'ejected')!;
    assert.equal(ejected['reason'], 'http_5xx');
    assert.equal(ejected['consecutiveFailures'], 3);
    assert.equal(ejected['cooldownMs'], 10_000);
  });

  it('a failed probe reopens with a doubled cool-down, capped', () => {
    const c = clock();
    const h = new HealthTracker({ logger: capturingLogger().logger, now: c.now });
    for (let i = 0; i < 3; i++) fail(h);
    for (const expected of [20_000, 35_000, 35_000]) {
      c.advance(h.msUntilAvailable(['p']));
      fail(h);
      assert.equal(h.circuit('p'), 'open');
      assert.equal(h.msUntilAvailable(['p']), expected);
    }
    assert.equal(cooldownFor(1, cfg), 10_000);
    assert.equal(cooldownFor(2, cfg), 20_000);
  });

  it('an abandoned probe (no answer at all) lets the next request probe', () => {
    const c = clock();
    const h = new HealthTracker({ logger: capturingLogger().logger, now: c.now });
    for (let i = 0; i < 3; i++) fail(h);
    c.advance(10_000);
    h.onAttemptStart(ref('p'), 'r');
    assert.equal(h.isAvailable('p'), false);
    h.onAttemptEnd('p', { hadResponse: false });
    assert.equal(h.isAvailable('p'), true);
  });

  it('a 429 with Retry-After rests the target for that long (capped), without counting as a failure', () => {
    const { logger, lines } = capturingLogger();
    const c = clock();
    const h = new HealthTracker({ logger, now: c.now });
    h.onAttemptStart(ref('p'), 'r');
    h.onAttemptResult('p', { ok: false, reason: 'http_429', status: 429, retryAfterMs: 4000 }, cfg, 'r');
    assert.equal(h.isAvailable('p'), false);
    assert.equal(h.msUntilAvailable(['p']), 4000);
    assert.equal(h.circuit('p'), 'closed');
    c.advance(4000);
    assert.equal(h.isAvailable('p'), true);
    assert.equal(lines.find((l) => l['decision'] === 'rested')?.['restMs'], 4000);
    assert.equal(lines.filter((l) => l['decision'] === 'returned' && l['reason'] === 'Retry-After elapsed').length, 1, 'the return is logged once');
    h.isAvailable('p');
    assert.equal(lines.filter((l) => l['decision'] === 'returned').length, 1);
    const capped = new HealthTracker({ logger, now: c.now });
    capped.onAttemptStart(ref('q'), 'r');
    capped.onAttemptResult('q', { ok: false, reason: 'http_429', status: 429, retryAfterMs: 10 * 3600_000 }, config({ circuitBreaker: { maxRetryAfterSeconds: 60 } }), 'r');
    assert.equal(capped.msUntilAvailable(['q']), 60_000);
  });

  it('tracks outstanding attempts and an EWMA of time to first byte', () => {
    const h = new HealthTracker({ logger: capturingLogger().logger });
    h.onAttemptStart(ref('p'), 'r1');
    h.onAttemptStart(ref('p'), 'r2');
    assert.equal(h.view('p').outstanding, 2);
    h.onAttemptResult('p', { ok: true, ttfbMs: 100 }, cfg, 'r1');
    h.onAttemptEnd('p', { hadResponse: true });
    h.onAttemptResult('p', { ok: true, ttfbMs: 200 }, cfg, 'r2');
    h.onAttemptEnd('p', { hadResponse: true });
    assert.equal(h.view('p').outstanding, 0);
    assert.equal(h.view('p').ewmaTtfbMs, 130); // 100 + 0.3 * (200 - 100)
    h.recordTokens('p', 100, 1000);
    assert.equal(h.view('p').ewmaTokensPerSecond, 100);
  });
});

describe('failure-rate ejection', () => {
  const rateCfg = config({ circuitBreaker: { consecutiveFailures: 1000, failureRatePercent: 50, window: 10, minRequests: 6 } });
  const outcome = (h: HealthTracker, ok: boolean): void => {
    h.onAttemptStart(ref('p'), 'r');
    h.onAttemptResult('p', ok ? { ok: true, ttfbMs: 1 } : { ok: false, reason: 'http_5xx', status: 502 }, rateCfg, 'r');
    h.onAttemptEnd('p', { hadResponse: true });
  };

  it('ejects when half of the last attempts failed, even with successes in between', () => {
    const { logger, lines } = capturingLogger();
    const h = new HealthTracker({ logger, now: clock().now });
    for (const ok of [true, false, true, false, true]) outcome(h, ok);
    assert.equal(h.circuit('p'), 'closed', 'fewer than minRequests attempts');
    outcome(h, false); // 3 of 6 failed
    assert.equal(h.circuit('p'), 'open');
    const ejected = lines.find((l) => l['decision'] === 'ejected')!;
    assert.equal(ejected['rule'], 'failure_rate');
    assert.equal(ejected['failureRatePercent'], 50);
  });

  it('looks only at the window: old failures age out', () => {
    const h = new HealthTracker({ logger: capturingLogger().logger, now: clock().now });
    for (let i = 0; i < 4; i++) outcome(h, false);
    for (let i = 0; i < 1; i++) outcome(h, true);
    // 4 of 5: below minRequests. Then 10 successes push the failures out of the 10-wide window.
    for (let i = 0; i < 10; i++) outcome(h, true);
    for (let i = 0; i < 4; i++) outcome(h, false); // 4 of 10
    assert.equal(h.circuit('p'), 'closed');
    outcome(h, false); // 5 of 10
    assert.equal(h.circuit('p'), 'open');
  });

  it('is off by default', () => {
    const h = new HealthTracker({ logger: capturingLogger().logger, now: clock().now });
    const cfg = config({ circuitBreaker: { consecutiveFailures: 1000 } });
    for (let i = 0; i < 50; i++) {
      h.onAttemptStart(ref('p'), 'r');
      h.onAttemptResult('p', { ok: i % 2 === 0, ttfbMs: 1, reason: 'http_5xx' } as never, cfg, 'r');
    }
    assert.equal(h.circuit('p'), 'closed');
  });
});

describe('tries Envoy retried on the same target (direct path)', () => {
  /** One direct request: `retried` tries failed before the final one, which has `finalOk`. */
  const direct = (h: HealthTracker, retried: number, finalOk: boolean, c = cfg): void => {
    h.onAttemptStart(ref('p'), 'r');
    h.onRetriedTries('p', retried, finalOk, c, 'r');
    h.onAttemptResult('p', finalOk ? { ok: true, ttfbMs: 1 } : { ok: false, reason: 'http_5xx', status: 500 }, c, 'r');
    h.onAttemptEnd('p', { hadResponse: true });
  };

  it('every try of a request whose tries all failed counts towards consecutive failures', () => {
    const { logger, lines } = capturingLogger();
    const h = new HealthTracker({ logger, now: clock().now });
    direct(h, 1, false); // 2 failures
    assert.equal(h.circuit('p'), 'closed');
    direct(h, 2, false); // 3rd failure is the first retried try of this request
    assert.equal(h.circuit('p'), 'open');
    const ejected = lines.find((l) => l['decision'] === 'ejected')!;
    assert.equal(ejected['reason'], 'retried');
    assert.equal(ejected['consecutiveFailures'], 3);
  });

  it('a request that succeeded after retries does not eject, but its failed tries count in the failure rate', () => {
    const rateCfg = config({ circuitBreaker: { consecutiveFailures: 1000, failureRatePercent: 50, window: 10, minRequests: 6 } });
    const h = new HealthTracker({ logger: capturingLogger().logger, now: clock().now });
    direct(h, 2, true, rateCfg); // tries: fail, fail, ok
    direct(h, 2, true, rateCfg); // 4 of 6 failed, but the final tries succeeded
    assert.equal(h.circuit('p'), 'closed', 'a target that answered in the end is not ejected by its retried tries alone');
    // The next real failure sees the window: 5 of 7 failed.
    direct(h, 0, false, rateCfg);
    assert.equal(h.circuit('p'), 'open');
    // Seen only from the final try, the window would hold 1 failure in 3 requests (below minRequests).
    const blind = new HealthTracker({ logger: capturingLogger().logger, now: clock().now });
    for (const finalOk of [true, true, false]) direct(blind, 0, finalOk, rateCfg);
    assert.equal(blind.circuit('p'), 'closed');
  });
});

describe('streams that break after the first byte', () => {
  it('N breaks in a row eject the target even though each response started fine; a clean end resets the count', () => {
    const { logger, lines } = capturingLogger();
    const h = new HealthTracker({ logger, now: clock().now });
    const cfg2 = config({ circuitBreaker: { consecutiveFailures: 2 } });
    const started = (): void => {
      h.onAttemptStart(ref('p'), 'r');
      h.onAttemptResult('p', { ok: true, ttfbMs: 5 }, cfg2, 'r');
      h.onAttemptEnd('p', { hadResponse: true });
    };
    started();
    h.onBrokenStream('p', 'upstreamRemoteReset', cfg2);
    started();
    h.onCleanStream('p');
    started();
    h.onBrokenStream('p', 'upstreamRemoteReset', cfg2);
    assert.equal(h.circuit('p'), 'closed', 'a clean stream in between resets the count');
    started();
    h.onBrokenStream('p', 'upstreamProtocolError', cfg2);
    assert.equal(h.circuit('p'), 'open');
    assert.equal(lines.find((l) => l['decision'] === 'ejected')?.['reason'], 'broken_stream');
    assert.equal(lines.filter((l) => l['decision'] === 'stream-broken').length, 3);
  });
});

describe('Retry-After', () => {
  it('parses delay seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('3', 0), 3000);
    assert.equal(parseRetryAfter('1.5', 0), 1500);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10_000);
    assert.equal(parseRetryAfter('soon', 0), undefined);
    assert.equal(parseRetryAfter(undefined, 0), undefined);
  });
});

describe('last resort while out (no other target)', () => {
  const open = (budget: number) => {
    const c = clock();
    const { logger, lines } = capturingLogger();
    const h = new HealthTracker({ logger, now: c.now });
    const cb = config({ circuitBreaker: { consecutiveFailures: 1, cooldownSeconds: 30, probeBudgetPerSecond: budget } });
    h.onAttemptStart(ref('p'), 'r');
    h.onAttemptResult('p', { ok: false, reason: 'http_5xx', status: 500 }, cb, 'r');
    h.onAttemptEnd('p', { hadResponse: true });
    return { h, c, cb, lines };
  };

  it('a budget of N per second: N at once, then one every 1/N s', () => {
    const { h, c, cb, lines } = open(4);
    assert.equal(h.circuit('p'), 'open');
    for (let i = 0; i < 4; i++) {
      assert.equal(h.lastResortWaitMs('p', cb), 0);
      h.takeLastResort('p', cb, `r${i}`);
    }
    assert.equal(h.lastResortWaitMs('p', cb), 250);
    c.advance(250);
    assert.equal(h.lastResortWaitMs('p', cb), 0);
    h.takeLastResort('p', cb, 'r5');
    assert.equal(h.circuit('p'), 'open', 'a last resort does not change the circuit');
    assert.equal(lines.filter((l) => l['decision'] === 'last-resort').length, 5);
    c.advance(10_000);
    assert.equal(h.lastResortWaitMs('p', cb), 0, 'refilled');
  });

  it('budget 0 is hard-open: only the end of the cool-down', () => {
    const { h, c, cb } = open(0);
    assert.equal(h.lastResortWaitMs('p', cb), 30_000);
    c.advance(29_000);
    assert.equal(h.lastResortWaitMs('p', cb), 1000);
  });

  it('never while resting after a 429 with Retry-After, whatever the budget', () => {
    const { h, c, cb } = open(100);
    h.onAttemptStart(ref('p'), 'r');
    h.onAttemptResult('p', { ok: false, reason: 'http_429', status: 429, retryAfterMs: 3000 }, cb, 'r');
    assert.equal(h.lastResortWaitMs('p', cb), 3000);
    c.advance(3000);
    assert.equal(h.lastResortWaitMs('p', cb), 0);
  });

  it('remembers when each target failed last (the least recently failed is tried first)', () => {
    const { h, c, cb } = open(1);
    const failedAt = h.lastFailureMs('p');
    assert.ok(failedAt > 0);
    c.advance(5);
    h.onAttemptStart(ref('q'), 'r');
    h.onAttemptResult('q', { ok: false, reason: 'http_5xx', status: 500 }, cb, 'r');
    assert.equal(h.lastFailureMs('q'), failedAt + 5);
    assert.equal(h.lastFailureMs('never'), 0);
  });

  it('a success (of a last resort or anything) closes the circuit at once', () => {
    const { h, cb, lines } = open(1);
    h.takeLastResort('p', cb, 'r');
    h.onAttemptStart(ref('p'), 'r');
    h.onAttemptResult('p', { ok: true, ttfbMs: 3 }, cb, 'r');
    assert.equal(h.circuit('p'), 'closed');
    assert.equal(h.isAvailable('p'), true);
    assert.equal(lines.find((l) => l['decision'] === 'returned')?.['reason'], 'last-resort attempt succeeded');
  });
});

describe('connection-level failures count against the whole provider', () => {
  const cb = config({ circuitBreaker: { consecutiveFailures: 2, cooldownSeconds: 10 } });
  const setup = () => {
    const c = clock();
    const { logger, lines } = capturingLogger();
    const h = new HealthTracker({ logger, now: c.now });
    const a = ref('p#a', 'p');
    const b = ref('p#b', 'p');
    const other = ref('q#a', 'q');
    for (const t of [a, b, other]) {
      h.onAttemptStart(t, 'r');
      h.onAttemptResult(t.id, { ok: true, ttfbMs: 1 }, cb, 'r');
      h.onAttemptEnd(t.id, { hadResponse: true });
    }
    return { h, c, lines, a, b };
  };
  /** An attempt to `id` that Envoy answered with its own 503, then the access log saying why. */
  const unreachable = (h: HealthTracker, t: TargetRef): void => {
    h.onAttemptStart(t, 'r');
    h.onAttemptResult(t.id, { ok: false, reason: 'http_5xx', status: 503 }, cb, 'r');
    h.onAttemptEnd(t.id, { hadResponse: true });
    h.onConnectionFailure(t.id, 'upstreamConnectionFailure', cb);
  };

  it('N in a row, on any of its models, take every model of the provider out; other providers stay', () => {
    const { h, c, lines, a, b } = setup();
    unreachable(h, a);
    assert.equal(h.isAvailable('p#b'), true);
    unreachable(h, b);
    assert.equal(h.isAvailable('p#a'), false);
    assert.equal(h.isAvailable('p#b'), false, 'b is out too, though it failed once');
    assert.equal(h.circuit('p#b'), 'closed', "b's own circuit is untouched");
    assert.equal(h.isAvailable('p#never-asked'), false, 'a model of the provider not asked yet is out too');
    assert.equal(h.msUntilAvailable(['p#never-asked']), 10_000);
    assert.equal(h.isAvailable('q#a'), true);
    assert.equal(h.msUntilAvailable(['p#a']), 10_000);
    const ejected = lines.find((l) => l['decision'] === 'host-ejected')!;
    assert.equal(ejected['host'], 'p');
    assert.equal(ejected['reason'], 'upstreamConnectionFailure');
    // After the cool-down it takes traffic; still unreachable: out again for twice as long.
    c.advance(10_000);
    assert.equal(h.isAvailable('p#b'), true);
    unreachable(h, b);
    assert.equal(h.msUntilAvailable(['p#a']), 20_000);
    // It answers (any status): back for every model.
    c.advance(20_000);
    h.onAttemptStart(a, 'r');
    h.onAttemptResult('p#a', { ok: false, reason: 'http_5xx', status: 500 }, cb, 'r');
    assert.equal(h.isAvailable('p#b'), true);
    assert.ok(lines.some((l) => l['decision'] === 'host-returned' && l['host'] === 'p'));
    unreachable(h, b);
    assert.equal(h.isAvailable('p#c'), true, 'the count started again: one failure does not take the provider out');
    assert.equal(h.isAvailable('q#a'), true);
  });

  it('an answer in between resets the count: failures must be in a row', () => {
    const { h, a, b } = setup();
    unreachable(h, a);
    h.onAttemptStart(b, 'r');
    h.onAttemptResult('p#b', { ok: true, ttfbMs: 1 }, cb, 'r');
    unreachable(h, a);
    assert.equal(h.isAvailable('p#b'), true);
  });
});

describe('hard-open and the probe budget setting', () => {
  it('hard-open never lets a last resort through, also while the half-open probe is in flight', () => {
    const c = clock();
    const h = new HealthTracker({ logger: capturingLogger().logger, now: c.now });
    const cb = config({ circuitBreaker: { consecutiveFailures: 1, cooldownSeconds: 5, probeBudgetPerSecond: 0 } });
    h.onAttemptStart(ref('p'), 'r');
    h.onAttemptResult('p', { ok: false, reason: 'http_5xx', status: 500 }, cb, 'r');
    c.advance(5000);
    h.onAttemptStart(ref('p'), 'probe'); // the one probe
    assert.equal(h.circuit('p'), 'half-open');
    assert.equal(h.isAvailable('p'), false);
    assert.equal(h.lastResortWaitMs('p', cb), 1000);
  });

  it('defaults to 5 per second; 0 is accepted, negatives and fractions are not', () => {
    assert.equal(config().probeBudgetPerSecond, 5);
    assert.equal(config({ circuitBreaker: { probeBudgetPerSecond: 0 } }).probeBudgetPerSecond, 0);
    const check = (v: unknown) => validate({ resilience: { circuitBreaker: { probeBudgetPerSecond: v } } }, gatewayConfigSpecSchema, 'spec');
    assert.deepEqual(check(0), []);
    assert.deepEqual(check(20), []);
    assert.ok(check(-1).length > 0);
    assert.ok(check(1.5).length > 0);
  });
});

describe('finalErrorClass', () => {
  it('429 is throttled; 529 and Bedrock ServiceUnavailable / ModelNotReady are overloaded; other failures neither', () => {
    assert.equal(finalErrorClass(429, undefined), 'throttled');
    assert.equal(finalErrorClass(429, 'ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/'), 'throttled');
    assert.equal(finalErrorClass(429, 'ModelNotReadyException:http://internal.amazon.com/coral/com.amazon.bedrock/'), 'overloaded');
    assert.equal(finalErrorClass(503, 'ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/'), 'overloaded');
    assert.equal(finalErrorClass(529, undefined), 'overloaded');
    assert.equal(finalErrorClass(503, undefined), undefined, "a bare 503 may be Envoy's own (unreachable): the summary");
    assert.equal(finalErrorClass(500, undefined), undefined);
    assert.equal(finalErrorClass(400, 'ValidationException'), undefined);
  });
});
