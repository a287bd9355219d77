import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelMapping, resolveModel } from './mapping.js';

describe('model mapping', () => {
  const global = new ModelMapping({ fast: 'gpt-4o-mini', 'gpt-4*': 'gpt-4o', 'gpt-4-turbo*': 'gpt-4-turbo-2024', '*-mini': 'gpt-4o-mini' });

  it('prefers an exact entry over any wildcard', () => {
    assert.equal(global.lookup('fast'), 'gpt-4o-mini');
  });
  it('picks the longest wildcard match', () => {
    assert.equal(global.lookup('gpt-4-turbo-preview'), 'gpt-4-turbo-2024');
    assert.equal(global.lookup('gpt-4-0613'), 'gpt-4o');
  });
  it('passes unmatched names unchanged', () => {
    assert.equal(resolveModel('claude-3', new ModelMapping(undefined), global), 'claude-3');
  });
  it('consults the per-key mapping before the global one', () => {
    const perKey = new ModelMapping({ 'gpt-4*': 'gpt-4o-mini' });
    assert.equal(resolveModel('gpt-4-0613', perKey, global), 'gpt-4o-mini');
    assert.equal(resolveModel('fast', perKey, global), 'gpt-4o-mini');
  });
  it('returns the same answer from its cache', () => {
    assert.equal(global.lookup('gpt-4-x'), 'gpt-4o');
    assert.equal(global.lookup('gpt-4-x'), 'gpt-4o');
    assert.equal(global.lookup('nomatch'), undefined);
    assert.equal(global.lookup('nomatch'), undefined);
  });
});
