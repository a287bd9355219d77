import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAccessLogService } from '../attempt-log.js';
import { httpEntry, httpLogsMessage, stringStruct, taggedMetadata, type ProtoObject } from './access-log-samples.js';
import { accessLogDecoder, RESPONSE_FLAG_FIELDS, ResponseFlag, type AccessLogEntrySummary, type ResponseFlagName } from './decode-access-log.js';
import { fuzzCorrupted, key, len, varint, vint } from './test-support.js';
import { CodecError } from './wire.js';

/** proto-loader's codec for StreamAccessLogs, exactly as grpc-js called it before. */
const method = loadAccessLogService()['StreamAccessLogs']!;
const serialize = (m: ProtoObject): Buffer => method.requestSerialize(m);
const decode = accessLogDecoder('tollgate', 'target');

/** Every bool of ResponseFlags (accesslog.proto), camelCase, with its field number. */
const ALL_FLAGS: [string, number][] = [
  ['failedLocalHealthcheck', 1],
  ['noHealthyUpstream', 2],
  ['upstreamRequestTimeout', 3],
  ['localReset', 4],
  ['upstreamRemoteReset', 5],
  ['upstreamConnectionFailure', 6],
  ['upstreamConnectionTermination', 7],
  ['upstreamOverflow', 8],
  ['noRouteFound', 9],
  ['delayInjected', 10],
  ['faultInjected', 11],
  ['rateLimited', 12],
  ['rateLimitServiceError', 14],
  ['downstreamConnectionTermination', 15],
  ['upstreamRetryLimitExceeded', 16],
  ['streamIdleTimeout', 17],
  ['invalidEnvoyRequestHeaders', 18],
  ['downstreamProtocolError', 19],
  ['upstreamMaxStreamDurationReached', 20],
  ['responseFromCacheFilter', 21],
  ['noFilterConfigFound', 22],
  ['durationTimeout', 23],
  ['upstreamProtocolError', 24],
  ['noClusterFound', 25],
  ['overloadManager', 26],
  ['dnsResolutionFailure', 27],
  ['downstreamRemoteReset', 28],
];

type PlEntry = {
  commonProperties?: { responseFlags?: Record<string, boolean>; metadata?: { filterMetadata?: Record<string, { fields?: Record<string, { kind?: string; stringValue?: string }> }> } };
  response?: { responseCode?: { value?: number } };
};

/** What the handler read from proto-loader's full object (the code before the static decoder). */
function reference(wire: Buffer): AccessLogEntrySummary[] {
  const msg = method.requestDeserialize(wire) as { httpLogs?: { logEntry?: PlEntry[] } };
  return (msg.httpLogs?.logEntry ?? []).map((e) => {
    let flags = 0;
    for (const name of Object.keys(ResponseFlag) as ResponseFlagName[]) if (e.commonProperties?.responseFlags?.[name]) flags |= ResponseFlag[name];
    const value = e.commonProperties?.metadata?.filterMetadata?.['tollgate']?.fields?.['target'];
    return { responseCode: e.response?.responseCode?.value ?? 0, flags, target: value?.kind === 'stringValue' ? value.stringValue : undefined };
  });
}

/** Encodes with protobufjs (via proto-loader), decodes with both, compares. */
function roundTrip(m: ProtoObject): AccessLogEntrySummary[] {
  const wire = serialize(m);
  const ours = decode(wire);
  assert.deepStrictEqual(ours, reference(wire));
  return ours;
}

// Hand-built wire fragments (unknown fields, odd orders, duplicates, corruption).
const unknowns = (): Buffer =>
  Buffer.concat([vint(90, 2n ** 64n - 1n), Buffer.concat([key(91, 1), Buffer.alloc(8, 1)]), len(92, 'ignored'), Buffer.concat([key(93, 5), Buffer.alloc(4, 9)]), len(15_000, Buffer.alloc(300, 7))]);
/** Wire builders for the path message -> http_logs -> entry -> common -> metadata -> Struct -> Value. */
const value = (...fields: Buffer[]): Buffer => Buffer.concat(fields);
const mapEntry = (k: string | undefined, v: Buffer | undefined, valueFirst = false): Buffer => {
  const parts = [k === undefined ? Buffer.alloc(0) : len(1, k), v === undefined ? Buffer.alloc(0) : len(2, v)];
  return Buffer.concat(valueFirst ? parts.reverse() : parts);
};
const struct = (...entries: Buffer[]): Buffer => Buffer.concat(entries.map((e) => len(1, e)));
const metadata = (...nsEntries: Buffer[]): Buffer => Buffer.concat(nsEntries.map((e) => len(1, e)));
const entryWire = (common: Buffer, response?: Buffer): Buffer => Buffer.concat([len(1, common), ...(response ? [len(4, response)] : [])]);
const messageWire = (...entries: Buffer[]): Buffer => len(2, Buffer.concat(entries.map((e) => len(1, e))));
const code = (status: number | bigint): Buffer => len(1, vint(1, status));
/** A message with one entry whose common properties hold only `meta` (a Metadata payload). */
const withMeta = (meta: Buffer): Buffer => messageWire(entryWire(len(17, meta)));
/** Metadata with one namespace entry `ns` holding a Struct with the given map entries. */
const nsStruct = (ns: string | undefined, ...entries: Buffer[]): Buffer => metadata(mapEntry(ns, struct(...entries)));
const targetOf = (meta: Buffer): string | undefined => decode(withMeta(meta))[0]?.target;

describe('StreamAccessLogsMessage decoder', () => {
  it('reads status, flags and tollgate.target from realistic full entries like proto-loader', () => {
    const entries = [
      httpEntry({ status: 200, filterMetadata: taggedMetadata('default/openai-a') }),
      httpEntry({ status: 200, flags: ['upstreamProtocolError'], filterMetadata: taggedMetadata('team-b/anthropic') }),
      httpEntry({ status: 200, flags: ['downstreamRemoteReset', 'upstreamRemoteReset'], filterMetadata: taggedMetadata('default/openai-a') }),
    ];
    const wire = serialize(httpLogsMessage(entries));
    assert.ok(wire.length > 2500, `entries must be full on the wire (${wire.length} bytes)`);
    assert.deepStrictEqual(roundTrip(httpLogsMessage(entries)), [
      { responseCode: 200, flags: 0, target: 'default/openai-a' },
      { responseCode: 200, flags: ResponseFlag.upstreamProtocolError, target: 'team-b/anthropic' },
      { responseCode: 200, flags: ResponseFlag.downstreamRemoteReset | ResponseFlag.upstreamRemoteReset, target: 'default/openai-a' },
    ]);
    // Later messages of a stream carry no identifier.
    assert.equal(roundTrip(httpLogsMessage(entries, false)).length, 3);
  });

  it('entries without metadata, without the namespace, without target, with a non-string target, non-2xx, without a response code', () => {
    assert.deepStrictEqual(
      roundTrip(
        httpLogsMessage([
          httpEntry({ status: 200 }),
          httpEntry({ status: 200, filterMetadata: { 'envoy.filters.http.ext_proc': stringStruct({ target: 'not ours' }) } }),
          httpEntry({ status: 200, filterMetadata: { tollgate: stringStruct({ reply: 'rate_limit_exceeded' }) } }),
          httpEntry({ status: 200, filterMetadata: { tollgate: { fields: { target: { numberValue: 7 } } } } }),
          httpEntry({ status: 200, filterMetadata: { tollgate: { fields: { target: { structValue: stringStruct({ target: 'nested' }) } } } } }),
          httpEntry({ status: 503, flags: ['upstreamConnectionFailure', 'upstreamRetryLimitExceeded'], filterMetadata: taggedMetadata('default/a') }),
          httpEntry({ status: 429, filterMetadata: taggedMetadata('default/b') }),
          httpEntry({ filterMetadata: taggedMetadata('default/c') }),
          httpEntry({ status: 200, filterMetadata: { tollgate: stringStruct({ target: '' }) } }),
          httpEntry({ status: 200, filterMetadata: { tollgate: stringStruct({ target: 'ünïcode/ターゲット' }) } }),
        ]),
      ),
      [
        { responseCode: 200, flags: 0, target: undefined },
        { responseCode: 200, flags: 0, target: undefined },
        { responseCode: 200, flags: 0, target: undefined },
        { responseCode: 200, flags: 0, target: undefined },
        { responseCode: 200, flags: 0, target: undefined },
        { responseCode: 503, flags: ResponseFlag.upstreamConnectionFailure, target: 'default/a' },
        { responseCode: 429, flags: 0, target: 'default/b' },
        { responseCode: 0, flags: 0, target: 'default/c' },
        { responseCode: 200, flags: 0, target: '' },
        { responseCode: 200, flags: 0, target: 'ünïcode/ターゲット' },
      ],
    );
    assert.deepStrictEqual(roundTrip({ httpLogs: { logEntry: [{}] } }), [{ responseCode: 0, flags: 0, target: undefined }]);
  });

  it('reads each flag the handler uses at its field number and ignores every other flag', () => {
    for (const [name, field] of ALL_FLAGS) {
      const [ours] = roundTrip(httpLogsMessage([httpEntry({ status: 200, flags: [name], filterMetadata: taggedMetadata('default/a') })]));
      const bit = (ResponseFlag as Record<string, number>)[name];
      assert.equal(ours?.flags, bit ?? 0, name);
      if (bit !== undefined) assert.equal(RESPONSE_FLAG_FIELDS[name as ResponseFlagName], field, name);
    }
    const everything = roundTrip(httpLogsMessage([httpEntry({ status: 200, flags: ALL_FLAGS.map(([n]) => n) })]));
    assert.equal(everything[0]?.flags, 0b1_1111_1111);
    // unauthorized_details (13) is a message, not a bool: skipped.
    assert.equal(roundTrip(httpLogsMessage([httpEntry({ status: 200, flags: [] }), { commonProperties: { responseFlags: { unauthorizedDetails: { reason: 'EXTERNAL_SERVICE' } } } }]))[1]?.flags, 0);
  });

  it('returns no entries for TCP batches, an identifier only, or an empty message', () => {
    assert.deepStrictEqual(roundTrip({ identifier: { node: { id: 'n' }, logName: 'tcp' }, tcpLogs: { logEntry: [{ commonProperties: { upstreamCluster: 'x' }, connectionProperties: { receivedBytes: '10', sentBytes: '20' } }] } }), []);
    assert.deepStrictEqual(roundTrip({ identifier: { node: { id: 'n' }, logName: 'tollgate_direct' } }), []);
    assert.deepStrictEqual(decode(Buffer.alloc(0)), []);
  });

  it('skips unknown fields of every wire type at every level, map entries with the value first', () => {
    const target = value(unknowns(), len(3, 'default/x'), unknowns());
    const tollgate = struct(Buffer.concat([unknowns(), mapEntry('target', target, true)]), mapEntry('other', value(len(3, 'y'))));
    const meta = metadata(mapEntry('envoy.lb', struct(mapEntry('target', value(len(3, 'wrong'))))), Buffer.concat([mapEntry('tollgate', tollgate, true), unknowns()]));
    const common = Buffer.concat([unknowns(), len(17, Buffer.concat([unknowns(), meta])), len(16, Buffer.concat([unknowns(), vint(24, 1), vint(2, 1)])), unknowns()]);
    const response = Buffer.concat([unknowns(), len(1, Buffer.concat([unknowns(), vint(1, 200)])), unknowns()]);
    const entry = Buffer.concat([unknowns(), entryWire(common, response), unknowns()]);
    const wire = Buffer.concat([unknowns(), len(1, unknowns()), len(2, Buffer.concat([unknowns(), len(1, entry), unknowns()])), unknowns()]);
    assert.deepStrictEqual(decode(wire), [{ responseCode: 200, flags: ResponseFlag.upstreamProtocolError, target: 'default/x' }]);
    assert.deepStrictEqual(decode(wire), reference(wire));
  });

  it('follows protobuf parsing rules: last value wins, map keys replace whole entries, oneof last member wins, sub-messages merge', () => {
    const tagged = (t: string): Buffer => metadata(mapEntry('tollgate', struct(mapEntry('target', value(len(3, t))))));
    // Two flags messages merge; a later false clears; the response code's last value wins.
    const flagsTwice = entryWire(Buffer.concat([len(16, vint(5, 1)), len(16, Buffer.concat([vint(24, 1), vint(5, 0)])), len(17, tagged('a'))]), Buffer.concat([code(500), code(200)]));
    assert.deepStrictEqual(decode(messageWire(flagsTwice)), [{ responseCode: 200, flags: ResponseFlag.upstreamProtocolError, target: 'a' }]);
    // An empty UInt32Value keeps the earlier value (merge); a larger-than-32-bit varint keeps the low 32 bits like protobufjs.
    assert.equal(decode(messageWire(entryWire(Buffer.alloc(0), Buffer.concat([code(204), len(1, Buffer.alloc(0))]))))[0]?.responseCode, 204);
    assert.equal(decode(messageWire(entryWire(Buffer.alloc(0), code(2n ** 32n + 201n))))[0]?.responseCode, 201);
    // A second `tollgate` entry replaces the first whole, even without target; the last target of a Struct wins.
    assert.equal(decode(messageWire(entryWire(Buffer.concat([len(17, tagged('a')), len(17, metadata(mapEntry('tollgate', struct(mapEntry('plan', value(len(3, 'p')))))))]))))[0]?.target, undefined);
    assert.equal(targetOf(nsStruct('tollgate', mapEntry('target', value(len(3, 'a'))), mapEntry('target', value(len(3, 'b'))))), 'b');
    assert.equal(targetOf(metadata(mapEntry('tollgate', undefined))), undefined);
    assert.equal(targetOf(nsStruct('tollgate', mapEntry('target', undefined))), undefined);
    // Value's kind oneof: the last member decides.
    assert.equal(targetOf(nsStruct('tollgate', mapEntry('target', value(len(3, 'a'), vint(4, 1))))), undefined);
    assert.equal(targetOf(nsStruct('tollgate', mapEntry('target', value(vint(4, 1), len(3, 'a'))))), 'a');
    // Keys are compared exactly: prefixes and longer keys are other keys; an absent key is "".
    for (const k of ['tollgat', 'tollgatee', 'Tollgate', undefined]) {
      assert.equal(targetOf(nsStruct(k, mapEntry('target', value(len(3, 'a'))))), undefined, String(k));
      assert.equal(targetOf(nsStruct('tollgate', mapEntry(k === undefined ? k : k.replace('tollgate', 'target').replace('Tollgate', 'Target'), value(len(3, 'a'))))), undefined, String(k));
    }
    // Two http_logs batches concatenate; a tcp_logs batch after them replaces them; http after tcp counts.
    const one = entryWire(len(17, tagged('a')), code(200));
    assert.equal(decode(Buffer.concat([messageWire(one), messageWire(one, one)])).length, 3);
    assert.deepStrictEqual(decode(Buffer.concat([messageWire(one), len(3, len(1, Buffer.alloc(0)))])), []);
    assert.equal(decode(Buffer.concat([len(3, len(1, Buffer.alloc(0))), messageWire(one)])).length, 1);
  });

  it('an empty namespace or key matches absent and empty map keys', () => {
    const d = accessLogDecoder('', '');
    const wire = withMeta(nsStruct(undefined, mapEntry('', value(len(3, 'found')))));
    assert.equal(d(wire)[0]?.target, 'found');
  });
});

describe('StreamAccessLogsMessage decoder on truncated or corrupt input', () => {
  const samples: Buffer[] = [
    serialize(httpLogsMessage([httpEntry({ status: 200, flags: ['upstreamRemoteReset'], filterMetadata: taggedMetadata('default/a') })])),
    serialize(httpLogsMessage([httpEntry({ status: 503 }), httpEntry({ status: 200, filterMetadata: taggedMetadata('default/b') })], false)),
  ];

  it('throws CodecError for every strict prefix of a message', () => {
    // Each prefix cuts the http_logs field short; with an identifier first, every prefix that ends
    // inside the identifier or the http_logs field does.
    const identifierEnd = serialize({ identifier: httpLogsMessage([])['identifier'] }).length;
    const wire = samples[0]!;
    for (let n = 1; n < wire.length; n++) {
      if (n !== identifierEnd) assert.throws(() => decode(wire.subarray(0, n)), CodecError, `prefix of ${n}/${wire.length} bytes`);
    }
    assert.deepStrictEqual(decode(wire.subarray(0, identifierEnd)), []);
    for (const wire of samples.slice(1)) {
      for (let n = 1; n < wire.length; n++) assert.throws(() => decode(wire.subarray(0, n)), CodecError, `prefix of ${n}/${wire.length} bytes`);
    }
  });

  it('throws CodecError for groups, field 0, overlong varints, lengths past the end and wrong wire types on the read path', () => {
    const tagged = metadata(mapEntry('tollgate', struct(mapEntry('target', value(len(3, 'a'))))));
    const bad: [string, Buffer][] = [
      ['start group', Buffer.concat([key(20, 3), key(20, 4)])],
      ['wire type 7', key(20, 7)],
      ['field number 0', Buffer.from([0x00, 0x01])],
      ['11-byte varint', Buffer.concat([key(20, 0), Buffer.alloc(10, 0xff), Buffer.from([0x01])])],
      ['length past the end', Buffer.concat([key(2, 2), varint(100), Buffer.alloc(10)])],
      ['length of 4 GiB', Buffer.concat([key(2, 2), varint(0xffffffff)])],
      ['nested length past its parent', len(2, Buffer.concat([key(1, 2), varint(50), Buffer.alloc(5)]))],
      ['http_logs as varint', vint(2, 1)],
      ['tcp_logs as varint', vint(3, 1)],
      ['log_entry as varint', len(2, vint(1, 1))],
      ['common_properties as varint', messageWire(vint(1, 1))],
      ['response as fixed32', messageWire(Buffer.concat([key(4, 5), Buffer.alloc(4)]))],
      ['response_code as varint', messageWire(entryWire(Buffer.alloc(0), vint(1, 200)))],
      ['response code value as bytes', messageWire(entryWire(Buffer.alloc(0), len(1, len(1, 'x'))))],
      ['11-byte response code', messageWire(entryWire(Buffer.alloc(0), len(1, Buffer.concat([key(1, 0), Buffer.alloc(10, 0xff), Buffer.from([1])]))))],
      ['flag as bytes', messageWire(entryWire(len(16, len(5, 'x'))))],
      ['metadata as varint', messageWire(entryWire(vint(17, 1)))],
      ['map key as varint', messageWire(entryWire(len(17, metadata(vint(1, 3)))))],
      ['string_value as varint', withMeta(nsStruct('tollgate', mapEntry('target', vint(3, 1))))],
      ['target value past its entry', withMeta(nsStruct('tollgate', Buffer.concat([len(1, 'target'), key(2, 2), varint(40)])))],
      ['corrupt tollgate struct', withMeta(Buffer.concat([tagged, len(1, mapEntry('tollgate', Buffer.from([0x0a, 0x05, 0x01])))]))],
    ];
    for (const [name, wire] of bad) assert.throws(() => decode(wire), CodecError, name);
  });

  it('never hangs or throws anything but CodecError on randomly corrupted messages', () => {
    const threw = fuzzCorrupted(samples, decode);
    assert.ok(threw > 100, `corruption must be detected often, detected ${threw} of 3000`);
  });
});
