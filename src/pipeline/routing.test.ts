import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { providerYaml, validSnapshot } from '../config/test-fixtures.js';
import { isGatewayError } from '../errors.js';
import { chooseRoute } from './routing.js';
import type { ModelRoute, RouteTier } from '../config/snapshot.js';

const snapshot = validSnapshot(
  providerYaml('primary-a', 'type: openai-compatible\nendpoint: http://a.test/v1\npriority: 0\nweight: 3\nmodels: [{ name: m }]') +
    providerYaml('primary-b', 'type: openai-compatible\nendpoint: http://b.test/v1\npriority: 0\nweight: 1\nmodels: [{ name: m }]') +
    providerYaml('backup', 'type: openai-compatible\nendpoint: http://c.test/v1\npriority: 5\nmodels: [{ name: m }, { name: solo }]'),
);

function pick(tiers: readonly RouteTier[], r: number): string {
  const route = chooseRoute(tiers, () => r);
  return isGatewayError(route) ? route.code : (route as ModelRoute).provider.name;
}

describe('provider choice', () => {
  const tiers = snapshot.routesByModel.get('m')!;

  it('groups providers into tiers by ascending priority', () => {
    assert.deepEqual(tiers.map((t) => t.priority), [0, 5]);
    assert.equal(tiers[0]!.totalWeight, 4);
  });
  it('never picks a lower-priority provider while a better tier exists', () => {
    for (const r of [0, 0.25, 0.5, 0.74, 0.75, 0.999999]) assert.notEqual(pick(tiers, r), 'default/backup');
  });
  it('splits traffic inside a tier by weight (3:1)', () => {
    assert.equal(pick(tiers, 0), 'default/primary-a');
    assert.equal(pick(tiers, 0.74), 'default/primary-a');
    assert.equal(pick(tiers, 0.75), 'default/primary-b');
    assert.equal(pick(tiers, 0.999999), 'default/primary-b');
    let a = 0;
    const N = 4000;
    for (let i = 0; i < N; i++) if (pick(tiers, (i + 0.5) / N) === 'default/primary-a') a++;
    assert.equal(a, 3000);
  });
  it('serves a single provider without drawing a random number', () => {
    const route = chooseRoute(snapshot.routesByModel.get('solo')!, () => {
      throw new Error('random must not be called');
    });
    assert.equal((route as ModelRoute).provider.name, 'default/backup');
  });
  it('answers provider_unavailable (503) when no tier has a route', () => {
    assert.equal(pick([], 0), 'provider_unavailable');
  });
});
