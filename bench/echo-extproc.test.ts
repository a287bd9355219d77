import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeAnswerFull, protoLoaderProcess } from '../src/extproc/codec/test-support.js';
import { requestBodyMessage, requestHeadersMessage, responseHeadersMessage } from '../src/extproc/codec/samples.js';
import { answerFor, phaseOf } from './echo-extproc.js';

const wire = (msg: object): Buffer => protoLoaderProcess.requestSerialize(msg);

describe('echo ext_proc (the bench floor)', () => {
  it('answers each phase with an empty response of the same phase', () => {
    const cases: [object, string][] = [
      [requestHeadersMessage(), 'requestHeaders'],
      [requestBodyMessage(300), 'requestBody'],
      [responseHeadersMessage(), 'responseHeaders'],
      [{ responseBody: { body: Buffer.from('data: {}\n\n'), endOfStream: false } }, 'responseBody'],
      [{ requestTrailers: { trailers: { headers: [] } } }, 'requestTrailers'],
      [{ responseTrailers: { trailers: { headers: [] } } }, 'responseTrailers'],
    ];
    for (const [msg, phase] of cases) {
      const answer = decodeAnswerFull(answerFor(phaseOf(wire(msg))));
      assert.equal(answer.response, phase);
      assert.equal(answer.immediateResponse, undefined);
    }
  });
  it('skips fields before the phase (Envoy may send attributes or protocol config first)', () => {
    const headers = wire(requestHeadersMessage());
    // observability_mode (field 10, varint) ahead of the request headers.
    assert.equal(phaseOf(Buffer.concat([Buffer.from([10 << 3, 1]), headers])), 2);
  });
  it('refuses a message without a phase', () => {
    assert.throws(() => phaseOf(Buffer.from([10 << 3, 1])), /without a phase/);
  });
});
