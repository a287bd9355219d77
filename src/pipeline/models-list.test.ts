import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IncrementalSnapshotBuilder } from '../config/incremental.js';
import { ModelMapping } from '../config/mapping.js';
import { buildModelCatalog, buildModelLists, catalogFor } from '../config/model-lists.js';
import { hashKey, type KeyEntry, type Snapshot } from '../config/snapshot.js';
import { apiKeyYaml, providerYaml, validSnapshot } from '../config/test-fixtures.js';
import { API_VERSION, type ModelProvider } from '../config/types.js';
import { isGatewayError } from '../errors.js';
import type { Tenant } from '../tenancy/hosts.js';
import { resolveForKey } from './model.js';
import { listModelsForKey } from './models-list.js';

const snapshot = validSnapshot(
  providerYaml('p', 'type: openai-compatible\nendpoint: http://p/v1\nmodels: [{ name: gpt-4o }, { name: gpt-4o-mini }, { name: llama-3 }]') +
    `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: g }
spec:
  modelMappings: { fast: gpt-4o-mini, "gpt-3.5*": gpt-4o-mini }
  tenants:
    - { name: acme, hosts: [acme.test], modelMappings: { fast: gpt-4o, a-only: llama-3, llama-3: retired, gpt-4o-mini: gpt-4o } }
    - { name: plain, hosts: [plain.test] }
    - { name: empty, hosts: [empty.test], modelMappings: {} }
---
` +
    apiKeyYaml('any', `keyHash: "${hashKey('any')}"`) +
    apiKeyYaml('only-4o', `keyHash: "${hashKey('only-4o')}"\nmodels: [gpt-4o]`) +
    apiKeyYaml('only-mini', `keyHash: "${hashKey('only-mini')}"\nmodels: [gpt-4o-mini]`) +
    apiKeyYaml('own-map', `keyHash: "${hashKey('own-map')}"\nmodelMappings: { llama-3: gpt-4o-mini, mine: llama-3, "gpt-4o*": llama-3 }`) +
    apiKeyYaml('wild', `keyHash: "${hashKey('wild')}"\nmodelMappings: { "*": gpt-4o-mini }\nmodels: [gpt-4o-mini]`),
);
const key = (secret: string): KeyEntry => snapshot.keysByHash.get(hashKey(secret))!;
const tenant = (host: string): Tenant => snapshot.tenants.tenantFor(host)!;
const acme = tenant('acme.test');
const plain = tenant('plain.test');
const empty = tenant('empty.test');

/** What chat would do with this name on this tenant's host. */
function chatAccepts(name: string, k: KeyEntry, s: Snapshot, t: Tenant | undefined): boolean {
  return !isGatewayError(resolveForKey(name, k, s, t?.mapping));
}

describe('/v1/models per tenant', () => {
  it("lists the tenant's aliases and hides what its mapping sends to an unserved name", () => {
    assert.deepEqual(listModelsForKey(key('any'), snapshot, acme), ['a-only', 'fast', 'gpt-4o', 'gpt-4o-mini']);
    // Outside every tenant: the global mapping, the tenant's aliases are unknown.
    assert.deepEqual(listModelsForKey(key('any'), snapshot), ['fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3']);
  });

  it('a tenant without modelMappings lists the global names; an empty mapping lists only served names', () => {
    assert.deepEqual(listModelsForKey(key('any'), snapshot, plain), listModelsForKey(key('any'), snapshot));
    assert.equal(catalogFor(snapshot.modelLists, plain), snapshot.modelLists.global, 'shared, not rebuilt');
    assert.deepEqual(listModelsForKey(key('any'), snapshot, empty), ['gpt-4o', 'gpt-4o-mini', 'llama-3']);
  });

  it('filters by the allow-list on the name after mapping (a served name remapped on the host follows its target)', () => {
    // On acme, gpt-4o-mini is mapped to gpt-4o: a key allowed only gpt-4o may send it there, not elsewhere.
    assert.deepEqual(listModelsForKey(key('only-4o'), snapshot, acme), ['fast', 'gpt-4o', 'gpt-4o-mini']);
    assert.deepEqual(listModelsForKey(key('only-4o'), snapshot), ['gpt-4o']);
    assert.deepEqual(listModelsForKey(key('only-mini'), snapshot, acme), []);
    assert.deepEqual(listModelsForKey(key('only-mini'), snapshot), ['fast', 'gpt-4o-mini']);
  });

  it("applies a key's own mapping first, on top of the tenant's", () => {
    // own-map: llama-3 -> gpt-4o-mini, mine -> llama-3, gpt-4o* -> llama-3 (so gpt-4o and gpt-4o-mini go to llama-3).
    assert.deepEqual(listModelsForKey(key('own-map'), snapshot, acme), ['a-only', 'fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3', 'mine']);
    assert.deepEqual(listModelsForKey(key('own-map'), snapshot), ['fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3', 'mine']);
    // A catch-all key mapping: every candidate name goes to gpt-4o-mini, whatever the tenant maps.
    assert.deepEqual(listModelsForKey(key('wild'), snapshot, acme), ['a-only', 'fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3']);
  });

  it('agrees exactly with chat: every listed name is accepted there, every other candidate is refused', () => {
    const probes = ['a-only', 'fast', 'gpt-4o', 'gpt-4o-mini', 'llama-3', 'mine', 'retired', 'nope', 'gpt-3.5-turbo', 'smart'];
    for (const k of ['any', 'only-4o', 'only-mini', 'own-map', 'wild'].map(key)) {
      for (const t of [undefined, acme, plain, empty]) {
        const listed = listModelsForKey(k, snapshot, t);
        const where = `${k.name} on ${t?.name ?? 'no tenant'}`;
        assert.deepEqual(listed, [...listed].sort(), `${where}: sorted`);
        for (const name of listed) assert.ok(chatAccepts(name, k, snapshot, t), `${where}: listed ${name} is not accepted by chat`);
        for (const name of probes) {
          // Names reached only through a wildcard pattern are routable but not enumerable.
          const viaWildcard = name === 'gpt-3.5-turbo' || (k.name === 'default/wild' && !listed.includes(name));
          if (!listed.includes(name) && !viaWildcard) assert.ok(!chatAccepts(name, k, snapshot, t), `${where}: ${name} is accepted by chat but not listed`);
        }
      }
    }
  });
});

describe('model list catalogs', () => {
  it('keep the candidates a key mapping may redirect even when they do not resolve on the host', () => {
    const served = new Map([['m1', 1]]);
    const c = buildModelCatalog(new ModelMapping({ ghost: 'nowhere', alias: 'm1', 'x*': 'm1' }), served);
    assert.deepEqual(c.candidates, ['alias', 'ghost', 'm1']);
    assert.deepEqual(c.routable, [
      { name: 'alias', target: 'm1' },
      { name: 'm1', target: 'm1' },
    ]);
  });

  it('refuse a tenant that is not part of the snapshot, rather than listing the global names', () => {
    const lists = buildModelLists(new Map([['m1', []]]), new ModelMapping(undefined), [], () => 0);
    assert.throws(() => catalogFor(lists, { mapping: new ModelMapping({ a: 'm1' }) }));
    assert.equal(catalogFor(lists, { mapping: undefined }), lists.global);
  });

  it('follow provider changes in the incremental builder (tenant lists included)', async () => {
    const builder = new IncrementalSnapshotBuilder();
    const provider = (models: string[]): ModelProvider => ({
      apiVersion: API_VERSION,
      kind: 'ModelProvider',
      metadata: { name: 'p', namespace: 'default' },
      spec: { type: 'openai', endpoint: 'http://p.example/v1', models: models.map((name) => ({ name })) },
    });
    builder.apply({ kind: 'GatewayConfig', name: 'gateway', value: { tenants: [{ name: 't', hosts: ['t.test'], modelMappings: { alias: 'm2' } }] } });
    builder.apply({ kind: 'ModelProvider', name: 'default/p', value: provider(['m1']) });
    builder.apply({ kind: 'ApiKey', name: 'default/k', value: { apiVersion: API_VERSION, kind: 'ApiKey', metadata: { name: 'k', namespace: 'default' }, spec: { keyHash: hashKey('k') } } });
    const first = (await builder.build(1)).snapshot;
    const k = first.keysByHash.get(hashKey('k'))!;
    assert.deepEqual(listModelsForKey(k, first, first.tenants.tenantFor('t.test')), ['m1']);
    builder.apply({ kind: 'ModelProvider', name: 'default/p', value: provider(['m1', 'm2']) });
    const second = (await builder.build(2)).snapshot;
    assert.deepEqual(listModelsForKey(k, second, second.tenants.tenantFor('t.test')), ['alias', 'm1', 'm2']);
    assert.deepEqual(listModelsForKey(k, second), ['m1', 'm2']);
    assert.deepEqual(listModelsForKey(k, first, first.tenants.tenantFor('t.test')), ['m1'], 'the old snapshot is untouched');
  });
});
