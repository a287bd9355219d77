import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bySpecificity, compileWildcard, isWildcard, ModelMatcher } from './wildcard.js';

describe('wildcard patterns', () => {
  it('treats only * as a wildcard', () => {
    assert.equal(isWildcard('gpt-4*'), true);
    assert.equal(isWildcard('gpt-4.1'), false);
    assert.equal(compileWildcard('gpt-4.1').test('gpt-4x1'), false, '. is literal');
    assert.equal(compileWildcard('gpt-4.1*').test('gpt-4x1-mini'), false, '. is literal in patterns too');
    assert.equal(compileWildcard('a+b*').test('a+b-1'), true);
    assert.equal(compileWildcard('a+b*').test('aab-1'), false, '+ is literal');
  });

  it('matches prefix, suffix, infix and multi-star patterns', () => {
    assert.equal(compileWildcard('gpt-4*').test('gpt-4'), true, '* matches the empty string');
    assert.equal(compileWildcard('gpt-4*').test('gpt-4o-mini'), true);
    assert.equal(compileWildcard('gpt-4*').test('xgpt-4'), false);
    assert.equal(compileWildcard('*-mini').test('gpt-4o-mini'), true);
    assert.equal(compileWildcard('*-mini').test('gpt-4o-mini-2'), false);
    assert.equal(compileWildcard('gpt-*-mini').test('gpt-4o-mini'), true);
    assert.equal(compileWildcard('gpt-*-mini').test('gpt--mini'), true);
    assert.equal(compileWildcard('gpt-*-mini').test('gpt-mini'), false, 'prefix and suffix may not overlap');
    assert.equal(compileWildcard('a*b*c').test('a-b-c'), true);
    assert.equal(compileWildcard('a*b*c').test('acb'), false);
    assert.equal(compileWildcard('meta-llama/*').test('meta-llama/Llama-3.1-8B'), true);
    assert.equal(compileWildcard('*').test('anything'), true);
  });

  it('orders patterns by literal length, so the longest match comes first', () => {
    const sorted = ['*', 'gpt-4*', 'gpt-4-turbo*', '*-mini', 'gpt-*'].map(compileWildcard).sort(bySpecificity);
    assert.deepEqual(
      sorted.map((p) => p.source),
      ['gpt-4-turbo*', '*-mini', 'gpt-4*', 'gpt-*', '*'], // equal length: by pattern text
    );
  });
});

describe('model allow-list (ModelMatcher)', () => {
  it('admits everything when no list is given or the list has *', () => {
    assert.equal(new ModelMatcher(undefined).matches('whatever'), true);
    assert.equal(new ModelMatcher(['gpt-4o', '*']).matches('whatever'), true);
  });
  it('admits exact names and wildcard matches only', () => {
    const m = new ModelMatcher(['gpt-4o*', 'text-embedding-3-small']);
    assert.equal(m.matches('gpt-4o'), true);
    assert.equal(m.matches('gpt-4o-mini'), true);
    assert.equal(m.matches('text-embedding-3-small'), true);
    assert.equal(m.matches('text-embedding-3-large'), false);
    assert.equal(m.matches('gpt-4'), false);
  });
  it('admits nothing for an empty list', () => {
    assert.equal(new ModelMatcher([]).matches('gpt-4o'), false);
  });
});
