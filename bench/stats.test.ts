import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentile, round, summarize } from './stats.js';

describe('bench statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    assert.equal(percentile(sorted, 50), 50);
    assert.equal(percentile(sorted, 99), 99);
    assert.equal(percentile(sorted, 100), 100);
    assert.equal(percentile(sorted, 0), 1);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.throws(() => percentile(sorted, 101), RangeError);
  });

  it('a single slow outlier shows at p99 only when it is more than 1% of samples', () => {
    const fast = Array.from({ length: 199 }, () => 1);
    assert.equal(summarize([...fast, 500]).p99, 1);
    assert.equal(summarize([...fast.slice(0, 98), 500, 500]).p99, 500);
  });

  it('summarises unsorted samples without changing them', () => {
    const samples = [5, 1, 4, 2, 3];
    const s = summarize(samples);
    assert.deepEqual(samples, [5, 1, 4, 2, 3]);
    assert.deepEqual(s, { count: 5, min: 1, mean: 3, p50: 3, p90: 5, p99: 5, max: 5 });
    assert.equal(summarize([]).count, 0);
    assert.equal(round(1.23456, 2), 1.23);
    assert.ok(Number.isNaN(round(Number.NaN)));
  });
});
