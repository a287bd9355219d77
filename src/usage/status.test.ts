import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { usageStatusOf, usageUpToDate } from './status.js';

describe('usage status', () => {
  it('totals prompt and completion and ignores updatedAt when comparing', () => {
    const s = usageStatusOf({ requests: 3, promptTokens: 10, completionTokens: 5, costPicos: 12_345_678_900_000n }, '2026-11', new Date('2026-11-25T10:00:00.123Z'));
    assert.deepEqual(s, {
      month: '2026-11', requests: 3, promptTokens: 10, completionTokens: 5, totalTokens: 15, cost: '12.3456789', currency: 'USD', updatedAt: '2026-11-25T10:00:00Z',
    });
    assert.equal(usageUpToDate({ ...s, cost: '12.34' }, s), false);
    assert.equal(usageUpToDate({ ...s, updatedAt: 'earlier' }, s), true);
    assert.equal(usageUpToDate({ ...s, requests: 2 }, s), false);
    assert.equal(usageUpToDate({ ...s, month: '2026-10' }, s), false);
    assert.equal(usageUpToDate(undefined, s), false);
  });
});
