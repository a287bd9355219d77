import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyRules, applyRulesToBytes } from './parameters.js';

describe('per-model parameter rules', () => {
  it('drops, renames (keeping an explicit new name) and adds defaults only when absent', () => {
    const rules = { drop: ['temperature', 'absent'], rename: { max_tokens: 'max_completion_tokens', top_p: 'topP' }, defaults: { reasoning_effort: 'low', user: 'x' } };
    assert.deepEqual(applyRules({ model: 'o3', temperature: 0.2, max_tokens: 10, user: 'me' }, rules), { model: 'o3', user: 'me', max_completion_tokens: 10, reasoning_effort: 'low' });
    assert.deepEqual(applyRules({ max_tokens: 10, max_completion_tokens: 5 }, rules), { max_completion_tokens: 5, reasoning_effort: 'low', user: 'x' });
  });
  it('leaves bytes that are not a JSON object alone', () => {
    const bytes = Buffer.from('[1,2]');
    assert.equal(applyRulesToBytes(bytes, { drop: ['a'] }), bytes);
    assert.equal(applyRulesToBytes(Buffer.from('{"a":1,"b":2}'), { drop: ['a'] }).toString(), '{"b":2}');
  });
});
