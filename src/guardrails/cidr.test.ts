import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AllowList, CidrSet, isCidrOrAddress, parseCidr, parseIp, parseSourceAddress, type CidrRange } from './cidr.js';

const set = (...texts: string[]): CidrSet => new CidrSet(texts.map((t) => parseCidr(t) as CidrRange));
const ip = (t: string) => {
  const a = parseIp(t);
  assert.ok(a, t);
  return a;
};

describe('CIDR allow-lists', () => {
  it('matches IPv4 ranges at every prefix boundary', () => {
    const s = set('10.0.0.0/8', '192.168.1.0/24', '203.0.113.7');
    assert.ok(s.contains(ip('10.255.255.255')));
    assert.ok(s.contains(ip('192.168.1.254')));
    assert.ok(!s.contains(ip('192.168.2.1')));
    assert.ok(s.contains(ip('203.0.113.7')));
    assert.ok(!s.contains(ip('203.0.113.8')));
    assert.ok(!s.contains(ip('11.0.0.1')));
    assert.ok(set('0.0.0.0/0').contains(ip('8.8.8.8')));
    assert.ok(!set('0.0.0.0/0').contains(ip('2001:db8::1')), 'an IPv4 range never holds an IPv6 address');
  });

  it('matches IPv6 ranges, compressed and full forms, and IPv4-mapped addresses against IPv4 ranges', () => {
    const s = set('2001:db8::/32', 'fe80::1');
    assert.ok(s.contains(ip('2001:db8:ffff::1')));
    assert.ok(s.contains(ip('2001:0db8:0000:0000:0000:0000:0000:0001')));
    assert.ok(!s.contains(ip('2001:db9::1')));
    assert.ok(s.contains(ip('fe80::1')));
    assert.ok(!s.contains(ip('fe80::2')));
    assert.ok(set('10.0.0.0/8').contains(ip('::ffff:10.1.2.3')));
    assert.ok(set('::/0').contains(ip('::1')));
  });

  it('refuses malformed CIDRs and host bits below the prefix, like the CEL rule', () => {
    for (const bad of ['10.0.0.1/8', '10.0.0.0/33', '2001:db8::1/32', 'example.com', '10.0.0/8', '', '1.2.3.4/', '::ffff:10.0.0.1', 'fe80::1%eth0']) {
      assert.equal(isCidrOrAddress(bad), false, bad);
    }
    for (const good of ['10.0.0.0/8', '0.0.0.0/0', '2001:db8::/32', '::1', '192.0.2.7', '::/0']) assert.equal(isCidrOrAddress(good), true, good);
  });

  it("reads Envoy's source.address with and without port, IPv4 and bracketed IPv6", () => {
    assert.deepEqual(parseSourceAddress('127.0.0.1:5555'), ip('127.0.0.1'));
    assert.deepEqual(parseSourceAddress('[2001:db8::7]:443'), ip('2001:db8::7'));
    assert.deepEqual(parseSourceAddress('2001:db8::7'), ip('2001:db8::7'));
    assert.deepEqual(parseSourceAddress('198.51.100.1'), ip('198.51.100.1'));
    assert.equal(parseSourceAddress('not-an-ip:80'), undefined);
    assert.equal(parseSourceAddress(''), undefined);
  });

  it('an allow-list chain is the intersection of its levels; no address is refused', () => {
    const chain = new AllowList([
      { owner: 'ns/child', set: set('10.1.0.0/16') },
      { owner: 'ns/account', set: set('10.0.0.0/8', '192.0.2.0/24') },
    ]);
    assert.equal(chain.refusedBy(ip('10.1.2.3')), undefined);
    assert.equal(chain.refusedBy(ip('192.0.2.1')), 'ns/child', 'the account allows it, the child does not');
    assert.equal(new AllowList([{ owner: 'ns/child', set: set('0.0.0.0/0') }, { owner: 'ns/account', set: set('10.0.0.0/8') }]).refusedBy(ip('8.8.8.8')), 'ns/account', 'a child cannot widen its account');
    assert.equal(chain.refusedBy(undefined), 'ns/child');
  });
});
