import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { compactObject } from './compact.js';

const apiKey = (name: string): KubernetesObject & Record<string, unknown> => ({
  apiVersion: 'tollgate.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: {
    name,
    namespace: 'team',
    uid: `uid-${name}`,
    resourceVersion: '42',
    generation: 3,
    creationTimestamp: new Date(Date.now() - 60_000),
    labels: { tier: 'gold' },
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"spec":{"keyHash":"..."}}' },
    managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
  },
  spec: { keyHash: `sha256:${name}`, models: ['gpt-4o*'], limits: { requestsPerMinute: 600 } },
  status: { observedGeneration: 3, conditions: [{ type: 'Ready', status: 'True', reason: 'Accepted', message: 'served by the gateway', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
});

describe('informer cache transform', () => {
  it('drops managedFields and annotations, keeps what Tollgate reads', () => {
    const original = apiKey('a');
    const c = compactObject(original) as KubernetesObject & Record<string, unknown>;
    const meta = c.metadata as Record<string, unknown>;
    assert.equal(meta['managedFields'], undefined);
    assert.equal(meta['annotations'], undefined);
    assert.deepEqual(
      { ...meta, creationTimestamp: undefined },
      { name: 'a', namespace: 'team', creationTimestamp: undefined, labels: { tier: 'gold' } },
    );
    assert.match(String(meta['creationTimestamp']), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, 'a Date from typed clients becomes the API string');
    assert.deepEqual(c['spec'], original['spec']);
    assert.equal(c['status'], undefined, 'status is kept by the informer cache entry, not here');
    assert.equal(c.kind, 'ApiKey');
  });

  it('shares equal ApiKey spec parts and timestamps between objects', () => {
    const a = compactObject(apiKey('a')) as Record<string, { models?: unknown; conditions?: { message: string }[] }>;
    const b = compactObject(apiKey('b')) as Record<string, { models?: unknown; conditions?: { message: string }[] }>;
    assert.equal(a['spec']?.models, b['spec']?.models, 'one models array for both');
    assert.equal(compactObject(a as unknown as KubernetesObject)['spec' as keyof KubernetesObject], a['spec'], 'compacting twice keeps the spec object');
  });

  it('keeps a Secret’s data and type', () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 's', namespace: 'team', resourceVersion: '7', managedFields: [] }, data: { token: 'dA==' } };
    assert.deepEqual(compactObject(secret), { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 's', namespace: 'team' }, data: { token: 'dA==' } });
  });
});
