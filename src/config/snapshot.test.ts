import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSnapshot, hashKey, parseEndpoint } from './snapshot.js';
import { apiKeyYaml, providerYaml, secretYaml, snapshotFromYaml } from './test-fixtures.js';
import type { ApiKey, ResourceSet } from './types.js';

describe('snapshot build', () => {
  it('indexes keys by hash, models by provider tiers, and lists served models sorted', () => {
    const { snapshot, issues, problems } = snapshotFromYaml(
      providerYaml('b', 'type: openai-compatible\nendpoint: http://b/v1\nmodels: [{ name: zeta }, { name: alpha, upstreamModel: up-alpha }]') +
        apiKeyYaml('k', 'secretRef: { name: s, key: key }\nmodels: ["alpha"]') +
        secretYaml('s', { key: '  sk-spaces-trimmed \n' }),
    );
    assert.deepEqual([issues, problems], [[], []]);
    assert.deepEqual(snapshot.servedModels, ['alpha', 'zeta']);
    assert.equal(snapshot.routesByModel.get('alpha')?.[0]?.routes[0]?.upstreamModel, 'up-alpha');
    assert.equal(snapshot.routesByModel.get('zeta')?.[0]?.routes[0]?.upstreamModel, 'zeta', 'defaults to the name');
    assert.equal(snapshot.keysByHash.get(hashKey('sk-spaces-trimmed'))?.name, 'default/k');
  });

  it('leaves out a provider whose credential Secret is missing, with field and reason', () => {
    const { snapshot, problems } = snapshotFromYaml(
      providerYaml('p', 'type: openai\nendpoint: https://x/v1\ncredentialSecretRef: { name: nope, key: k }\nmodels: [{ name: m }]'),
    );
    assert.deepEqual(problems, [
      {
        kind: 'ModelProvider',
        name: 'default/p',
        reason: 'SecretNotFound',
        field: 'spec.credentialSecretRef',
        message: 'Secret nope (key k) not found or empty',
      },
    ]);
    assert.equal(snapshot.routesByModel.size, 0);
  });

  it('reads Secrets only from the resource namespace', () => {
    const { problems } = snapshotFromYaml(
      providerYaml('p', 'type: openai\nendpoint: https://x/v1\ncredentialSecretRef: { name: s, key: k }\nmodels: [{ name: m }]', 'team') +
        secretYaml('s', { k: 'v' }),
    );
    assert.equal(problems[0]?.reason, 'SecretNotFound');
  });

  it('leaves out an ApiKey whose Secret key is missing', () => {
    const { snapshot, problems } = snapshotFromYaml(apiKeyYaml('k', 'secretRef: { name: s, key: other }') + secretYaml('s', { key: 'x' }));
    assert.deepEqual(problems.map((p) => [p.name, p.reason, p.field]), [['default/k', 'SecretNotFound', 'spec.secretRef']]);
    assert.equal(snapshot.keysByHash.size, 0);
  });

  it('gives a duplicated key to the oldest ApiKey, whatever the input order', () => {
    const key = (name: string, created: string): ApiKey => ({
      apiVersion: 'tollgate.dev/v1alpha1',
      kind: 'ApiKey',
      metadata: { name, namespace: 'default', creationTimestamp: created },
      spec: { keyHash: hashKey('sk-same') },
    });
    const older = key('zz-older', '2026-01-01T00:00:00Z');
    const newer = key('aa-newer', '2026-06-01T00:00:00Z');
    for (const apiKeys of [[older, newer], [newer, older]]) {
      const resources: ResourceSet = { providers: [], apiKeys, secrets: [] };
      const { snapshot, problems } = buildSnapshot(resources, 1);
      assert.equal(snapshot.keysByHash.get(hashKey('sk-same'))?.name, 'default/zz-older');
      assert.deepEqual(problems.map((p) => [p.name, p.reason, p.field]), [['default/aa-newer', 'DuplicateKey', 'spec.keyHash']]);
    }
  });

  it('records expiry, disabled flag, allow-list and per-key mapping', () => {
    const { snapshot } = snapshotFromYaml(
      apiKeyYaml('k', `keyHash: "${hashKey('x')}"\ndisabled: true\nexpiresAt: "2026-12-31T23:59:59Z"\nmodels: ["gpt-*"]\nmodelMappings: { fast: gpt-4o-mini }`),
    );
    const entry = snapshot.keysByHash.get(hashKey('x'))!;
    assert.equal(entry.disabled, true);
    assert.equal(entry.expiresAtMs, Date.parse('2026-12-31T23:59:59Z'));
    assert.equal(entry.allowedModels.matches('gpt-4o'), true);
    assert.equal(entry.allowedModels.matches('llama'), false);
    assert.equal(entry.mapping.lookup('fast'), 'gpt-4o-mini');
  });

  it('parses endpoints into scheme, authority and base path', () => {
    assert.deepEqual(parseEndpoint('https://api.openai.com/v1/'), { scheme: 'https', authority: 'api.openai.com', basePath: '/v1' });
    assert.deepEqual(parseEndpoint('http://127.0.0.1:8000'), { scheme: 'http', authority: '127.0.0.1:8000', basePath: '' });
  });
});
