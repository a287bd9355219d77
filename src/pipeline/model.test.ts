import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashKey } from '../config/snapshot.js';
import { apiKeyYaml, providerYaml, validSnapshot } from '../config/test-fixtures.js';
import { isGatewayError } from '../errors.js';
import { resolveForKey } from './model.js';
import { listModelsForKey } from './models-list.js';

const snapshot = validSnapshot(
  providerYaml('p', 'type: openai-compatible\nendpoint: http://p/v1\nmodels: [{ name: gpt-4o }, { name: gpt-4o-mini }, { name: llama-3 }, { name: embed-1 }]') +
    `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: g }
spec: { modelMappings: { fast: gpt-4o-mini, smart: gpt-4o, "gpt-3.5*": gpt-4o-mini, ghost: not-served } }
---
` +
    apiKeyYaml('limited', `keyHash: "${hashKey('a')}"\nmodels: ["gpt-4o-mini", "embed-*"]\nmodelMappings: { mine: llama-3, smart: gpt-4o-mini }`) +
    apiKeyYaml('all', `keyHash: "${hashKey('b')}"`),
);
const limited = snapshot.keysByHash.get(hashKey('a'))!;
const all = snapshot.keysByHash.get(hashKey('b'))!;

function resolve(model: string, key = limited): string {
  const r = resolveForKey(model, key, snapshot);
  return isGatewayError(r) ? r.code : r.model;
}

describe('model resolution for a key', () => {
  it('maps then checks the allow-list on the mapped name', () => {
    assert.equal(resolve('fast'), 'gpt-4o-mini');
    assert.equal(resolve('gpt-3.5-turbo'), 'gpt-4o-mini');
    assert.equal(resolve('embed-1'), 'embed-1');
    assert.equal(resolve('gpt-4o'), 'model_not_allowed');
    assert.equal(resolve('mine'), 'model_not_allowed', 'an alias never widens what a key may use');
  });
  it('lets the per-key mapping override the global one', () => {
    assert.equal(resolve('smart'), 'gpt-4o-mini');
    assert.equal(resolve('smart', all), 'gpt-4o');
  });
  it('answers model_not_found for names nobody serves', () => {
    assert.equal(resolve('nonexistent', all), 'model_not_found');
    assert.equal(resolve('ghost', all), 'model_not_found');
  });
  it('an unknown name is 404 before the allow-list: even for a key that may use only some models', () => {
    assert.equal(resolve('nonexistent'), 'model_not_found', 'not model_not_allowed');
    assert.equal(resolve('ghost'), 'model_not_found', 'mapped to a name nobody serves');
    assert.equal(resolve('llama-3'), 'model_not_allowed', 'served, but not for this key');
  });
});

describe('/v1/models for a key', () => {
  it('lists allowed served models and the aliases that lead to them', () => {
    assert.deepEqual(listModelsForKey(limited, snapshot), ['embed-1', 'fast', 'gpt-4o-mini', 'smart']);
  });
  it('lists everything served plus working aliases for an unrestricted key', () => {
    assert.deepEqual(listModelsForKey(all, snapshot), ['embed-1', 'fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3', 'smart']);
  });
});
