import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAnswer, parseWire, sessionChannelId } from './sse-relay.js';

describe('HTTP+SSE relay wire format', () => {
  const wire = { r: 'ab12', n: 'cd34', d: 1, k: 'tools/all', e: '/mcp', q: 'req-1', b: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' };

  it('a session is named in Redis by a hash, never by its id', () => {
    const id = '2b1c7f0e-2f1e-4a53-9a4e-7a1f6d9d1e11';
    const channel = sessionChannelId(id);
    assert.match(channel, /^[0-9a-f]{64}$/);
    assert.ok(!channel.includes(id) && !channel.includes(id.replaceAll('-', '')));
    assert.equal(sessionChannelId(id), channel);
    assert.notEqual(sessionChannelId(id + 'x'), channel);
  });

  it('parses a relayed message and refuses malformed or oversized ones', () => {
    assert.deepEqual(parseWire(JSON.stringify(wire), 1024), wire);
    assert.equal(parseWire('not json', 1024), undefined);
    assert.equal(parseWire(JSON.stringify({ ...wire, r: 'channel:injection' }), 1024), undefined, 'the reply channel is hex only');
    assert.equal(parseWire(JSON.stringify({ ...wire, d: '1' }), 1024), undefined);
    assert.equal(parseWire(JSON.stringify({ ...wire, b: 'x'.repeat(2000) }), 1024), undefined, 'a body over the limit');
    assert.equal(parseWire(JSON.stringify({ ...wire, k: undefined }), 1024), undefined);
  });

  it("parses an owner's verdict: 202, or an error with its code and message", () => {
    assert.deepEqual(parseAnswer('{"n":"cd34","s":202}'), { nonce: 'cd34', answer: { status: 202 } });
    assert.deepEqual(parseAnswer('{"n":"cd34","s":404,"c":-32600,"m":"Session not found"}'), { nonce: 'cd34', answer: { status: 404, code: -32600, message: 'Session not found' } });
    assert.equal(parseAnswer('{"n":"cd34","s":404}'), undefined, 'an error needs a code and message');
    assert.equal(parseAnswer('{"n":"cd34","s":99}'), undefined);
    assert.equal(parseAnswer('[]'), undefined);
  });
});
