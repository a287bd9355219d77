/**
 * Enum tables the response encoder needs, copied from the protos proto-loader loads (the envoy-api
 * tree in @grpc/grpc-js-xds); enums.test.ts checks every table against those files, so a table
 * that drifts from the protos fails a test rather than sending a wrong value to Envoy.
 */

import { CodecError } from './wire.js';

/** One proto enum: name -> number. Numbers not listed here are rejected by the encoder. */
export type EnumTable = ReadonlyMap<string, number>;

function table(entries: Readonly<Record<string, number>>): EnumTable {
  return new Map(Object.entries(entries));
}

/** envoy.service.ext_proc.v3.CommonResponse.ResponseStatus */
export const RESPONSE_STATUS = table({ CONTINUE: 0, CONTINUE_AND_REPLACE: 1 });

/** envoy.config.core.v3.HeaderValueOption.HeaderAppendAction */
export const HEADER_APPEND_ACTION = table({
  APPEND_IF_EXISTS_OR_ADD: 0,
  ADD_IF_ABSENT: 1,
  OVERWRITE_IF_EXISTS_OR_ADD: 2,
  OVERWRITE_IF_EXISTS: 3,
});

/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode */
export const HEADER_SEND_MODE = table({ DEFAULT: 0, SEND: 1, SKIP: 2 });

/**
 * envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode. The protos we load predate
 * FULL_DUPLEX_STREAMED, so it is rejected (Envoy forbids it in mode_override anyway).
 */
export const BODY_SEND_MODE = table({ NONE: 0, STREAMED: 1, BUFFERED: 2, BUFFERED_PARTIAL: 3 });

/** google.protobuf.NullValue */
export const NULL_VALUE = table({ NULL_VALUE: 0 });

/** envoy.type.v3.StatusCode (HttpStatus.code); 0 (`Empty`) is listed but Envoy rejects it. */
export const STATUS_CODE = table({
  Empty: 0,
  Continue: 100,
  OK: 200,
  Created: 201,
  Accepted: 202,
  NonAuthoritativeInformation: 203,
  NoContent: 204,
  ResetContent: 205,
  PartialContent: 206,
  MultiStatus: 207,
  AlreadyReported: 208,
  IMUsed: 226,
  MultipleChoices: 300,
  MovedPermanently: 301,
  Found: 302,
  SeeOther: 303,
  NotModified: 304,
  UseProxy: 305,
  TemporaryRedirect: 307,
  PermanentRedirect: 308,
  BadRequest: 400,
  Unauthorized: 401,
  PaymentRequired: 402,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  ProxyAuthenticationRequired: 407,
  RequestTimeout: 408,
  Conflict: 409,
  Gone: 410,
  LengthRequired: 411,
  PreconditionFailed: 412,
  PayloadTooLarge: 413,
  URITooLong: 414,
  UnsupportedMediaType: 415,
  RangeNotSatisfiable: 416,
  ExpectationFailed: 417,
  MisdirectedRequest: 421,
  UnprocessableEntity: 422,
  Locked: 423,
  FailedDependency: 424,
  UpgradeRequired: 426,
  PreconditionRequired: 428,
  TooManyRequests: 429,
  RequestHeaderFieldsTooLarge: 431,
  InternalServerError: 500,
  NotImplemented: 501,
  BadGateway: 502,
  ServiceUnavailable: 503,
  GatewayTimeout: 504,
  HTTPVersionNotSupported: 505,
  VariantAlsoNegotiates: 506,
  InsufficientStorage: 507,
  LoopDetected: 508,
  NotExtended: 510,
  NetworkAuthenticationRequired: 511,
});

const numbersCache = new WeakMap<EnumTable, ReadonlySet<number>>();

/** The numeric value of an enum given by name or by number; throws for a value the table lacks. */
export function enumValue(t: EnumTable, value: unknown, field: string): number {
  if (typeof value === 'string') {
    const n = t.get(value);
    if (n !== undefined) return n;
  } else if (typeof value === 'number') {
    let numbers = numbersCache.get(t);
    if (!numbers) {
      numbers = new Set(t.values());
      numbersCache.set(t, numbers);
    }
    if (numbers.has(value)) return value;
  }
  throw new CodecError(`${field} has unknown enum value ${JSON.stringify(value)} (known: ${[...t.keys()].join(', ')})`);
}
