/**
 * Static encoder for envoy.service.ext_proc.v3.ProcessingResponse, replacing proto-loader's
 * `encode(fromObject())` on the hot path. Input: the proto-loader object shape the handlers build
 * (ProcessingResponse: camelCase fields, enums as names, bytes as Buffer).
 *
 * Strict on purpose: a field, enum value or value type this encoder does not know throws a
 * CodecError naming it (proto-loader silently drops unknown fields and enum names, so a typo would
 * lose a header mutation). Such a throw happens inside grpc-js, after the handler returned, so
 * encode-response.test.ts encodes every answer the handlers can build.
 *
 * Two passes, one allocation: the sizing pass validates the message and records, in pre-order, the
 * length of every nested message and the UTF-8 length of every string; the write pass replays them
 * into a buffer of the exact size. Fields are written in the order of the object's keys (protobuf
 * allows any order); proto3 defaults of plain scalars are omitted, oneof members always written.
 *
 * Supported (field numbers from envoy/service/ext_proc/v3/external_processor.proto,
 * envoy/config/core/v3/base.proto, envoy/type/v3/http_status.proto,
 * envoy/extensions/filters/http/ext_proc/v3/processing_mode.proto, google/protobuf/struct.proto):
 * every ProcessingResponse member except override_message_timeout (10) and the deprecated
 * HeaderValueOption.append (2). A string in a bytes field is encoded as UTF-8 (proto-loader would
 * base64-decode it).
 */
import type { ProcessingResponse } from '../../generated/envoy/service/ext_proc/v3/ProcessingResponse.js';
import { BODY_SEND_MODE, enumValue, HEADER_APPEND_ACTION, HEADER_SEND_MODE, NULL_VALUE, RESPONSE_STATUS, STATUS_CODE, type EnumTable } from './enums.js';
import { CodecError, FIXED64, LEN, tag, utf8Length, VARINT, varintSize, WireWriter } from './wire.js';

type Obj = { readonly [key: string]: unknown };

/** Pre-order record of nested message lengths and string lengths (sizing pass -> write pass). */
const slots: number[] = [];
let slotCount = 0;
let cursor = 0;
const w = new WireWriter();

/** Encodes one ProcessingResponse. Throws CodecError for anything it cannot encode faithfully. */
export function encodeProcessingResponse(msg: ProcessingResponse): Buffer {
  slotCount = 0;
  const m = asObj(msg, 'ProcessingResponse');
  const size = sizeProcessingResponse(m);
  cursor = 0;
  w.reset(size);
  writeProcessingResponse(m);
  if (cursor !== slotCount) throw new CodecError(`encoder slot mismatch: used ${cursor} of ${slotCount}`);
  return w.finish();
}

// ---- helpers shared by both passes ---------------------------------------------------------

function asObj(v: unknown, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new CodecError(`${field} must be a message object, got ${describe(v)}`);
  }
  return v as Obj;
}

function asArray(v: unknown, field: string): readonly unknown[] {
  if (!Array.isArray(v)) throw new CodecError(`${field} must be an array, got ${describe(v)}`);
  return v;
}

function asString(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new CodecError(`${field} must be a string, got ${describe(v)}`);
  return v;
}

function asBool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new CodecError(`${field} must be a boolean, got ${describe(v)}`);
  return v;
}

function asUint32(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new CodecError(`${field} must be a uint32, got ${describe(v)}`);
  return v;
}

function asBytes(v: unknown, field: string): Uint8Array | string {
  if (v instanceof Uint8Array || typeof v === 'string') return v;
  throw new CodecError(`${field} must be a Buffer, Uint8Array or string, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

function unknownField(key: string, message: string): never {
  throw new CodecError(`${message} has no field '${key}' this encoder knows (unsupported or misspelt)`);
}

/** Enforces one member per oneof; returns the member now set. */
function oneof(current: string | undefined, key: string, name: string): string {
  if (current !== undefined) throw new CodecError(`${name} oneof has both '${current}' and '${key}' set`);
  return key;
}

function slot(value: number): void {
  slots[slotCount++] = value;
}

/** Reserves a slot for a nested message's length before its children's slots (pre-order). */
function open(): number {
  slots[slotCount] = 0;
  return slotCount++;
}

/** Size of a length-delimited field (one-byte tag: every field number here is below 16). */
function lenField(n: number): number {
  return 1 + varintSize(n) + n;
}

/** Sizes a string field and records its UTF-8 length for the write pass. */
function sizeString(s: string): number {
  const len = utf8Length(s);
  slot(len);
  return lenField(len);
}

/** Sizes a bytes field (a string is UTF-8 and takes a slot like a string field). */
function sizeBytes(b: Uint8Array | string): number {
  return typeof b === 'string' ? sizeString(b) : lenField(b.length);
}

function bytesEmpty(b: Uint8Array | string): boolean {
  return b.length === 0;
}

function sizeEnum(t: EnumTable, v: unknown, field: string): number {
  const n = enumValue(t, v, field);
  return n === 0 ? 0 : 1 + varintSize(n);
}

function writeLenHeader(field: number): void {
  w.uint32(tag(field, LEN));
  w.uint32(slots[cursor++] as number);
}

function writeString(field: number, s: string): void {
  const len = slots[cursor++] as number;
  w.uint32(tag(field, LEN));
  w.uint32(len);
  w.string(s, len);
}

function writeBytes(field: number, b: Uint8Array | string): void {
  if (typeof b === 'string') return writeString(field, b);
  w.uint32(tag(field, LEN));
  w.uint32(b.length);
  w.bytes(b);
}

function writeEnum(field: number, t: EnumTable, v: unknown, name: string): void {
  const n = enumValue(t, v, name);
  if (n === 0) return;
  w.uint32(tag(field, VARINT));
  w.uint32(n);
}

function writeBool(field: number, b: boolean): void {
  w.uint32(tag(field, VARINT));
  w.uint32(b ? 1 : 0);
}

// ---- ProcessingResponse ------------------------------------------------------------------------

function sizeProcessingResponse(m: Obj): number {
  let n = 0;
  let member: string | undefined;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'requestHeaders':
      case 'responseHeaders':
      case 'requestBody':
      case 'responseBody':
        member = oneof(member, k, 'ProcessingResponse.response');
        n += lenField(sizeWithCommonResponse(asObj(v, k), k));
        break;
      case 'requestTrailers':
      case 'responseTrailers':
        member = oneof(member, k, 'ProcessingResponse.response');
        n += lenField(sizeTrailersResponse(asObj(v, k), k));
        break;
      case 'immediateResponse':
        member = oneof(member, k, 'ProcessingResponse.response');
        n += lenField(sizeImmediateResponse(asObj(v, k)));
        break;
      case 'dynamicMetadata':
        n += lenField(sizeStruct(asObj(v, k), k));
        break;
      case 'modeOverride':
        n += lenField(sizeProcessingMode(asObj(v, k)));
        break;
      default:
        unknownField(k, 'ProcessingResponse');
    }
  }
  return n;
}

const RESPONSE_FIELD: Readonly<Record<string, number>> = {
  requestHeaders: 1,
  responseHeaders: 2,
  requestBody: 3,
  responseBody: 4,
  requestTrailers: 5,
  responseTrailers: 6,
  immediateResponse: 7,
  dynamicMetadata: 8,
  modeOverride: 9,
};

function writeProcessingResponse(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    writeLenHeader(RESPONSE_FIELD[k] as number);
    switch (k) {
      case 'requestHeaders':
      case 'responseHeaders':
      case 'requestBody':
      case 'responseBody':
        writeWithCommonResponse(v as Obj);
        break;
      case 'requestTrailers':
      case 'responseTrailers':
        writeTrailersResponse(v as Obj);
        break;
      case 'immediateResponse':
        writeImmediateResponse(v as Obj);
        break;
      case 'dynamicMetadata':
        writeStruct(v as Obj);
        break;
      default: // modeOverride (the sizing pass rejected anything else)
        writeProcessingMode(v as Obj);
    }
  }
}

// ---- HeadersResponse / BodyResponse (response = 1), TrailersResponse (header_mutation = 1) -----

function sizeWithCommonResponse(m: Obj, name: string): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k !== 'response') unknownField(k, name);
    n += lenField(sizeCommonResponse(asObj(v, `${name}.response`)));
  }
  return (slots[s] = n);
}

function writeWithCommonResponse(m: Obj): void {
  const v = m['response'];
  if (v == null) return;
  writeLenHeader(1);
  writeCommonResponse(v as Obj);
}

function sizeTrailersResponse(m: Obj, name: string): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k !== 'headerMutation') unknownField(k, name);
    n += lenField(sizeHeaderMutation(asObj(v, `${name}.headerMutation`), `${name}.headerMutation`));
  }
  return (slots[s] = n);
}

function writeTrailersResponse(m: Obj): void {
  const v = m['headerMutation'];
  if (v == null) return;
  writeLenHeader(1);
  writeHeaderMutation(v as Obj);
}

// ---- CommonResponse ----------------------------------------------------------------------------

function sizeCommonResponse(m: Obj): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'status':
        n += sizeEnum(RESPONSE_STATUS, v, 'CommonResponse.status');
        break;
      case 'headerMutation':
        n += lenField(sizeHeaderMutation(asObj(v, 'CommonResponse.headerMutation'), 'CommonResponse.headerMutation'));
        break;
      case 'bodyMutation':
        n += lenField(sizeBodyMutation(asObj(v, 'CommonResponse.bodyMutation')));
        break;
      case 'trailers':
        n += lenField(sizeHeaderMap(asObj(v, 'CommonResponse.trailers')));
        break;
      case 'clearRouteCache':
        if (asBool(v, 'CommonResponse.clearRouteCache')) n += 2;
        break;
      default:
        unknownField(k, 'CommonResponse');
    }
  }
  return (slots[s] = n);
}

function writeCommonResponse(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'status':
        writeEnum(1, RESPONSE_STATUS, v, 'CommonResponse.status');
        break;
      case 'headerMutation':
        writeLenHeader(2);
        writeHeaderMutation(v as Obj);
        break;
      case 'bodyMutation':
        writeLenHeader(3);
        writeBodyMutation(v as Obj);
        break;
      case 'trailers':
        writeLenHeader(4);
        writeHeaderMap(v as Obj);
        break;
      default: // clearRouteCache
        if (v === true) writeBool(5, true);
    }
  }
}

// ---- HeaderMutation, HeaderValueOption, HeaderValue, HeaderMap ---------------------------------

function sizeHeaderMutation(m: Obj, name: string): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'setHeaders':
        for (const h of asArray(v, `${name}.setHeaders`)) n += lenField(sizeHeaderValueOption(asObj(h, `${name}.setHeaders[]`)));
        break;
      case 'removeHeaders':
        for (const h of asArray(v, `${name}.removeHeaders`)) n += sizeString(asString(h, `${name}.removeHeaders[]`));
        break;
      default:
        unknownField(k, name);
    }
  }
  return (slots[s] = n);
}

function writeHeaderMutation(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k === 'setHeaders') {
      for (const h of v as readonly Obj[]) {
        writeLenHeader(1);
        writeHeaderValueOption(h);
      }
    } else {
      for (const h of v as readonly string[]) writeString(2, h);
    }
  }
}

function sizeHeaderValueOption(m: Obj): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'header':
        n += lenField(sizeHeaderValue(asObj(v, 'HeaderValueOption.header')));
        break;
      case 'appendAction':
        n += sizeEnum(HEADER_APPEND_ACTION, v, 'HeaderValueOption.appendAction');
        break;
      case 'keepEmptyValue':
        if (asBool(v, 'HeaderValueOption.keepEmptyValue')) n += 2;
        break;
      default:
        // Includes the deprecated `append` (BoolValue): use appendAction.
        unknownField(k, 'HeaderValueOption');
    }
  }
  return (slots[s] = n);
}

function writeHeaderValueOption(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'header':
        writeLenHeader(1);
        writeHeaderValue(v as Obj);
        break;
      case 'appendAction':
        writeEnum(3, HEADER_APPEND_ACTION, v, 'HeaderValueOption.appendAction');
        break;
      default: // keepEmptyValue
        if (v === true) writeBool(4, true);
    }
  }
}

function sizeHeaderValue(m: Obj): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'key':
      case 'value': {
        const str = asString(v, `HeaderValue.${k}`);
        if (str.length > 0) n += sizeString(str);
        break;
      }
      case 'rawValue': {
        const b = asBytes(v, 'HeaderValue.rawValue');
        if (!bytesEmpty(b)) n += sizeBytes(b);
        break;
      }
      default:
        unknownField(k, 'HeaderValue');
    }
  }
  return (slots[s] = n);
}

function writeHeaderValue(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'key':
        if ((v as string).length > 0) writeString(1, v as string);
        break;
      case 'value':
        if ((v as string).length > 0) writeString(2, v as string);
        break;
      default: // rawValue
        if ((v as Uint8Array | string).length > 0) writeBytes(3, v as Uint8Array | string);
    }
  }
}

function sizeHeaderMap(m: Obj): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k !== 'headers') unknownField(k, 'HeaderMap');
    for (const h of asArray(v, 'HeaderMap.headers')) n += lenField(sizeHeaderValue(asObj(h, 'HeaderMap.headers[]')));
  }
  return (slots[s] = n);
}

function writeHeaderMap(m: Obj): void {
  const v = m['headers'];
  if (v == null) return;
  for (const h of v as readonly Obj[]) {
    writeLenHeader(1);
    writeHeaderValue(h);
  }
}

// ---- BodyMutation (oneof mutation: body = 1, clear_body = 2) -----------------------------------

function sizeBodyMutation(m: Obj): number {
  const s = open();
  let n = 0;
  let member: string | undefined;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'body':
        member = oneof(member, k, 'BodyMutation.mutation');
        n += sizeBytes(asBytes(v, 'BodyMutation.body'));
        break;
      case 'clearBody':
        member = oneof(member, k, 'BodyMutation.mutation');
        asBool(v, 'BodyMutation.clearBody');
        n += 2;
        break;
      default:
        unknownField(k, 'BodyMutation');
    }
  }
  return (slots[s] = n);
}

function writeBodyMutation(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k === 'body') writeBytes(1, v as Uint8Array | string);
    else writeBool(2, v as boolean);
  }
}

// ---- ImmediateResponse, HttpStatus, GrpcStatus -------------------------------------------------

function sizeImmediateResponse(m: Obj): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'status':
        n += lenField(sizeHttpStatus(asObj(v, 'ImmediateResponse.status')));
        break;
      case 'headers':
        n += lenField(sizeHeaderMutation(asObj(v, 'ImmediateResponse.headers'), 'ImmediateResponse.headers'));
        break;
      case 'body': {
        const b = asBytes(v, 'ImmediateResponse.body');
        if (!bytesEmpty(b)) n += sizeBytes(b);
        break;
      }
      case 'grpcStatus':
        n += lenField(sizeGrpcStatus(asObj(v, 'ImmediateResponse.grpcStatus')));
        break;
      case 'details': {
        const str = asString(v, 'ImmediateResponse.details');
        if (str.length > 0) n += sizeString(str);
        break;
      }
      default:
        unknownField(k, 'ImmediateResponse');
    }
  }
  return (slots[s] = n);
}

function writeImmediateResponse(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'status':
        writeLenHeader(1);
        writeHttpStatus(v as Obj);
        break;
      case 'headers':
        writeLenHeader(2);
        writeHeaderMutation(v as Obj);
        break;
      case 'body':
        if ((v as Uint8Array | string).length > 0) writeBytes(3, v as Uint8Array | string);
        break;
      case 'grpcStatus':
        writeLenHeader(4);
        writeGrpcStatus(v as Obj);
        break;
      default: // details
        if ((v as string).length > 0) writeString(5, v as string);
    }
  }
}

function httpStatusCode(v: unknown): number {
  const code = enumValue(STATUS_CODE, v, 'HttpStatus.code');
  if (code === 0) throw new CodecError('HttpStatus.code must not be 0 (Empty); Envoy rejects it');
  return code;
}

function sizeHttpStatus(m: Obj): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k !== 'code') unknownField(k, 'HttpStatus');
    n += 1 + varintSize(httpStatusCode(v));
  }
  return (slots[s] = n);
}

function writeHttpStatus(m: Obj): void {
  const v = m['code'];
  if (v == null) return;
  w.uint32(tag(1, VARINT));
  w.uint32(httpStatusCode(v));
}

function sizeGrpcStatus(m: Obj): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k !== 'status') unknownField(k, 'GrpcStatus');
    const code = asUint32(v, 'GrpcStatus.status');
    if (code !== 0) n += 1 + varintSize(code);
  }
  return (slots[s] = n);
}

function writeGrpcStatus(m: Obj): void {
  const v = m['status'];
  if (v == null || v === 0) return;
  w.uint32(tag(1, VARINT));
  w.uint32(v as number);
}

// ---- ProcessingMode ----------------------------------------------------------------------------

const MODE_FIELDS: Readonly<Record<string, readonly [number, EnumTable]>> = {
  requestHeaderMode: [1, HEADER_SEND_MODE],
  responseHeaderMode: [2, HEADER_SEND_MODE],
  requestBodyMode: [3, BODY_SEND_MODE],
  responseBodyMode: [4, BODY_SEND_MODE],
  requestTrailerMode: [5, HEADER_SEND_MODE],
  responseTrailerMode: [6, HEADER_SEND_MODE],
};

function sizeProcessingMode(m: Obj): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    const field = Object.hasOwn(MODE_FIELDS, k) ? MODE_FIELDS[k] : undefined;
    if (!field) unknownField(k, 'ProcessingMode');
    n += sizeEnum(field[1], v, `ProcessingMode.${k}`);
  }
  return (slots[s] = n);
}

function writeProcessingMode(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    const field = MODE_FIELDS[k] as readonly [number, EnumTable];
    writeEnum(field[0], field[1], v, `ProcessingMode.${k}`);
  }
}

// ---- google.protobuf.Struct / Value / ListValue ------------------------------------------------
// Struct { map<string, Value> fields = 1 } (a map entry is { key = 1, value = 2 });
// Value { oneof kind: null_value = 1, number_value = 2 (double), string_value = 3, bool_value = 4,
// struct_value = 5, list_value = 6 }; ListValue { repeated Value values = 1 }.

function sizeStruct(m: Obj, name: string): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k !== 'fields') unknownField(k, `${name} (Struct)`);
    const fields = asObj(v, `${name}.fields`);
    for (const key in fields) {
      const entry = open();
      const value = fields[key];
      if (value == null) throw new CodecError(`${name}.fields['${key}'] has no Value`);
      const len = sizeString(key) + lenField(sizeValue(asObj(value, `${name}.fields['${key}']`), `${name}.fields['${key}']`));
      slots[entry] = len;
      n += lenField(len);
    }
  }
  return (slots[s] = n);
}

function writeStruct(m: Obj): void {
  const fields = m['fields'] as Obj | null | undefined;
  if (fields == null) return;
  for (const key in fields) {
    writeLenHeader(1);
    writeString(1, key);
    writeLenHeader(2);
    writeValue(fields[key] as Obj);
  }
}

function sizeValue(m: Obj, name: string): number {
  const s = open();
  let n = 0;
  let member: string | undefined;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    member = oneof(member, k, `${name} (Value) kind`);
    switch (k) {
      case 'nullValue':
        enumValue(NULL_VALUE, v, `${name}.nullValue`);
        n += 2;
        break;
      case 'numberValue':
        if (typeof v !== 'number') throw new CodecError(`${name}.numberValue must be a number, got ${describe(v)}`);
        n += 9;
        break;
      case 'stringValue':
        n += sizeString(asString(v, `${name}.stringValue`));
        break;
      case 'boolValue':
        asBool(v, `${name}.boolValue`);
        n += 2;
        break;
      case 'structValue':
        n += lenField(sizeStruct(asObj(v, `${name}.structValue`), `${name}.structValue`));
        break;
      case 'listValue':
        n += lenField(sizeListValue(asObj(v, `${name}.listValue`), `${name}.listValue`));
        break;
      default:
        unknownField(k, `${name} (Value)`);
    }
  }
  return (slots[s] = n);
}

function writeValue(m: Obj): void {
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    switch (k) {
      case 'nullValue':
        w.uint32(tag(1, VARINT));
        w.uint32(0);
        break;
      case 'numberValue':
        w.uint32(tag(2, FIXED64));
        w.double(v as number);
        break;
      case 'stringValue':
        writeString(3, v as string);
        break;
      case 'boolValue':
        writeBool(4, v as boolean);
        break;
      case 'structValue':
        writeLenHeader(5);
        writeStruct(v as Obj);
        break;
      default: // listValue
        writeLenHeader(6);
        writeListValue(v as Obj);
    }
  }
}

function sizeListValue(m: Obj, name: string): number {
  const s = open();
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v == null) continue;
    if (k !== 'values') unknownField(k, `${name} (ListValue)`);
    asArray(v, `${name}.values`).forEach((item, i) => {
      n += lenField(sizeValue(asObj(item, `${name}.values[${i}]`), `${name}.values[${i}]`));
    });
  }
  return (slots[s] = n);
}

function writeListValue(m: Obj): void {
  const v = m['values'];
  if (v == null) return;
  for (const item of v as readonly Obj[]) {
    writeLenHeader(1);
    writeValue(item);
  }
}
