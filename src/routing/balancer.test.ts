import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffMs, latencyCost, pickTarget, type Weighted } from './balancer.js';
import type { TargetView } from './health.js';
import { seeded } from './test-support.js';

const idle: TargetView = { outstanding: 0, ewmaTtfbMs: undefined, ewmaTokensPerSecond: undefined };

function count<T extends Weighted>(n: number, pick: (turn: number) => T): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = pick(i).id;
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

describe('balancing strategies', () => {
  it('weighted: 3:1 weights split 1,000 choices within 5 points of 75/25', () => {
    const candidates = [{ id: 'a', weight: 3 }, { id: 'b', weight: 1 }];
    for (const seed of [1, 2, 3, 42, 1234]) {
      const random = seeded(seed);
      const counts = count(1000, (turn) => pickTarget({ candidates, strategy: 'weighted', view: () => idle, turn, random }));
      const shareA = (counts.get('a') ?? 0) / 1000;
      assert.ok(Math.abs(shareA - 0.75) <= 0.05, `seed ${seed}: share of a = ${shareA}`);
    }
  });

  it('weighted: three providers 5:3:2 within 5 points each over 1,000 choices', () => {
    const candidates = [{ id: 'a', weight: 5 }, { id: 'b', weight: 3 }, { id: 'c', weight: 2 }];
    const random = seeded(7);
    const counts = count(1000, (turn) => pickTarget({ candidates, strategy: 'weighted', view: () => idle, turn, random }));
    for (const [id, expected] of [['a', 0.5], ['b', 0.3], ['c', 0.2]] as const) {
      assert.ok(Math.abs((counts.get(id) ?? 0) / 1000 - expected) <= 0.05, `${id}: ${counts.get(id)}`);
    }
  });

  it('round-robin: takes turns exactly', () => {
    const candidates = [{ id: 'a', weight: 9 }, { id: 'b', weight: 1 }, { id: 'c', weight: 1 }];
    const picks = [0, 1, 2, 3, 4, 5].map((turn) => pickTarget({ candidates, strategy: 'round-robin', view: () => idle, turn, random: Math.random }).id);
    assert.deepEqual(picks, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('least-outstanding: the target with fewest attempts in flight per weight wins', () => {
    const candidates = [{ id: 'a', weight: 1 }, { id: 'b', weight: 1 }, { id: 'c', weight: 2 }];
    const load: Record<string, number> = { a: 3, b: 1, c: 3 };
    const view = (id: string): TargetView => ({ ...idle, outstanding: load[id] ?? 0 });
    // (1+1)/1 = 2 for b, (3+1)/2 = 2 for c: a tie between b and c, never a.
    const counts = count(200, (turn) => pickTarget({ candidates, strategy: 'least-outstanding', view, turn, random: seeded(3) }));
    assert.equal(counts.get('a'), undefined);
    load['b'] = 0;
    assert.equal(pickTarget({ candidates, strategy: 'least-outstanding', view, turn: 0, random: seeded(3) }).id, 'b');
  });

  it('latency: a 10 ms target gets far more traffic than a 200 ms one, but the slow one is still measured', () => {
    const candidates = [{ id: 'fast', weight: 1 }, { id: 'slow', weight: 1 }];
    const views: Record<string, TargetView> = { fast: { ...idle, ewmaTtfbMs: 10 }, slow: { ...idle, ewmaTtfbMs: 200 } };
    const random = seeded(11);
    const counts = count(1000, (turn) => pickTarget({ candidates, strategy: 'latency', view: (id) => views[id] ?? idle, turn, random }));
    const fast = counts.get('fast') ?? 0;
    const slow = counts.get('slow') ?? 0;
    // Shares are 1/10 : 1/200 = 20 : 1.
    assert.ok(fast > 900, `fast got ${fast}`);
    assert.ok(slow > 10, `slow got ${slow} (must keep being sampled)`);
  });

  it('latency: outstanding requests raise the cost, so a saturated fast target loses its lead', () => {
    assert.equal(latencyCost({ outstanding: 0, ewmaTtfbMs: 10, ewmaTokensPerSecond: undefined }), 10);
    assert.equal(latencyCost({ outstanding: 9, ewmaTtfbMs: 10, ewmaTokensPerSecond: undefined }), 100);
    // Throughput term: 256 tokens at 128 tokens/s = 2,000 ms added per request.
    assert.equal(latencyCost({ outstanding: 0, ewmaTtfbMs: 10, ewmaTokensPerSecond: 128 }), 2010);
    assert.equal(latencyCost(idle), undefined);
  });

  it('latency: an unmeasured target is treated like the best one, so it gets tried', () => {
    const candidates = [{ id: 'known', weight: 1 }, { id: 'new', weight: 1 }];
    const views: Record<string, TargetView> = { known: { ...idle, ewmaTtfbMs: 50 } };
    const counts = count(1000, (turn) => pickTarget({ candidates, strategy: 'latency', view: (id) => views[id] ?? idle, turn, random: seeded(5) }));
    assert.ok((counts.get('new') ?? 0) > 400, `new got ${counts.get('new')}`);
  });
});

describe('backoff', () => {
  it('is exponential with full jitter, capped', () => {
    assert.equal(backoffMs(1, 100, 2000, () => 0.999999), 99);
    assert.equal(backoffMs(2, 100, 2000, () => 0.5), 100);
    assert.equal(backoffMs(3, 100, 2000, () => 0.999999), 399);
    assert.equal(backoffMs(10, 100, 2000, () => 0.999999), 1999);
    assert.equal(backoffMs(3, 100, 2000, () => 0), 0);
  });
});
