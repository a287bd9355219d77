/** The Redis limiter against a real redis-server: same decisions as the local one, months, degraded mode. */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { parseResources } from '../../src/config/parse.js';
import { buildSnapshot, hashKey } from '../../src/config/snapshot.js';
import { createLogger } from '../../src/observability/logger.js';
import { monthSpan } from '../../src/ratelimit/calendar.js';
import { LocalLimiter } from '../../src/ratelimit/local.js';
import { buildChecks, DAY_MS, DAY_SLOT_MS, MINUTE_MS, MINUTE_SLOT_MS } from '../../src/ratelimit/plan.js';
import { createRedisClient, RedisLimiter, whenReady, type RedisClient } from '../../src/ratelimit/redis.js';
import { ResilientLimiter } from '../../src/ratelimit/resilient.js';
import { LimiterUnavailableError, type AdmitResult, type LimitCheck, type Reservation } from '../../src/ratelimit/types.js';
import { UsageAccountant } from '../../src/usage/accountant.js';
import { RedisUsageSink } from '../../src/usage/redis-sink.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const silent = createLogger('test', { write: () => undefined } as never);

function check(key: string, unit: 'requests' | 'tokens', limit: number, window: 'minute' | 'day'): LimitCheck {
  return {
    key,
    name: unit === 'requests' ? (window === 'minute' ? 'requestsPerMinute' : 'requestsPerDay') : window === 'minute' ? 'tokensPerMinute' : 'tokensPerDay',
    unit,
    limit,
    windowMs: window === 'minute' ? MINUTE_MS : DAY_MS,
    slotMs: window === 'minute' ? MINUTE_SLOT_MS : DAY_SLOT_MS,
    resetAtMs: 0,
    scope: 'key',
    scopeId: key,
  };
}

/** A calendar budget (month counter): tokensPerMonth, or money (costPerMonth, micro-units). */
function budget(key: string, unit: 'tokens' | 'cost', limit: number, resetAtMs: number): LimitCheck {
  return { key, name: unit === 'tokens' ? 'tokensPerMonth' : 'costPerMonth', unit, limit, windowMs: 0, slotMs: 0, resetAtMs, scope: 'ancestor', scopeId: key };
}

function summary(r: AdmitResult): unknown {
  return r.allowed
    ? { allowed: true, states: r.states, completion: r.completion, cap: r.cap, tokens: r.reservation.tokens, cost: r.reservation.cost }
    : { allowed: false, denied: r.denied, retry: r.retryAfterMs, states: r.states, completion: r.completion };
}

describe('Redis limiter (real redis-server)', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());

  /** A connected client and a Redis limiter on it, keys under `prefix`. */
  /** A limiter on its own client; the client is closed when the test ends, passed or failed. */
  const connectLimiter = async (t: TestContext, prefix: string): Promise<{ client: RedisClient; limiter: RedisLimiter }> => {
    const client = createRedisClient({ url: redis.url, mode: 'standalone', commandTimeoutMs: 2000, prefix });
    t.after(() => client.disconnect());
    assert.equal(await whenReady(client, 5000), true);
    return { client, limiter: new RedisLimiter(client, prefix) };
  };

  it('makes exactly the decisions of the in-process limiter (same algorithm), admissions and corrections', async (ctx) => {
    const { limiter: remote } = await connectLimiter(ctx, 'conf:');
    const local = new LocalLimiter();
    ctx.after(() => local.close());
    const checks = [check('a|rpm', 'requests', 30, 'minute'), check('a|tpm', 'tokens', 2000, 'minute'), check('org|tpd', 'tokens', 5000, 'day')];
    let t = Date.now();
    let seed = 42;
    const open: [Reservation, Reservation][] = [];
    for (let i = 0; i < 400; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      t += seed % 5 === 0 ? 7_000 : seed % 900;
      if (seed % 4 === 0 && open.length > 0) {
        const [rr, lr] = open.shift() as [Reservation, Reservation];
        const delta = { tokens: (seed % 300) - 200, cost: 0 };
        await remote.adjust(rr, delta, t);
        local.adjustSync(lr, delta, t);
        continue;
      }
      const cost = { requests: 1, tokens: 20 + (seed % 250) };
      const r = await remote.admit(checks, cost, t);
      const l = local.admitSync(checks, cost, t);
      assert.deepEqual(summary(r), summary(l), `step ${i}`);
      if (r.allowed && l.allowed) open.push([r.reservation, l.reservation]);
    }
  });

  it('money and calendar token budgets with edge-of-budget shrinking: exactly the decisions of the in-process limiter', async (ctx) => {
    const { limiter: remote } = await connectLimiter(ctx, 'money:');
    const local = new LocalLimiter();
    ctx.after(() => local.close());
    let t = Date.now();
    const resetAt = t + 40 * 86_400_000;
    // Key: tokens per minute; account: 20k tokens and 3.000000 currency units per month.
    const checks = [check('m|tpm', 'tokens', 4000, 'minute'), budget('org|tpmo', 'tokens', 20_000, resetAt), budget('org|cpmo', 'cost', 3_000_000, resetAt)];
    let seed = 7;
    let shrunk = 0;
    let refused = 0;
    const open: [Reservation, Reservation][] = [];
    for (let i = 0; i < 500; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      t += seed % 3 === 0 ? 20_000 : seed % 700;
      if (seed % 3 === 0 && open.length > 0) {
        const [rr, lr] = open.shift() as [Reservation, Reservation];
        const delta = { tokens: -(seed % 40), cost: -(seed % 90) };
        await remote.adjust(rr, delta, t);
        local.adjustSync(lr, delta, t);
        continue;
      }
      const promptTokens = 10 + (seed % 120);
      const completionTokens = 40 + (seed % 300);
      const completionRate = [0, 0.6, 10, 2.5][seed % 4] as number;
      const promptCost = Math.ceil(promptTokens * 0.15);
      const shrink = { promptTokens, promptCost, completionTokens, minCompletion: 16, completionRate };
      const cost = { requests: 1, tokens: promptTokens + completionTokens, cost: promptCost + Math.ceil(completionTokens * completionRate), shrink };
      const r = await remote.admit(checks, cost, t);
      const l = local.admitSync(checks, cost, t);
      assert.deepEqual(summary(r), summary(l), `step ${i}`);
      if (r.allowed && l.allowed) {
        if (r.completion < completionTokens) shrunk++;
        // Never more than the budgets: what was charged fits.
        assert.ok((r.states[1]?.used ?? 0) <= 20_000 && (r.states[2]?.used ?? 0) <= 3_000_000, `step ${i} overshoots`);
        open.push([r.reservation, l.reservation]);
      } else refused++;
    }
    assert.ok(shrunk > 0, 'some admissions were shrunk at the edge of a budget');
    assert.ok(refused > 0, 'some were refused (budget spent)');
  });

  it('corrections of one event-loop turn go to Redis in one script call, with the same result as one by one', async (ctx) => {
    const { client, limiter: remote } = await connectLimiter(ctx, 'batch:');
    const local = new LocalLimiter();
    ctx.after(() => local.close());
    const checks = [check('b|rpm', 'requests', 100, 'minute'), check('b|tpm', 'tokens', 10_000, 'minute'), check('b|tpd', 'tokens', 50_000, 'day')];
    const t = Date.now();
    const pairs: [Reservation, Reservation][] = [];
    for (let i = 0; i < 6; i++) {
      const now = t + i * 1500; // different one-second slots of the minute window
      const r = await remote.admit(checks, { requests: 1, tokens: 500 }, now);
      const l = local.admitSync(checks, { requests: 1, tokens: 500 }, now);
      assert.ok(r.allowed && l.allowed);
      pairs.push([r.reservation, l.reservation]);
    }
    const calls = async (): Promise<number> => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await client.info('commandstats'))?.[1] ?? 0);
    const before = await calls();
    const end = t + 9000;
    await Promise.all(pairs.map(([r, l], i) => {
      const delta = { tokens: i % 2 === 0 ? -300 : 120, cost: 0 };
      local.adjustSync(l, delta, end);
      return remote.adjust(r, delta, end);
    }));
    assert.equal((await calls()) - before, 1, 'six corrections, one EVALSHA');
    const r = await remote.admit(checks, { requests: 1, tokens: 1 }, end);
    const l = local.admitSync(checks, { requests: 1, tokens: 1 }, end);
    assert.deepEqual(summary(r), summary(l));
  });

  it('refuses a monthly budget once crossed and resets at the month boundary of the key time zone (injected clock)', async (t) => {
    const docs = [
      { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiKey', metadata: { name: 'org' }, spec: { accountOnly: true, limits: { tokensPerMonth: 1000, monthTimeZone: 'Europe/Berlin' } } },
      { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiKey', metadata: { name: 'k' }, spec: { keyHash: hashKey('k'), parent: 'org' } },
    ];
    const { snapshot } = buildSnapshot(parseResources(docs.map((doc) => ({ source: 't', doc }))).resources, 1);
    const key = snapshot.keysByHash.get(hashKey('k'));
    assert.ok(key);
    const { limiter } = await connectLimiter(t, 'month:');
    // The injected clock starts from the real now: half an hour before the current Berlin month ends.
    const month = monthSpan(Date.now(), 'Europe/Berlin');
    const next = monthSpan(month.endMs, 'Europe/Berlin');
    const lastEvening = month.endMs - 30 * 60_000;
    const admit = (now: number, tokens: number) => limiter.admit(buildChecks(key, 'm', undefined, now), { requests: 1, tokens }, now);
    assert.equal((await admit(lastEvening, 600)).allowed, true);
    const second = await admit(lastEvening + 1000, 400);
    assert.equal(second.allowed, true);
    const over = await admit(lastEvening + 2000, 1);
    assert.equal(over.allowed, false);
    if (!over.allowed) {
      // Retry when the Berlin month ends.
      assert.equal(lastEvening + 2000 + over.retryAfterMs, month.endMs);
    }
    // Corrections after the crossing still land on the old month.
    if (second.allowed) await limiter.adjust(second.reservation, { tokens: -100, cost: 0 }, lastEvening + 3000);
    assert.equal((await admit(lastEvening + 4000, 100)).allowed, true);
    assert.equal((await admit(lastEvening + 5000, 1)).allowed, false);
    // The next Berlin month: a fresh budget.
    const fresh = await admit(month.endMs + 1000, 1000);
    assert.equal(fresh.allowed, true);
    assert.equal(await redis.client.get(`month:{tollgate}:rl:default/org|tokensPerMonth|${month.id}`), '1000');
    assert.equal(await redis.client.get(`month:{tollgate}:rl:default/org|tokensPerMonth|${next.id}`), '1000');
    // Both counters expire a day after their month ends, counted from the gateway's clock.
    const ttl = await redis.client.pttl(`month:{tollgate}:rl:default/org|tokensPerMonth|${month.id}`);
    assert.ok(ttl > 0 && ttl <= 30 * 60_000 + 86_400_000, `ttl ${ttl}`);
  });

  it('keeps month counters when the gateway clock is far from Redis clock (skew both ways)', async (t) => {
    const { limiter } = await connectLimiter(t, 'skew:');
    const budget = (now: number): LimitCheck[] => {
      const span = monthSpan(now, 'UTC');
      return [{ ...check('skew|tpm', 'tokens', 100, 'minute'), name: 'tokensPerMonth', windowMs: 0, slotMs: 0, resetAtMs: span.endMs, key: `skew|${span.id}` }];
    };
    for (const shift of [-400 * 86_400_000, 400 * 86_400_000]) {
      const now = Date.now() + shift;
      assert.equal((await limiter.admit(budget(now), { requests: 1, tokens: 100 }, now)).allowed, true);
      assert.equal((await limiter.admit(budget(now + 1000), { requests: 1, tokens: 1 }, now + 1000)).allowed, false, `shift ${shift}: budget kept`);
    }
  });

  it('degraded mode: fail-open uses local limits / replicas, fail-closed refuses, both recover when Redis returns; batches survive', async (t) => {
    const mk = (policy: 'open' | 'closed') => {
      const client = createRedisClient({ url: redis.url, mode: 'standalone', commandTimeoutMs: 300, prefix: `deg-${policy}:` });
      client.on('error', () => undefined);
      return { client, limiter: new ResilientLimiter({ client, prefix: `deg-${policy}:`, policy, replicas: 4, logger: silent, probeMs: 100 }) };
    };
    const open = mk('open');
    const closed = mk('closed');
    t.after(async () => {
      await open.limiter.close();
      await closed.limiter.close();
      open.client.disconnect();
      closed.client.disconnect();
    });
    // Usage months are labels the sink stores as given; the current one, like a live gateway's.
    const month = monthSpan(Date.now(), 'UTC').id;
    assert.equal(await whenReady(open.client, 5000), true);
    assert.equal(await whenReady(closed.client, 5000), true);
    const modeOf = (l: ResilientLimiter): string => l.mode;
    const waitNormal = async (): Promise<void> => {
      const until = Date.now() + 10_000;
      while ((modeOf(open.limiter) !== 'normal' || modeOf(closed.limiter) !== 'normal') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    };
    await waitNormal();
    const sink = new RedisUsageSink(open.client, 'deg-open:');
    const accountant = new UsageAccountant({ sink, logger: silent, maxRecords: 1_000_000 });
    const rec = (i: number) => ({ key: 'ns/k', lineage: '.k.', model: 'm', upstreamModel: 'm', provider: 'p', promptTokens: 10, completionTokens: i, costPicos: 1_500_000n * BigInt(i), latencyMs: 1, status: 200, month, atMs: Date.now(), reported: true });
    const rpm = [check('deg|rpm', 'requests', 40, 'minute')];
    assert.equal((await open.limiter.admit(rpm, { requests: 1, tokens: 0 }, Date.now())).allowed, true);
    assert.equal(open.limiter.mode, 'normal');
    accountant.record(rec(1));
    await accountant.flush();

    await redis.kill();
    accountant.record(rec(2));
    await accountant.flush(); // fails: kept with its id
    assert.equal(accountant.pendingRecords, 1);
    let admitted = 0;
    for (let i = 0; i < 20; i++) if ((await open.limiter.admit(rpm, { requests: 1, tokens: 0 }, Date.now())).allowed) admitted++;
    assert.equal(open.limiter.mode, 'degraded');
    assert.equal(admitted, 10, 'fail-open admits limit / replicas locally');
    await assert.rejects(closed.limiter.admit(rpm, { requests: 1, tokens: 0 }, Date.now()), LimiterUnavailableError);
    assert.equal(closed.limiter.mode, 'degraded');
    accountant.record(rec(3));

    await redis.restart();
    await waitNormal();
    assert.equal(modeOf(open.limiter), 'normal');
    assert.equal(modeOf(closed.limiter), 'normal');
    assert.equal((await closed.limiter.admit(rpm, { requests: 1, tokens: 0 }, Date.now())).allowed, true);
    await accountant.stop();
    assert.equal(accountant.pendingRecords, 0);
    const totals = await redis.client.hgetall(`deg-open:{tollgate}:usage:${month}:ns/k`);
    assert.equal(totals['requests'], '3');
    assert.equal(totals['completion_tokens'], '6');
    assert.equal(totals['prompt_tokens'], '30');
    assert.equal(totals['cost_picos'], '9000000', 'exact cost in picos (1.5 + 3 + 4.5 micro-units)');
    // A batch id applied twice counts once.
    const batch = { id: 'fixed-batch', records: 1, rows: [{ month, key: 'ns/k', lineage: '.k.', model: 'm', upstreamModel: 'm', provider: 'p', statusClass: '2xx', hour: 0, requests: 1, promptTokens: 1, completionTokens: 1, cachedReadTokens: 0, cachedWriteTokens: 0, reasoningTokens: 0, costPicos: 0n, latencyMs: 1, estimated: 0 }] };
    assert.equal(await sink.apply(batch), 'applied');
    assert.equal(await sink.apply(batch), 'duplicate');
    assert.equal((await sink.monthToDate('ns/k', month)).requests, 4);
  });
});
