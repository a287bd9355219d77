/**
 * The credential cache shared by the AWS and Google sources: synchronous while valid, one background
 * refresh inside the window, never an expired value, and a pause after a refresh that failed or did
 * not extend the expiry (a metadata server handing back its cached token), so requests do not turn
 * into a refresh each.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Refreshing, REFRESH_BEFORE_MS, reportCredentialEvents, RETRY_MS, type Expiring } from './refreshing.js';

function source(answers: (() => Expiring<string> | Error)[]): { cache: Refreshing<string>; clock: { now: number }; calls: () => number } {
  const clock = { now: 1_000_000 };
  let calls = 0;
  const cache = new Refreshing<string>('test source', () => {
    const next = answers[Math.min(calls, answers.length - 1)] as () => Expiring<string> | Error;
    calls++;
    const v = next();
    return v instanceof Error ? Promise.reject(v) : Promise.resolve(v);
  }, () => clock.now);
  return { cache, clock, calls: () => calls };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Refreshing credential cache', () => {
  it('waits once, then serves synchronously; inside the window one background refresh; expired never served', async () => {
    let n = 0;
    const s = source([() => ({ value: `v${++n}`, expiresAt: s.clock.now + 3_600_000 })]);
    assert.equal(await s.cache.get(), 'v1');
    assert.equal(s.cache.get(), 'v1');
    s.clock.now += 3_600_000 - REFRESH_BEFORE_MS + 1;
    assert.equal(s.cache.get(), 'v1', 'valid: served at once while refreshing');
    assert.equal(s.cache.get(), 'v1');
    await tick();
    assert.equal(s.calls(), 2, 'one background refresh');
    assert.equal(s.cache.get(), 'v2');
    s.clock.now += 2 * 3_600_000;
    const again = s.cache.get();
    assert.ok(again instanceof Promise, 'expired: the request waits');
    assert.equal(await again, 'v3');
  });

  it('a failed background refresh is retried after a pause, not on every request', async () => {
    const s = source([() => ({ value: 'v1', expiresAt: s.clock.now + REFRESH_BEFORE_MS - 1000 }), () => new Error('endpoint down')]);
    assert.equal(await s.cache.get(), 'v1');
    assert.equal(s.cache.get(), 'v1');
    await tick();
    assert.equal(s.calls(), 2, 'the background refresh ran and failed');
    for (let i = 0; i < 5; i++) assert.equal(s.cache.get(), 'v1');
    await tick();
    assert.equal(s.calls(), 2, 'no refresh per request after a failure');
    s.clock.now += RETRY_MS;
    assert.equal(s.cache.get(), 'v1');
    await tick();
    assert.equal(s.calls(), 3, 'tried again after the pause');
  });

  it('a fetch that succeeds after failures ends the pause: credentials already inside the window are refreshed at the next request', async () => {
    let n = 0;
    const s = source([() => new Error('agent down'), () => ({ value: `v${++n}`, expiresAt: s.clock.now + REFRESH_BEFORE_MS - 1000 })]);
    await assert.rejects(async () => s.cache.get(), /agent down/);
    assert.equal(await s.cache.get(), 'v1', 'no credentials: the request waits, pause or not');
    assert.equal(s.cache.get(), 'v1');
    await tick();
    assert.equal(s.calls(), 3, 'the background refresh was not held back by the earlier failure');
    assert.equal(s.cache.get(), 'v2');
  });

  it('a refresh that does not extend the expiry pauses further refreshes; errors name the source', async () => {
    const expiresAt = 1_000_000 + 60_000;
    const s = source([() => ({ value: 'cached-by-server', expiresAt })]);
    await s.cache.get();
    s.cache.get();
    await tick();
    assert.equal(s.calls(), 2);
    for (let i = 0; i < 5; i++) s.cache.get();
    await tick();
    assert.equal(s.calls(), 2);
    const failing = source([() => new Error('refused')]);
    await assert.rejects(async () => failing.cache.get(), /^Error: test source: refused$/);
  });

  it('reports fetches and failures (at most one failure report per pause), never the value', async () => {
    const seen: string[] = [];
    reportCredentialEvents({ refreshed: (source, expiresAt) => seen.push(`ok ${source} ${String(expiresAt)}`), failed: (source, message) => seen.push(`failed ${source}: ${message}`) });
    try {
      const s = source([() => new Error('403 AccessDenied'), () => new Error('403 AccessDenied'), () => ({ value: 'secret-value', expiresAt: 5_000_000 })]);
      await assert.rejects(async () => s.cache.get());
      await assert.rejects(async () => s.cache.get());
      s.clock.now += RETRY_MS;
      assert.equal(await s.cache.get(), 'secret-value');
      assert.deepEqual(seen, ['failed test source: 403 AccessDenied', 'ok test source 5000000']);
    } finally {
      reportCredentialEvents(undefined);
    }
  });
});
