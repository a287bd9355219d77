import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { usageStatusOf, writeUsagePass, type KeyObjectView, type KeyStatusView } from '../usage/status.js';
import { TokenBucket, type Clock } from './write-limit.js';

/** Virtual time: sleeping advances it at once, so a 200-second pass runs in milliseconds. */
function virtualClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

/** Largest number of events in any window of `windowMs` (times ascending). */
function maxInWindow(times: readonly number[], windowMs: number): number {
  let best = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while ((times[j] as number) - (times[i] as number) >= windowMs) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

describe('API server write limit', () => {
  it('lets a burst through, then at most qps per second', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(50, 100, clock);
    const times: number[] = [];
    for (let i = 0; i < 1000; i++) {
      await bucket.take();
      times.push(clock.t);
    }
    assert.equal(times.filter((t) => t === 0).length, 100, 'the burst goes at once');
    // 1000 writes: 100 of burst, then 900 at 50/s = 18 s.
    assert.ok(clock.t >= 17_900 && clock.t <= 18_100, `took ${clock.t} ms`);
    const after = times.filter((t) => t > 0);
    assert.ok(maxInWindow(after, 1000) <= 51, `at most 50 (+1 at the window edge) per second after the burst, saw ${maxInWindow(after, 1000)}`);
  });

  it('refuses nonsense settings', () => {
    assert.throws(() => new TokenBucket(0, 10), RangeError);
  });
});

describe('usage status writer at 10k keys', () => {
  const month = '2026-01';
  const view = (requests: number): KeyStatusView => ({
    lineage: '.k.',
    usage: usageStatusOf({ requests, promptTokens: requests, completionTokens: 0, costPicos: 0n }, month, new Date(Date.now())),
  });

  it('writes only keys whose usage changed, and never faster than the limit', async () => {
    const clock = virtualClock();
    const keys: KeyObjectView[] = Array.from({ length: 10_000 }, (_, i) => ({
      name: `default/k${i}`,
      // Every other key already shows its usage.
      status: i % 2 === 0 ? { lineage: '.k.', usage: view(i).usage } : { lineage: '.k.', usage: view(0).usage },
    }));
    const patched: { name: string; t: number }[] = [];
    const writes = await writeUsagePass({
      keys,
      read: async (name) => view(Number(name.slice('default/k'.length))),
      patch: async (name) => {
        patched.push({ name, t: clock.t });
      },
      limiter: new TokenBucket(50, 100, clock),
      onError: (name, err) => assert.fail(`${name}: ${String(err)}`),
    });
    assert.equal(writes, 5000, 'the odd keys, whose status is behind');
    assert.ok(patched.every((p) => Number(p.name.slice('default/k'.length)) % 2 === 1));
    const times = patched.map((p) => p.t);
    assert.ok(maxInWindow(times, 1000) <= 150, 'burst of 100 plus 50 per second at most in any second');
    assert.ok(maxInWindow(times.filter((t) => t >= 2000), 1000) <= 51, 'then 50 per second');
    // Worst-case staleness of this pass: (writes - burst) / qps seconds.
    assert.ok(Math.abs(clock.t - ((writes - 100) / 50) * 1000) <= 100, `pass took ${clock.t} ms of virtual time`);
  });

  it('stops a pass when usage cannot be read (the next pass retries)', async () => {
    const errors: string[] = [];
    const writes = await writeUsagePass({
      keys: [{ name: 'default/a' }, { name: 'default/b' }],
      read: async () => {
        throw new Error('redis down');
      },
      patch: async () => assert.fail('nothing to write'),
      limiter: new TokenBucket(50, 100, virtualClock()),
      onError: (name, _err, during) => errors.push(`${name}:${during}`),
    });
    assert.equal(writes, 0);
    assert.deepEqual(errors, ['default/a:read']);
  });
});
