import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostMatcher, hostOf, TenantIndex, tenantIssues } from './hosts.js';

describe('tenants by domain', () => {
  it('reads the host of an :authority (case, port, trailing dot, IPv6)', () => {
    assert.equal(hostOf('API.Example.com:8443'), 'api.example.com');
    assert.equal(hostOf('example.com.'), 'example.com');
    assert.equal(hostOf('[::1]:8080'), '[::1]');
    assert.equal(hostOf(undefined), '');
  });

  it('matches exact names and *.suffix patterns (subdomains only, never the apex)', () => {
    const m = new HostMatcher(['api.a.example', '*.b.example']);
    assert.ok(m.matches('api.a.example'));
    assert.ok(!m.matches('x.api.a.example'));
    assert.ok(m.matches('x.b.example'));
    assert.ok(m.matches('deep.x.b.example'));
    assert.ok(!m.matches('b.example'));
    assert.ok(!m.matches('evilb.example'));
  });

  it('finds the tenant of a host: exact first, then the longest wildcard', () => {
    const idx = new TenantIndex([
      { name: 'broad', hosts: ['*.example.com'] },
      { name: 'team', hosts: ['*.team.example.com', 'team.example.com'], guardrails: ['g'] },
    ]);
    assert.equal(idx.tenantFor('x.team.example.com')?.name, 'team');
    assert.equal(idx.tenantFor('team.example.com')?.name, 'team');
    assert.equal(idx.tenantFor('other.example.com')?.name, 'broad');
    assert.equal(idx.tenantFor('example.com'), undefined);
    assert.deepEqual(idx.tenantFor('team.example.com')?.guardrails, ['g']);
  });

  it('refuses a host claimed by two tenants', () => {
    assert.deepEqual(tenantIssues([{ name: 'a', hosts: ['x.com'] }, { name: 'b', hosts: ['X.com'] }]), [{ field: 'spec.tenants[1].hosts', message: 'host x.com already belongs to tenant a' }]);
  });
});
