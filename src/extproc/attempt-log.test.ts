import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokenAfterFirstByte, type AttemptLogEntry } from './attempt-log.js';

function entry(status: number, flags: Record<string, boolean>, target = 'default/a'): AttemptLogEntry {
  return {
    commonProperties: { responseFlags: flags, metadata: { filterMetadata: { tollgate: { fields: { target: { stringValue: target } } } } } },
    response: { responseCode: { value: status } },
  };
}

describe('attempt access log', () => {
  it('a 200 that broke off on the provider side is a failure of its target', () => {
    assert.deepEqual(brokenAfterFirstByte(entry(200, { upstreamProtocolError: true })), { target: 'default/a', reason: 'upstreamProtocolError' });
    assert.deepEqual(brokenAfterFirstByte(entry(200, { streamIdleTimeout: true })), { target: 'default/a', reason: 'streamIdleTimeout' });
    assert.deepEqual(brokenAfterFirstByte(entry(200, { upstreamRemoteReset: true })), { target: 'default/a', reason: 'upstreamRemoteReset' });
  });
  it('a client that hung up, a clean end, or a failure before the first byte are not', () => {
    assert.equal(brokenAfterFirstByte(entry(200, { upstreamRemoteReset: true, downstreamRemoteReset: true })), undefined);
    assert.equal(brokenAfterFirstByte(entry(200, { downstreamConnectionTermination: true })), undefined);
    assert.equal(brokenAfterFirstByte(entry(200, {})), undefined);
    assert.equal(brokenAfterFirstByte(entry(503, { upstreamConnectionFailure: true } as Record<string, boolean>)), undefined);
    assert.equal(brokenAfterFirstByte({ response: { responseCode: { value: 200 } }, commonProperties: { responseFlags: { upstreamRemoteReset: true } } }), undefined);
  });
});
