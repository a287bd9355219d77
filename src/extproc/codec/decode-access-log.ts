/**
 * Static decoder for envoy.service.accesslog.v3.StreamAccessLogsMessage (Envoy's gRPC access log),
 * replacing proto-loader's `toObject(decode())` of every whole HTTPAccessLogEntry (timings,
 * addresses, TLS properties, headers...). For each HTTP entry it extracts only what
 * attempt-log.ts reads: the response code, a few response flags and one string of dynamic
 * metadata (`<namespace>.<key>`, Tollgate's `tollgate.target`). Everything else is skipped by its
 * length or wire type without being decoded: the identifier, TCP entries and all other fields.
 *
 * Field numbers (never guessed), from the protos proto-loader loads:
 * - envoy/service/accesslog/v3/als.proto (envoy-api in @grpc/grpc-js-xds): StreamAccessLogsMessage
 *   identifier = 1, oneof log_entries { http_logs = 2, tcp_logs = 3 };
 *   HTTPAccessLogEntries.log_entry = 1.
 * - envoy/data/accesslog/v3/accesslog.proto: HTTPAccessLogEntry common_properties = 1,
 *   response = 4; AccessLogCommon response_flags = 16, metadata = 17;
 *   HTTPResponseProperties.response_code = 1 (google.protobuf.UInt32Value, value = 1);
 *   ResponseFlags: see RESPONSE_FLAG_FIELDS.
 * - envoy/config/core/v3/base.proto: Metadata.filter_metadata = 1 (map<string, Struct>).
 * - google/protobuf/struct.proto (built into protobufjs): Struct.fields = 1 (map<string, Value>);
 *   Value oneof kind { null_value = 1, number_value = 2, string_value = 3, bool_value = 4,
 *   struct_value = 5, list_value = 6 }. Map entries: key = 1, value = 2.
 *
 * Protobuf's parsing rules are kept: a sub-message that appears twice merges (flags and response
 * code: last value wins; two http_logs batches concatenate), a map key that appears twice keeps
 * its last entry whole, a oneof keeps its last member (a TCP batch after an HTTP batch in one
 * message leaves no HTTP entries). protobufjs replaces a repeated sub-message instead of merging
 * it; Envoy never writes one twice, so the two agree on everything Envoy sends.
 */
import { CodecError, expectWireType, LEN, readTag, VARINT, WireReader } from './wire.js';

/** The response flags the access log handler reads, as bits of AccessLogEntrySummary.flags. */
export const ResponseFlag = {
  upstreamRequestTimeout: 1 << 0,
  upstreamRemoteReset: 1 << 1,
  upstreamConnectionTermination: 1 << 2,
  downstreamConnectionTermination: 1 << 3,
  streamIdleTimeout: 1 << 4,
  upstreamProtocolError: 1 << 5,
  downstreamRemoteReset: 1 << 6,
  upstreamConnectionFailure: 1 << 7,
  dnsResolutionFailure: 1 << 8,
} as const;
export type ResponseFlagName = keyof typeof ResponseFlag;

/** ResponseFlags field numbers (accesslog.proto) of the flags in ResponseFlag. */
export const RESPONSE_FLAG_FIELDS: Readonly<Record<ResponseFlagName, number>> = {
  upstreamRequestTimeout: 3,
  upstreamRemoteReset: 5,
  upstreamConnectionTermination: 7,
  downstreamConnectionTermination: 15,
  streamIdleTimeout: 17,
  upstreamProtocolError: 24,
  downstreamRemoteReset: 28,
  upstreamConnectionFailure: 6,
  dnsResolutionFailure: 27,
};

/** Bit of each ResponseFlags field number (0 for flags nobody reads). */
const FLAG_BIT_BY_FIELD: readonly number[] = (() => {
  const bits: number[] = [];
  for (let f = 0; f <= 28; f++) bits.push(0);
  for (const name of Object.keys(RESPONSE_FLAG_FIELDS) as ResponseFlagName[]) bits[RESPONSE_FLAG_FIELDS[name]] = ResponseFlag[name];
  return bits;
})();

/** What the handler needs from one HTTPAccessLogEntry. */
export interface AccessLogEntrySummary {
  /** response.response_code.value; 0 when absent. */
  responseCode: number;
  /** ResponseFlag bits that are set. */
  flags: number;
  /** Dynamic metadata `<namespace>.<key>` when it is a string value; otherwise undefined. */
  target: string | undefined;
}

/**
 * Builds a decoder for StreamAccessLogsMessage bytes that returns one summary per HTTP log entry
 * (an empty array for a TCP batch or a message without entries). Throws CodecError on truncated
 * or malformed input (grpc-js then ends the log stream with INTERNAL; Envoy opens a new one).
 */
export function accessLogDecoder(namespace: string, key: string): (buf: Buffer) => AccessLogEntrySummary[] {
  const ns = Buffer.from(namespace, 'utf8');
  const k = Buffer.from(key, 'utf8');

  /** StreamAccessLogsMessage. */
  function decode(buf: Buffer): AccessLogEntrySummary[] {
    const r = new WireReader(buf);
    const entries: AccessLogEntrySummary[] = [];
    while (r.pos < r.end) {
      const t = readTag(r);
      switch (t >>> 3) {
        case 2: {
          // http_logs: HTTPAccessLogEntries; a repeated occurrence appends (message merge).
          expectWireType(t, LEN, 'http_logs');
          const end = r.lengthEnd();
          const outerEnd = r.end;
          r.end = end;
          while (r.pos < end) {
            const e = readTag(r);
            if (e >>> 3 === 1) {
              expectWireType(e, LEN, 'HTTPAccessLogEntries.log_entry');
              entries.push(entry(r, r.lengthEnd()));
            } else r.skipField(e & 7);
          }
          r.end = outerEnd;
          break;
        }
        case 3:
          // tcp_logs: the other member of the oneof replaces any HTTP entries before it.
          expectWireType(t, LEN, 'tcp_logs');
          r.pos = r.lengthEnd();
          entries.length = 0;
          break;
        default:
          // identifier (1) and unknown fields.
          r.skipField(t & 7);
      }
    }
    return entries;
  }

  /** HTTPAccessLogEntry ending at `end`; leaves the reader at `end`. */
  function entry(r: WireReader, end: number): AccessLogEntrySummary {
    const outerEnd = r.end;
    r.end = end;
    const out: AccessLogEntrySummary = { responseCode: 0, flags: 0, target: undefined };
    while (r.pos < end) {
      const t = readTag(r);
      switch (t >>> 3) {
        case 1:
          expectWireType(t, LEN, 'HTTPAccessLogEntry.common_properties');
          common(r, r.lengthEnd(), out);
          break;
        case 4:
          expectWireType(t, LEN, 'HTTPAccessLogEntry.response');
          response(r, r.lengthEnd(), out);
          break;
        default:
          // protocol_version (2), request (3) and unknown fields.
          r.skipField(t & 7);
      }
    }
    r.end = outerEnd;
    return out;
  }

  /** AccessLogCommon: response_flags (16) and metadata (17); timings, addresses, TLS... skipped. */
  function common(r: WireReader, end: number, out: AccessLogEntrySummary): void {
    const outerEnd = r.end;
    r.end = end;
    while (r.pos < end) {
      const t = readTag(r);
      switch (t >>> 3) {
        case 16:
          expectWireType(t, LEN, 'AccessLogCommon.response_flags');
          out.flags = responseFlags(r, r.lengthEnd(), out.flags);
          break;
        case 17:
          expectWireType(t, LEN, 'AccessLogCommon.metadata');
          metadata(r, r.lengthEnd(), out);
          break;
        default:
          r.skipField(t & 7);
      }
    }
    r.end = outerEnd;
  }

  /** ResponseFlags: the bools in RESPONSE_FLAG_FIELDS, merged into `flags`. */
  function responseFlags(r: WireReader, end: number, flags: number): number {
    const outerEnd = r.end;
    r.end = end;
    while (r.pos < end) {
      const t = readTag(r);
      const bit = FLAG_BIT_BY_FIELD[t >>> 3] ?? 0;
      if (bit !== 0) {
        expectWireType(t, VARINT, 'ResponseFlags flag');
        flags = r.bool() ? flags | bit : flags & ~bit;
      } else r.skipField(t & 7);
    }
    r.end = outerEnd;
    return flags;
  }

  /** HTTPResponseProperties: response_code (1, UInt32Value). */
  function response(r: WireReader, end: number, out: AccessLogEntrySummary): void {
    const outerEnd = r.end;
    r.end = end;
    while (r.pos < end) {
      const t = readTag(r);
      if (t >>> 3 === 1) {
        expectWireType(t, LEN, 'HTTPResponseProperties.response_code');
        const codeEnd = r.lengthEnd();
        r.end = codeEnd;
        while (r.pos < codeEnd) {
          const v = readTag(r);
          if (v >>> 3 === 1) {
            expectWireType(v, VARINT, 'UInt32Value.value');
            out.responseCode = uint32Varint(r);
          } else r.skipField(v & 7);
        }
        r.end = end;
      } else r.skipField(t & 7);
    }
    r.end = outerEnd;
  }

  /** Metadata: filter_metadata (1) entries; only the namespace's entry is decoded. */
  function metadata(r: WireReader, end: number, out: AccessLogEntrySummary): void {
    const outerEnd = r.end;
    r.end = end;
    while (r.pos < end) {
      const t = readTag(r);
      if (t >>> 3 === 1) {
        expectWireType(t, LEN, 'Metadata.filter_metadata');
        const entryEnd = r.lengthEnd();
        const found = mapEntry(r, entryEnd, ns);
        // A later entry for the same key replaces the earlier one whole (map semantics).
        if (found === EMPTY_VALUE) out.target = undefined;
        else if (found === VALUE) out.target = structString(r, valueStart, valueEnd);
        r.pos = entryEnd;
        r.end = end;
      } else r.skipField(t & 7);
    }
    r.end = outerEnd;
  }

  /** Struct: the string value of field `key`, or undefined. */
  function structString(r: WireReader, start: number, end: number): string | undefined {
    r.pos = start;
    r.end = end;
    let result: string | undefined;
    while (r.pos < end) {
      const t = readTag(r);
      if (t >>> 3 === 1) {
        expectWireType(t, LEN, 'Struct.fields');
        const entryEnd = r.lengthEnd();
        const found = mapEntry(r, entryEnd, k);
        if (found === EMPTY_VALUE) result = undefined;
        else if (found === VALUE) result = valueString(r, valueStart, valueEnd);
        r.pos = entryEnd;
        r.end = end;
      } else r.skipField(t & 7);
    }
    return result;
  }

  /** Payload of the value mapEntry found last (valid right after it returned VALUE). */
  let valueStart = 0;
  let valueEnd = 0;

  /**
   * Scans a map entry (key = 1 string, value = 2 message) ending at `end`, fields in any order,
   * without decoding it. OTHER_KEY unless its key equals `want` byte for byte (no string is built
   * for other keys); EMPTY_VALUE if it has no value; else VALUE with the payload of its (last)
   * value in valueStart/valueEnd.
   */
  function mapEntry(r: WireReader, end: number, want: Buffer): number {
    r.end = end;
    let keyMatches = want.length === 0; // an absent key is the empty string
    let found = EMPTY_VALUE;
    while (r.pos < end) {
      const t = readTag(r);
      switch (t >>> 3) {
        case 1: {
          expectWireType(t, LEN, 'map key');
          const keyEnd = r.lengthEnd();
          keyMatches = keyEnd - r.pos === want.length && sameBytes(r.buf, r.pos, want);
          r.pos = keyEnd;
          break;
        }
        case 2:
          expectWireType(t, LEN, 'map value');
          valueEnd = r.lengthEnd();
          valueStart = r.pos;
          r.pos = valueEnd;
          found = VALUE;
          break;
        default:
          r.skipField(t & 7);
      }
    }
    return keyMatches ? found : OTHER_KEY;
  }

  return decode;
}

/** Whether buf[start, start + want.length) equals want (a loop: short keys, cheaper than a native call). */
function sameBytes(buf: Buffer, start: number, want: Buffer): boolean {
  for (let i = 0; i < want.length; i++) if (buf[start + i] !== want[i]) return false;
  return true;
}

/** mapEntry results. */
const OTHER_KEY = 0;
const EMPTY_VALUE = 1;
const VALUE = 2;

/** Value: string_value (3) if it is the last member of its `kind` oneof, else undefined. */
function valueString(r: WireReader, start: number, end: number): string | undefined {
  r.pos = start;
  r.end = end;
  let result: string | undefined;
  while (r.pos < end) {
    const t = readTag(r);
    const field = t >>> 3;
    if (field === 3) {
      expectWireType(t, LEN, 'Value.string_value');
      result = r.string();
    } else {
      // null/number/bool/struct/list (1, 2, 4, 5, 6) replace a string (oneof); unknown fields do not.
      if (field <= 6) result = undefined;
      r.skipField(t & 7);
    }
  }
  return result;
}

/** A uint32 varint as protobufjs reads it: up to 10 bytes, the low 32 bits, unsigned. */
function uint32Varint(r: WireReader): number {
  const buf = r.buf;
  let pos = r.pos;
  let result = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= r.end) throw new CodecError('truncated varint');
    const byte = buf[pos++] as number;
    if (i < 5) result += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) {
      r.pos = pos;
      return result % 2 ** 32;
    }
  }
  throw new CodecError('varint longer than 10 bytes');
}
