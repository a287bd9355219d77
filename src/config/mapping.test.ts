import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelMapping, resolveModel } from './mapping.js';

describe('model mapping', () => {
  const global = new ModelMapping({ fast: 'gpt-4o-mini', 'gpt-4*': 'gpt-4o', 'gpt-4-turbo*': 'gpt-4-turbo-2024', '*-mini': 'gpt-4o-mini' });

  it('prefers an exact entry over any wildcard', () => {
    assert.equal(global.lookup('fast'), 'gpt-4o-mini');
    const m = new ModelMapping({ 'gpt-4*': 'gpt-4o', 'gpt-4-0613': 'legacy' });
    assert.equal(m.lookup('gpt-4-0613'), 'legacy');
    assert.equal(m.lookup('gpt-4-0614'), 'gpt-4o');
  });
  it('picks the longest wildcard match, whatever the order of entries', () => {
    assert.equal(global.lookup('gpt-4-turbo-preview'), 'gpt-4-turbo-2024');
    assert.equal(global.lookup('gpt-4-0613'), 'gpt-4o');
    const reversed = new ModelMapping({ 'gpt-4-turbo*': 'b', 'gpt-4*': 'a' });
    assert.equal(reversed.lookup('gpt-4-turbo-x'), 'b');
    assert.equal(reversed.lookup('gpt-4x'), 'a');
  });
  it('breaks a tie between equally long patterns deterministically (by pattern text)', () => {
    const m = new ModelMapping({ 'gpt-4*': 'a', '*-mini': 'b' });
    // Both have 5 literal characters; "*-mini" sorts before "gpt-4*".
    assert.equal(m.lookup('gpt-4-mini'), 'b');
  });
  it('passes unmatched names unchanged', () => {
    assert.equal(resolveModel('claude-3', new ModelMapping(undefined), global), 'claude-3');
    assert.equal(new ModelMapping(undefined).isEmpty, true);
    assert.equal(global.isEmpty, false);
  });
  it('consults the per-key mapping before the global one', () => {
    const perKey = new ModelMapping({ 'gpt-4*': 'gpt-4o-mini' });
    assert.equal(resolveModel('gpt-4-0613', perKey, global), 'gpt-4o-mini');
    assert.equal(resolveModel('fast', perKey, global), 'gpt-4o-mini', 'falls through to the global exact entry');
    assert.equal(resolveModel('gpt-4-turbo-x', perKey, global), 'gpt-4o-mini', 'a per-key wildcard beats a longer global one');
  });
  it('maps once: the target of a mapping is not mapped again', () => {
    const m = new ModelMapping({ a: 'b', b: 'c' });
    assert.equal(resolveModel('a', m, new ModelMapping(undefined)), 'b');
  });
  it('lists only exact entries as aliases', () => {
    assert.deepEqual([...global.exactEntries().keys()], ['fast']);
  });
  it('returns the same answer from its cache, and the cache stays bounded', () => {
    assert.equal(global.lookup('gpt-4-x'), 'gpt-4o');
    assert.equal(global.lookup('gpt-4-x'), 'gpt-4o');
    assert.equal(global.lookup('nomatch'), undefined);
    assert.equal(global.lookup('nomatch'), undefined);
    const m = new ModelMapping({ 'x*': 'y' });
    for (let i = 0; i < 10_000; i++) m.lookup(`x${i}`);
    const cache = (m as unknown as { cache: Map<string, string> }).cache;
    assert.ok(cache.size <= 4096, `cache grew to ${cache.size}`);
    assert.equal(m.lookup('x9999'), 'y');
  });
});
