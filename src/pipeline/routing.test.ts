/**
 * Provider choice through the router (src/routing/): tiers by priority, weights inside a tier.
 * (Failover, circuit breaking and the other strategies are tested in src/routing/.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { providerYaml, validSnapshot } from '../config/test-fixtures.js';
import type { RouteTier } from '../config/snapshot.js';
import { isGatewayError } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { HealthTracker } from '../routing/health.js';
import type { RequestPlan } from '../routing/plan.js';
import { ResilientRouter, type AttemptChoice } from '../routing/router.js';

const snapshot = validSnapshot(
  providerYaml('primary-a', 'type: openai-compatible\nendpoint: http://a.test/v1\npriority: 0\nweight: 3\nmodels: [{ name: m }]') +
    providerYaml('primary-b', 'type: openai-compatible\nendpoint: http://b.test/v1\npriority: 0\nweight: 1\nmodels: [{ name: m }]') +
    providerYaml('backup', 'type: openai-compatible\nendpoint: http://c.test/v1\npriority: 5\nmodels: [{ name: m }, { name: solo }]'),
);
const logger = createLogger('test');
logger.level = 'silent';

function pick(tiers: readonly RouteTier[], r: number): string {
  const router = new ResilientRouter({ health: new HealthTracker({ logger }), logger, random: () => r });
  const body = { raw: Buffer.from('{}'), json: {}, model: 'm', stream: false };
  const plan = router.open({ requestId: 'r', model: 'm', operation: 'chat/completions', body, tiers, config: snapshot.resilience });
  if (isGatewayError(plan)) return plan.code;
  const choice = router.next(plan as RequestPlan) as AttemptChoice;
  return choice.attempt.candidate.route.provider.name;
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
  it('splits traffic inside a tier by weight (3:1) with the default (weighted) strategy', () => {
    assert.equal(snapshot.resilience.strategy, 'weighted');
    assert.equal(pick(tiers, 0), 'default/primary-a');
    assert.equal(pick(tiers, 0.74), 'default/primary-a');
    assert.equal(pick(tiers, 0.75), 'default/primary-b');
    assert.equal(pick(tiers, 0.999999), 'default/primary-b');
    let a = 0;
    const N = 4000;
    for (let i = 0; i < N; i++) if (pick(tiers, (i + 0.5) / N) === 'default/primary-a') a++;
    assert.equal(a, 3000);
  });
  it('serves a single provider', () => {
    assert.equal(pick(snapshot.routesByModel.get('solo')!, 0.3), 'default/backup');
  });
  it('answers provider_unavailable (503) when no tier has a route', () => {
    assert.equal(pick([], 0), 'provider_unavailable');
  });
});
