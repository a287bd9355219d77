import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokenAfterFirstByte, connectionFailure, decodeAttemptLogs, loadAccessLogService, streamEnd, withAccessLogDecoder, type AttemptLogEntry } from './attempt-log.js';
import { httpEntry, httpLogsMessage, stringStruct, taggedMetadata } from './codec/access-log-samples.js';

const method = loadAccessLogService()['StreamAccessLogs']!;

/** One entry as Envoy would log it, through the wire and the decoder grpc-js uses. */
function entry(status: number, flags: string[], target: string | null = 'default/a'): AttemptLogEntry {
  const wire = method.requestSerialize(httpLogsMessage([httpEntry({ status, flags, ...(target === null ? {} : { filterMetadata: taggedMetadata(target) }) })]));
  const [decoded] = decodeAttemptLogs(wire);
  assert.ok(decoded);
  return decoded;
}

describe('attempt access log', () => {
  it('a 200 that broke off on the provider side is a failure of its target', () => {
    assert.deepEqual(brokenAfterFirstByte(entry(200, ['upstreamProtocolError'])), { target: 'default/a', reason: 'upstreamProtocolError' });
    assert.deepEqual(brokenAfterFirstByte(entry(200, ['streamIdleTimeout'])), { target: 'default/a', reason: 'streamIdleTimeout' });
    assert.deepEqual(brokenAfterFirstByte(entry(200, ['upstreamRemoteReset'])), { target: 'default/a', reason: 'upstreamRemoteReset' });
    assert.deepEqual(brokenAfterFirstByte(entry(200, ['upstreamConnectionTermination'])), { target: 'default/a', reason: 'upstreamConnectionTermination' });
    assert.deepEqual(brokenAfterFirstByte(entry(206, ['upstreamRequestTimeout'], 'team/b')), { target: 'team/b', reason: 'upstreamRequestTimeout' });
    // Several flags: the reason is the first in the handler's order.
    assert.deepEqual(brokenAfterFirstByte(entry(200, ['upstreamRequestTimeout', 'upstreamProtocolError', 'upstreamRemoteReset'])), { target: 'default/a', reason: 'upstreamRemoteReset' });
  });
  it('a client that hung up, a clean end, or a failure before the first byte are not', () => {
    assert.equal(brokenAfterFirstByte(entry(200, ['upstreamRemoteReset', 'downstreamRemoteReset'])), undefined);
    assert.equal(brokenAfterFirstByte(entry(200, ['downstreamConnectionTermination'])), undefined);
    assert.equal(brokenAfterFirstByte(entry(200, [])), undefined);
    assert.equal(brokenAfterFirstByte(entry(503, ['upstreamConnectionFailure'])), undefined);
    assert.equal(brokenAfterFirstByte(entry(200, ['upstreamRemoteReset'], null)), undefined);
  });
  it('reports clean ends by target, and nothing for non-2xx, client hang-ups or untagged entries', () => {
    assert.deepEqual(streamEnd(entry(200, [])), { target: 'default/a', broken: false });
    // A flag that is not a break (a retry limit, a local reset) is a clean end of a 2xx.
    assert.deepEqual(streamEnd(entry(200, ['upstreamRetryLimitExceeded', 'localReset'])), { target: 'default/a', broken: false });
    assert.equal(streamEnd(entry(199, [])), undefined);
    assert.equal(streamEnd(entry(300, [])), undefined);
    assert.equal(streamEnd(entry(429, ['upstreamRemoteReset'])), undefined);
    assert.equal(streamEnd(entry(200, ['downstreamRemoteReset'])), undefined);
    const wire = method.requestSerialize(httpLogsMessage([httpEntry({ status: 200, filterMetadata: { tollgate: stringStruct({ reply: 'x' }) } })]));
    assert.equal(streamEnd(decodeAttemptLogs(wire)[0]!), undefined);
  });
  it('a 503 of Envoy for an unreachable provider (connect, TLS, DNS, reset before any byte) is a connection-level failure', () => {
    assert.deepEqual(connectionFailure(entry(503, ['upstreamConnectionFailure'])), { target: 'default/a', reason: 'upstreamConnectionFailure' });
    assert.deepEqual(connectionFailure(entry(503, ['dnsResolutionFailure'])), { target: 'default/a', reason: 'dnsResolutionFailure' });
    assert.deepEqual(connectionFailure(entry(503, ['upstreamConnectionTermination'])), { target: 'default/a', reason: 'upstreamConnectionTermination' });
    assert.deepEqual(connectionFailure(entry(503, ['upstreamRemoteReset', 'upstreamRetryLimitExceeded'])), { target: 'default/a', reason: 'upstreamRemoteReset' });
    // Not: a provider's own answer, a break after the first byte, a client hang-up, an untagged request.
    assert.equal(connectionFailure(entry(503, [])), undefined);
    assert.equal(connectionFailure(entry(500, ['upstreamRemoteReset'])), undefined);
    assert.equal(connectionFailure(entry(200, ['upstreamConnectionTermination'])), undefined);
    assert.equal(connectionFailure(entry(503, ['upstreamConnectionFailure', 'downstreamRemoteReset'])), undefined);
    assert.equal(connectionFailure(entry(503, ['upstreamConnectionFailure'], null)), undefined);
  });
  it("serves StreamAccessLogs with the static decoder and keeps the rest of proto-loader's definition", () => {
    const base = loadAccessLogService();
    const wired = withAccessLogDecoder(base);
    const original = base['StreamAccessLogs']!;
    const swapped = wired['StreamAccessLogs']!;
    assert.equal(swapped.requestDeserialize, decodeAttemptLogs);
    assert.equal(swapped.path, '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs');
    assert.equal(swapped.requestStream, true);
    assert.equal(swapped.responseStream, false);
    assert.equal(swapped.responseSerialize, original.responseSerialize);
    assert.equal(swapped.requestSerialize, original.requestSerialize);
    assert.notEqual(original.requestDeserialize, decodeAttemptLogs, 'the loaded definition itself is not modified');
    assert.deepEqual(original.responseDeserialize(swapped.responseSerialize({})), {});
  });
});
