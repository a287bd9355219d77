import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bodyMaker, UNIQUE_MARK } from './unique-body.js';
import { wrkScript } from './wrk.js';

describe('bench request bodies', () => {
  const body = JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: `Note ${UNIQUE_MARK}. Hello` }] });

  it('every request gets its own prompt, still valid JSON', () => {
    const make = bodyMaker(body);
    const a = JSON.parse(make(1).toString()) as { messages: { content: string }[] };
    const b = JSON.parse(make(2).toString()) as { messages: { content: string }[] };
    assert.notEqual(a.messages[0]?.content, b.messages[0]?.content);
    assert.match(a.messages[0]?.content ?? '', /^Note \d+\. Hello$/);
  });

  it('a body without the mark is sent as it is', () => {
    const make = bodyMaker('{"x":1}');
    assert.equal(make(1), make(2));
  });

  it('wrk numbers each request from a per-run base; a body without the mark stays static', () => {
    const script = wrkScript({ headers: { a: 'b' }, body });
    assert.match(script, /request = function\(\)/);
    assert.match(script, /local counter = \d+\n/);
    assert.ok(!script.includes(UNIQUE_MARK));
    assert.match(wrkScript({ headers: {}, body: '{"x":1}' }), /wrk\.body = \[\[\{"x":1\}\]\]/);
  });
});
