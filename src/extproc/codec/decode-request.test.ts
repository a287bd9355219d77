import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HeaderValue__Output } from '../../generated/envoy/config/core/v3/HeaderValue.js';
import type { ProcessingRequest, ProcessingRequest__Output } from '../../generated/envoy/service/ext_proc/v3/ProcessingRequest.js';
import { headerMap } from '../headers.js';
import { decodeProcessingRequest } from './decode-request.js';
import { CLIENT_REQUEST_HEADERS, rawHeaders, requestBodyMessage, requestHeadersMessage, responseHeadersMessage } from './samples.js';
import { fixed32, fixed64, fuzzCorrupted, key, len, protoLoaderProcess, varint, vint } from './test-support.js';
import { CodecError } from './wire.js';

/** proto-loader's codec for Process, exactly as grpc-js called it before the static codecs. */
const serialize = (m: ProcessingRequest): Buffer => protoLoaderProcess.requestSerialize(m);
const protoLoaderDecode = (b: Buffer): ProcessingRequest__Output => protoLoaderProcess.requestDeserialize(b) as ProcessingRequest__Output;

const EMPTY = Buffer.alloc(0);

type HeaderMapLike = { headers?: HeaderValue__Output[] } | undefined;
const fullHeaders = (m: HeaderMapLike): { headers: HeaderValue__Output[] } => ({
  headers: (m?.headers ?? []).map((h) => ({ key: h.key ?? '', value: h.value ?? '', rawValue: h.rawValue ?? EMPTY })),
});

/**
 * proto-loader's output (defaults off: absent = default) with the decoded fields filled in at their
 * proto3 defaults, which is the shape the static decoder always produces.
 */
function expected(pl: ProcessingRequest__Output): ProcessingRequest__Output {
  switch (pl.request) {
    case undefined:
      return {};
    case 'requestHeaders':
    case 'responseHeaders': {
      const h = pl[pl.request];
      return { request: pl.request, [pl.request]: { headers: fullHeaders(h?.headers), endOfStream: h?.endOfStream ?? false } };
    }
    case 'requestBody':
    case 'responseBody': {
      const b = pl[pl.request];
      return { request: pl.request, [pl.request]: { body: b?.body ?? EMPTY, endOfStream: b?.endOfStream ?? false } };
    }
    default: {
      const t = pl[pl.request];
      return { request: pl.request, [pl.request]: { trailers: fullHeaders(t?.trailers) } };
    }
  }
}

/** Encodes with protobufjs (via proto-loader), decodes with both, compares. */
function roundTrip(m: ProcessingRequest): ProcessingRequest__Output {
  const wire = serialize(m);
  const ours = decodeProcessingRequest(wire);
  assert.deepStrictEqual(ours, expected(protoLoaderDecode(wire)));
  return ours;
}

// Hand-built wire fragments (for unknown fields, odd orders and corruption).
const unknowns = (): Buffer => Buffer.concat([vint(90, 2n ** 64n - 1n), fixed64(91), len(92, 'ignored'), fixed32(93), vint(536_870_911, 1), len(15, Buffer.alloc(300, 7))]);

describe('ProcessingRequest decoder', () => {
  it('decodes Envoy request headers (15 raw_value headers) like proto-loader, end_of_stream false and true', () => {
    for (const eos of [false, true]) {
      const msg = roundTrip(requestHeadersMessage(eos));
      assert.equal(msg.request, 'requestHeaders');
      assert.equal(msg.requestHeaders?.endOfStream, eos);
      const headers = headerMap(msg.requestHeaders?.headers);
      assert.equal(headers.size, CLIENT_REQUEST_HEADERS.length);
      assert.equal(headers.get(':path'), '/v1/chat/completions');
      assert.equal(headers.get('authorization'), 'Bearer tg-test-0123456789abcdef');
    }
  });

  it('decodes response headers, string values, non-ASCII bytes and empty values', () => {
    roundTrip(responseHeadersMessage());
    const msg = roundTrip({
      requestHeaders: {
        headers: {
          headers: [
            { key: 'x-latin1', rawValue: Buffer.from([0x63, 0x61, 0x66, 0xe9]) },
            { key: 'x-string', value: 'grüße ✓ 𝄞' },
            { key: 'x-both', value: 'v', rawValue: Buffer.from('raw') },
            { key: 'x-empty' },
            { key: 'x-ключ-with-a-long-non-ascii-name', value: 'é' },
            { key: 'x-dup', rawValue: Buffer.from('1') },
            { key: 'x-dup', rawValue: Buffer.from('2') },
          ],
        },
      },
    });
    const headers = headerMap(msg.requestHeaders?.headers);
    assert.equal(headers.get('x-latin1'), 'café');
    assert.equal(headers.get('x-string'), 'grüße ✓ 𝄞');
    assert.equal(headers.get('x-both'), 'raw');
    assert.equal(headers.get('x-empty'), '');
    assert.equal(headers.get('x-ключ-with-a-long-non-ascii-name'), 'é');
    assert.equal(msg.requestHeaders?.headers?.headers?.length, 7);
  });

  it('decodes headers messages without a header map and without any field', () => {
    assert.deepStrictEqual(roundTrip({ responseHeaders: { endOfStream: true } }).responseHeaders, { headers: { headers: [] }, endOfStream: true });
    assert.deepStrictEqual(roundTrip({ requestHeaders: {} }).requestHeaders, { headers: { headers: [] }, endOfStream: false });
    assert.deepStrictEqual(roundTrip({}), {});
  });

  it('decodes bodies of 0 B, 1 B, 1 KiB and 1 MiB, end_of_stream both ways, request and response', () => {
    for (const size of [0, 1, 1024, 1024 * 1024]) {
      for (const eos of [true, false]) {
        const body = requestBodyMessage(size).requestBody?.body as Buffer;
        const req = roundTrip({ requestBody: { body, endOfStream: eos } });
        assert.equal(req.requestBody?.body?.length, size);
        assert.ok(req.requestBody?.body?.equals(body));
        assert.equal(req.requestBody?.endOfStream, eos);
        const res = roundTrip({ responseBody: { body, endOfStream: eos } });
        assert.ok(res.responseBody?.body?.equals(body));
      }
    }
  });

  it('decodes trailers', () => {
    roundTrip({ requestTrailers: { trailers: { headers: rawHeaders([['x-trailer', 'done']]) } } });
    roundTrip({ responseTrailers: { trailers: { headers: rawHeaders([['grpc-status', '0'], ['grpc-message', '']]) } } });
    roundTrip({ responseTrailers: {} });
  });

  it('decodes the string values of attributes (source.address) and skips the other kinds', () => {
    const struct = { fields: { 'source.address': { stringValue: '[2001:db8::7]:4711' }, n: { numberValue: 1.5 }, l: { listValue: { values: [{ boolValue: true }] } } } };
    const msg = decodeProcessingRequest(serialize({ ...requestHeadersMessage(), attributes: { 'envoy.filters.http.ext_proc': struct, other: { fields: { a: { stringValue: 'b' } } } } }));
    assert.equal(msg.request, 'requestHeaders');
    assert.deepStrictEqual(msg.attributes, {
      'envoy.filters.http.ext_proc': { fields: { 'source.address': { stringValue: '[2001:db8::7]:4711', kind: 'stringValue' } } },
      other: { fields: { a: { stringValue: 'b', kind: 'stringValue' } } },
    });
  });

  it('skips metadata_context, observability_mode and HttpHeaders.attributes', () => {
    const struct = { fields: { 'request.path': { stringValue: '/v1/chat/completions' }, n: { numberValue: 1.5 }, l: { listValue: { values: [{ boolValue: true }, { nullValue: 'NULL_VALUE' as const }] } } } };
    const extras = {
      metadataContext: { filterMetadata: { 'envoy.filters.http.ext_proc': struct, other: { fields: { deep: { structValue: struct } } } } },
      observabilityMode: true,
    };
    const withExtras: ProcessingRequest = { ...requestHeadersMessage(), ...extras };
    withExtras.requestHeaders = { ...withExtras.requestHeaders, attributes: { a: struct } };
    const wire = serialize(withExtras);
    assert.ok(wire.length > serialize(requestHeadersMessage()).length + 100, 'the extras must be on the wire');
    const msg = roundTrip(withExtras);
    assert.deepStrictEqual(Object.keys(msg).sort(), ['request', 'requestHeaders']);
    roundTrip({ ...requestBodyMessage(10), ...extras });
  });

  it('skips unknown fields of every wire type at every level, in any order', () => {
    const headerValue = (k: string, v: string): Buffer => Buffer.concat([unknowns(), len(3, v), unknowns(), len(1, k), unknowns()]);
    const headerMapBytes = Buffer.concat([unknowns(), len(1, headerValue('a', '1')), unknowns(), len(1, headerValue('b', '2'))]);
    // end_of_stream (3) before headers (1), unknowns everywhere, unknowns before the oneof member.
    const httpHeaders = Buffer.concat([vint(3, 1), unknowns(), len(1, headerMapBytes), unknowns()]);
    const wire = Buffer.concat([unknowns(), len(2, httpHeaders), unknowns(), vint(10, 1)]);
    const ours = decodeProcessingRequest(wire);
    assert.deepStrictEqual(ours, expected(protoLoaderDecode(wire)));
    assert.deepStrictEqual(ours, {
      request: 'requestHeaders',
      requestHeaders: {
        headers: {
          headers: [
            { key: 'a', value: '', rawValue: Buffer.from('1') },
            { key: 'b', value: '', rawValue: Buffer.from('2') },
          ],
        },
        endOfStream: true,
      },
    });
    const body = Buffer.concat([unknowns(), vint(2, 1), len(1, 'hello'), unknowns()]);
    assert.deepStrictEqual(decodeProcessingRequest(Buffer.concat([len(5, body), unknowns()])), { request: 'responseBody', responseBody: { body: Buffer.from('hello'), endOfStream: true } });
  });

  it('accepts a bool encoded as a 10-byte varint', () => {
    const wire = len(4, Buffer.concat([vint(2, 2n ** 63n)]));
    assert.equal(decodeProcessingRequest(wire).requestBody?.endOfStream, true);
  });

  it('keeps the last member when the request oneof appears twice (protobuf last-one-wins)', () => {
    const wire = Buffer.concat([serialize(requestHeadersMessage()), serialize(requestBodyMessage(3))]);
    assert.deepStrictEqual(decodeProcessingRequest(wire), { request: 'requestBody', requestBody: { body: Buffer.from('aaa'), endOfStream: true } });
  });

  it('returns bodies that stay valid and hold the right bytes (views of the message buffer)', () => {
    const wire = serialize(requestBodyMessage(2048));
    const body = decodeProcessingRequest(wire).requestBody?.body as Buffer;
    assert.equal(body.buffer, wire.buffer, 'zero copy: a view of the message grpc-js handed over');
    assert.ok(body.equals(requestBodyMessage(2048).requestBody?.body as Buffer));
  });
});

describe('ProcessingRequest decoder on truncated or corrupt input', () => {
  const samples: [string, Buffer][] = [
    ['request headers', serialize(requestHeadersMessage())],
    ['request body', serialize(requestBodyMessage(1024))],
    ['response headers', serialize(responseHeadersMessage())],
  ];

  it('throws CodecError for every strict prefix of a one-field message', () => {
    for (const [name, wire] of samples) {
      for (let n = 1; n < wire.length; n++) {
        assert.throws(() => decodeProcessingRequest(wire.subarray(0, n)), CodecError, `${name}: prefix of ${n}/${wire.length} bytes`);
      }
    }
  });

  it('throws CodecError for groups, reserved wire types, field 0, overlong varints, lengths past the end and wrong wire types', () => {
    const bad: [string, Buffer][] = [
      ['start group', Buffer.concat([key(20, 3), key(20, 4)])],
      ['end group', key(20, 4)],
      ['wire type 6', key(20, 6)],
      ['wire type 7', key(20, 7)],
      ['field number 0', Buffer.from([0x00, 0x01])],
      ['11-byte varint', Buffer.concat([key(20, 0), Buffer.alloc(10, 0xff), Buffer.from([0x01])])],
      ['tag beyond 32 bits', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f])],
      ['length past the end', Buffer.concat([key(2, 2), varint(100), Buffer.alloc(10)])],
      ['length of 4 GiB', Buffer.concat([key(2, 2), varint(0xffffffff)])],
      ['nested length past its parent', len(2, Buffer.concat([key(1, 2), varint(50), Buffer.alloc(5)]))],
      ['truncated fixed64', Buffer.concat([key(20, 1), Buffer.alloc(7)])],
      ['truncated fixed32', Buffer.concat([key(20, 5), Buffer.alloc(3)])],
      ['request_headers as varint', vint(2, 1)],
      ['end_of_stream as bytes', len(4, len(2, 'x'))],
      ['header key as varint', len(2, len(1, len(1, vint(1, 5))))],
      ['body as fixed32', len(4, fixed32(1))],
    ];
    for (const [name, wire] of bad) assert.throws(() => decodeProcessingRequest(wire), CodecError, name);
  });

  it('never hangs or throws anything but CodecError on randomly corrupted messages', () => {
    const threw = fuzzCorrupted(samples.map(([, wire]) => wire), decodeProcessingRequest);
    assert.ok(threw > 100, `corruption must be detected often, detected ${threw} of 3000`);
  });
});
