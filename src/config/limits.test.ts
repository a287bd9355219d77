import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseResources } from './parse.js';
import { buildSnapshot, hashKey } from './snapshot.js';
import { buildChecks, toolCallChecks } from '../ratelimit/plan.js';

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

  it('tool-call limits of the key and every ancestor become tool-call checks; model requests never see them', () => {
    const { snapshot, problems } = build([
      key('org', { accountOnly: true, limits: { toolCallsPerMonth: 1000, monthTimeZone: 'Europe/Berlin' } }),
      key('team', { accountOnly: true, parent: 'org', limits: { toolCallsPerMinute: 10, toolCallsPerDay: 500 } }),
      key('bob', { keyHash: hashKey('b'), parent: 'team', mcp: { servers: ['*'] } }),
    ]);
    assert.deepEqual(problems, []);
    const bob = snapshot.keysByHash.get(hashKey('b'));
    assert.ok(bob);
    assert.equal(bob.hasLimits, false, 'tool-call limits alone do not make model requests limited');
    const now = Date.now();
    const checks = toolCallChecks(bob, now);
    assert.deepEqual(
      checks.map((c) => [c.name, c.scope, c.scopeId, c.limit, c.windowMs]),
      [
        ['toolCallsPerMinute', 'ancestor', 'ns/team', 10, 60_000],
        ['toolCallsPerDay', 'ancestor', 'ns/team', 500, 86_400_000],
        ['toolCallsPerMonth', 'ancestor', 'ns/org', 1000, 0],
      ],
    );
    // Shared storage: every child of team counts in the same keys; months are per calendar month.
    assert.equal(checks[0]?.key, 'ns/team|toolCallsPerMinute');
    assert.match(checks[2]?.key ?? '', /^ns\/org\|toolCallsPerMonth\|\d{4}-\d{2}$/);
    assert.ok((checks[2]?.resetAtMs ?? 0) > now);
    assert.deepEqual(buildChecks(bob, 'gpt-4o', undefined, now), []);
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
