/**
 * Static decoder for envoy.service.ext_proc.v3.ProcessingRequest, replacing proto-loader's
 * `toObject(decode())` on the hot path. It produces the proto-loader object shape the handlers read
 * (ProcessingRequest__Output: `request` oneof name, camelCase fields, bytes as Buffer), with the
 * fields it decodes always present at their proto3 defaults (stable object shapes for V8).
 *
 * Decoded: the `request` oneof (request/response headers, bodies, trailers) and the string values
 * of `attributes` (9; Envoy's `request_attributes`, for example `source.address`). Skipped without
 * decoding: metadata_context (8), observability_mode (10), HttpHeaders.attributes (2), attribute
 * values other than strings and any field unknown to this version. Field numbers are taken from
 * envoy/service/ext_proc/v3/external_processor.proto and envoy/config/core/v3/base.proto of the
 * envoy-api tree in @grpc/grpc-js-xds (the same files proto-loader loads).
 *
 * Zero copy: `body` and `rawValue` are views (subarray) of the buffer grpc-js passes in. That is
 * safe because grpc-js (server-interceptors.js / stream-decoder.js, 1.14) builds every message with
 * Buffer.concat (or a fresh inflate output) and never reuses or writes that buffer after handing it
 * to the deserializer; protobufjs (the previous path) returned views of it as well. A view of a small
 * message keeps its (at most 8 KiB) allocation pool slab alive while referenced.
 */
import type { HeaderMap__Output } from '../../generated/envoy/config/core/v3/HeaderMap.js';
import type { HeaderValue__Output } from '../../generated/envoy/config/core/v3/HeaderValue.js';
import type { HttpBody__Output } from '../../generated/envoy/service/ext_proc/v3/HttpBody.js';
import type { HttpHeaders__Output } from '../../generated/envoy/service/ext_proc/v3/HttpHeaders.js';
import type { HttpTrailers__Output } from '../../generated/envoy/service/ext_proc/v3/HttpTrailers.js';
import type { ProcessingRequest__Output } from '../../generated/envoy/service/ext_proc/v3/ProcessingRequest.js';
import type { Struct__Output } from '../../generated/google/protobuf/Struct.js';
import type { Value__Output } from '../../generated/google/protobuf/Value.js';
import { expectWireType, latin1Text, LEN, readTag, utf8Text, VARINT, WireReader } from './wire.js';

const EMPTY: Buffer = Buffer.alloc(0);

/** Decodes one ProcessingRequest. Throws CodecError on truncated or malformed input. */
export function decodeProcessingRequest(buf: Buffer): ProcessingRequest__Output {
  const r = new WireReader(buf);
  const out: ProcessingRequest__Output = {};
  while (r.pos < r.end) {
    const t = readTag(r);
    switch (t >>> 3) {
      case 2:
        expectWireType(t, LEN, 'request_headers');
        clearOneof(out);
        out.request = 'requestHeaders';
        out.requestHeaders = decodeHttpHeaders(r, r.lengthEnd());
        break;
      case 3:
        expectWireType(t, LEN, 'response_headers');
        clearOneof(out);
        out.request = 'responseHeaders';
        out.responseHeaders = decodeHttpHeaders(r, r.lengthEnd());
        break;
      case 4:
        expectWireType(t, LEN, 'request_body');
        clearOneof(out);
        out.request = 'requestBody';
        out.requestBody = decodeHttpBody(r, r.lengthEnd());
        break;
      case 5:
        expectWireType(t, LEN, 'response_body');
        clearOneof(out);
        out.request = 'responseBody';
        out.responseBody = decodeHttpBody(r, r.lengthEnd());
        break;
      case 6:
        expectWireType(t, LEN, 'request_trailers');
        clearOneof(out);
        out.request = 'requestTrailers';
        out.requestTrailers = decodeHttpTrailers(r, r.lengthEnd());
        break;
      case 7:
        expectWireType(t, LEN, 'response_trailers');
        clearOneof(out);
        out.request = 'responseTrailers';
        out.responseTrailers = decodeHttpTrailers(r, r.lengthEnd());
        break;
      case 9:
        expectWireType(t, LEN, 'attributes');
        decodeAttributeEntry(r, r.lengthEnd(), (out.attributes ??= {}));
        break;
      default:
        // metadata_context (8), observability_mode (10) and unknown fields.
        r.skipField(t & 7);
    }
  }
  return out;
}

/** A second member of the `request` oneof replaces the first (protobuf's last-one-wins rule). */
function clearOneof(out: ProcessingRequest__Output): void {
  if (out.request !== undefined) delete out[out.request];
}

/** Decodes an HttpHeaders message ending at `end`; leaves the reader at `end`. */
function decodeHttpHeaders(r: WireReader, end: number): HttpHeaders__Output {
  const outerEnd = r.end;
  r.end = end;
  let headers: HeaderMap__Output | undefined;
  let endOfStream = false;
  while (r.pos < end) {
    const t = readTag(r);
    switch (t >>> 3) {
      case 1:
        expectWireType(t, LEN, 'HttpHeaders.headers');
        headers = decodeHeaderMap(r, r.lengthEnd());
        break;
      case 3:
        expectWireType(t, VARINT, 'HttpHeaders.end_of_stream');
        endOfStream = r.bool();
        break;
      default:
        // attributes (2, deprecated) and unknown fields.
        r.skipField(t & 7);
    }
  }
  r.end = outerEnd;
  return { headers: headers ?? { headers: [] }, endOfStream };
}

function decodeHttpBody(r: WireReader, end: number): HttpBody__Output {
  const outerEnd = r.end;
  r.end = end;
  let body = EMPTY;
  let endOfStream = false;
  while (r.pos < end) {
    const t = readTag(r);
    switch (t >>> 3) {
      case 1:
        expectWireType(t, LEN, 'HttpBody.body');
        body = r.bytesView();
        break;
      case 2:
        expectWireType(t, VARINT, 'HttpBody.end_of_stream');
        endOfStream = r.bool();
        break;
      default:
        r.skipField(t & 7);
    }
  }
  r.end = outerEnd;
  return { body, endOfStream };
}

function decodeHttpTrailers(r: WireReader, end: number): HttpTrailers__Output {
  const outerEnd = r.end;
  r.end = end;
  let trailers: HeaderMap__Output | undefined;
  while (r.pos < end) {
    const t = readTag(r);
    if (t >>> 3 === 1) {
      expectWireType(t, LEN, 'HttpTrailers.trailers');
      trailers = decodeHeaderMap(r, r.lengthEnd());
    } else r.skipField(t & 7);
  }
  r.end = outerEnd;
  return { trailers: trailers ?? { headers: [] } };
}

/**
 * Decodes a HeaderMap (repeated HeaderValue headers = 1). Header names are ASCII: instead of one
 * native string decode per name, the whole map is read as Latin-1 once and each ASCII name or
 * value is a substring of it (2-3x faster for a typical request; non-ASCII falls back to UTF-8).
 */
function decodeHeaderMap(r: WireReader, end: number): HeaderMap__Output {
  const outerEnd = r.end;
  r.end = end;
  const headers: HeaderValue__Output[] = [];
  const base = r.pos;
  const text = latin1Text(r.buf, base, end);
  while (r.pos < end) {
    const t = readTag(r);
    if (t >>> 3 === 1) {
      expectWireType(t, LEN, 'HeaderMap.headers');
      headers.push(decodeHeaderValue(r, r.lengthEnd(), text, base));
    } else r.skipField(t & 7);
  }
  r.end = outerEnd;
  return { headers };
}

/** Decodes a HeaderValue: key = 1, value = 2, raw_value = 3 (Envoy sends raw_value). */
function decodeHeaderValue(r: WireReader, end: number, text: string, base: number): HeaderValue__Output {
  const outerEnd = r.end;
  r.end = end;
  let key = '';
  let value = '';
  let rawValue = EMPTY;
  while (r.pos < end) {
    const t = readTag(r);
    switch (t >>> 3) {
      case 1:
        expectWireType(t, LEN, 'HeaderValue.key');
        key = headerString(r, text, base);
        break;
      case 2:
        expectWireType(t, LEN, 'HeaderValue.value');
        value = headerString(r, text, base);
        break;
      case 3:
        expectWireType(t, LEN, 'HeaderValue.raw_value');
        rawValue = r.bytesView();
        break;
      default:
        r.skipField(t & 7);
    }
  }
  r.end = outerEnd;
  return { key, value, rawValue };
}

/** A string field inside a HeaderMap whose bytes are `text` from offset `base` (see decodeHeaderMap). */
function headerString(r: WireReader, text: string, base: number): string {
  const end = r.lengthEnd();
  const start = r.pos;
  r.pos = end;
  const buf = r.buf;
  for (let i = start; i < end; i++) if ((buf[i] as number) > 0x7f) return utf8Text(buf, start, end);
  return text.substring(start - base, end - base);
}

/** One `map<string, Struct> attributes` entry (key = 1, value = 2) into `out`. */
function decodeAttributeEntry(r: WireReader, end: number, out: Record<string, Struct__Output>): void {
  const outerEnd = r.end;
  r.end = end;
  let key = '';
  let value: Struct__Output = { fields: {} };
  while (r.pos < end) {
    const t = readTag(r);
    switch (t >>> 3) {
      case 1:
        expectWireType(t, LEN, 'attributes.key');
        key = r.string();
        break;
      case 2:
        expectWireType(t, LEN, 'attributes.value');
        value = decodeStringStruct(r, r.lengthEnd());
        break;
      default:
        r.skipField(t & 7);
    }
  }
  r.end = outerEnd;
  out[key] = value;
}

/** A Struct (fields = 1: map<string, Value>) keeping only string values (Value.string_value = 3). */
function decodeStringStruct(r: WireReader, end: number): Struct__Output {
  const outerEnd = r.end;
  r.end = end;
  const fields: Record<string, Value__Output> = {};
  while (r.pos < end) {
    const t = readTag(r);
    if (t >>> 3 !== 1) {
      r.skipField(t & 7);
      continue;
    }
    expectWireType(t, LEN, 'Struct.fields');
    const entryEnd = r.lengthEnd();
    const entryOuter = r.end;
    r.end = entryEnd;
    let name = '';
    let text: string | undefined;
    while (r.pos < entryEnd) {
      const et = readTag(r);
      if (et >>> 3 === 1) {
        expectWireType(et, LEN, 'Struct.fields.key');
        name = r.string();
      } else if (et >>> 3 === 2) {
        expectWireType(et, LEN, 'Struct.fields.value');
        const valueEnd = r.lengthEnd();
        const valueOuter = r.end;
        r.end = valueEnd;
        text = undefined;
        while (r.pos < valueEnd) {
          const vt = readTag(r);
          if (vt >>> 3 === 3 && (vt & 7) === LEN) text = r.string();
          else r.skipField(vt & 7);
        }
        r.end = valueOuter;
      } else r.skipField(et & 7);
    }
    r.end = entryOuter;
    if (text !== undefined) fields[name] = { stringValue: text, kind: 'stringValue' };
  }
  r.end = outerEnd;
  return { fields };
}
