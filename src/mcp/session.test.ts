import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SESSION_MAX_AGE_MS, SessionSealer } from './session.js';

describe('sealed MCP session ids', () => {
  const now = Date.now();
  const claims = { key: 'tools/all', endpoint: '/mcp', issuedAtMs: now };

  it('any replica with the same secret opens an id; another secret cannot', () => {
    const id = new SessionSealer('shared').seal(claims);
    assert.match(id, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(new SessionSealer('shared').open(id, now + 1000), claims);
    assert.equal(new SessionSealer('other').open(id, now), undefined);
    assert.equal(new SessionSealer(undefined).open(id, now), undefined);
  });

  it('refuses every single-character change, garbage and expired ids', () => {
    const s = new SessionSealer('shared');
    const id = s.seal(claims);
    for (let i = 0; i < id.length; i += 3) {
      const c = id[i] === 'A' ? 'B' : 'A';
      assert.equal(s.open(id.slice(0, i) + c + id.slice(i + 1), now), undefined, `position ${i}`);
    }
    assert.equal(s.open('', now), undefined);
    assert.equal(s.open('not a session!', now), undefined);
    assert.equal(s.open('AAAA', now), undefined);
    assert.equal(s.open(id, now + SESSION_MAX_AGE_MS + 1), undefined);
  });

  it('two ids for the same claims differ (random IV)', () => {
    const s = new SessionSealer('shared');
    assert.notEqual(s.seal(claims), s.seal(claims));
  });
});
