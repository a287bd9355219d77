import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseResources } from './parse.js';
import { buildSnapshot, hashKey } from './snapshot.js';

function key(name: string, spec: Record<string, unknown>): unknown {
  return { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiKey', metadata: { name, namespace: 'ns' }, spec };
}

function build(docs: unknown[]) {
  const parsed = parseResources(docs.map((doc) => ({ source: 'test', doc })));
  return { ...buildSnapshot(parsed.resources, 1), issues: parsed.issues };
}

describe('limits in config', () => {
  it('derives lineage root-first and scopes self-first through accounts', () => {
    const { snapshot, problems, issues } = build([
      key('org', { accountOnly: true, limits: { tokensPerMonth: 1000, monthTimeZone: 'Europe/Berlin' } }),
      key('team', { accountOnly: true, parent: 'org', limits: { requestsPerMinute: 10 } }),
      key('alice', { keyHash: hashKey('a'), parent: 'team', limits: { tokensPerMinute: 100, perModel: [{ model: 'gpt-4*', tokensPerDay: 5 }] } }),
    ]);
    assert.deepEqual(issues, []);
    assert.deepEqual(problems, []);
    const alice = snapshot.keysByHash.get(hashKey('a'));
    assert.ok(alice);
    assert.equal(alice.lineage, '.org.team.alice.');
    assert.deepEqual(alice.limitScopes.map((s) => s.id), ['ns/alice', 'ns/team', 'ns/org']);
    assert.equal(alice.limitScopes[2]?.monthTimeZone, 'Europe/Berlin');
    assert.deepEqual(alice.limitScopes[0]?.rules.map((r) => [r.name, r.limit]), [['tokensPerMinute', 100]]);
    assert.equal(alice.limitScopes[0]?.perModel[0]?.matcher.test('gpt-4o'), true);
    assert.equal(alice.hasTokenLimits, true);
    assert.equal(alice.midStreamPolicy, 'finish');
    // accounts hold budgets but are not keys
    assert.equal(snapshot.keysByHash.size, 1);
  });

  it('reports missing parents and cycles and leaves those keys out', () => {
    const { snapshot, problems } = build([
      key('orphan', { keyHash: hashKey('o'), parent: 'nobody' }),
      key('x', { keyHash: hashKey('x'), parent: 'y' }),
      key('y', { keyHash: hashKey('y'), parent: 'x' }),
      key('self', { keyHash: hashKey('s'), parent: 'self' }),
      key('ok', { keyHash: hashKey('k') }),
    ]);
    assert.deepEqual(
      problems.map((p) => [p.name, p.reason]).sort(),
      [['ns/orphan', 'ParentNotFound'], ['ns/self', 'ParentCycle'], ['ns/x', 'ParentCycle'], ['ns/y', 'ParentCycle']],
    );
    assert.equal(snapshot.keysByHash.size, 1);
    assert.equal(snapshot.keysByHash.get(hashKey('k'))?.hasLimits, false);
  });

  it('refuses unknown time zones and a key that is both account and key', () => {
    const { problems, issues } = build([
      key('tz', { keyHash: hashKey('t'), limits: { tokensPerMonth: 5, monthTimeZone: 'Mars/Olympus' } }),
      key('both', { keyHash: hashKey('b'), accountOnly: true }),
      key('neg', { keyHash: hashKey('n'), limits: { requestsPerMinute: 0 } }),
    ]);
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.message ?? '', /unknown time zone "Mars\/Olympus"/);
    assert.ok(issues.some((i) => i.message.startsWith('exactly one of keyHash and secretRef must be set')));
    assert.ok(issues.some((i) => i.field === 'spec.limits.requestsPerMinute' && i.message === 'must be >= 1'));
  });

  it('compiles provider model limits into the route', () => {
    const { snapshot } = build([
      {
        apiVersion: 'tollgate.dev/v1alpha1',
        kind: 'ModelProvider',
        metadata: { name: 'p' },
        spec: { type: 'openai', endpoint: 'http://127.0.0.1:1/v1', models: [{ name: 'm', limits: { tokensPerMinute: 7 } }] },
      },
    ]);
    const route = snapshot.routesByModel.get('m')?.[0]?.routes[0];
    assert.equal(route?.limitScopeId, 'provider:default/p:m');
    assert.deepEqual(route?.limits.map((r) => r.limit), [7]);
  });
});
