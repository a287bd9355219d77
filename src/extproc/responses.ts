/** Pure builders for the answers Tollgate sends to Envoy. */
import { errorBodyFor, statusFor, type ClientApi, type GatewayError } from '../errors.js';
import type { ProcessingResponse } from '../generated/envoy/service/ext_proc/v3/ProcessingResponse.js';
import type { HeaderValueOption } from '../generated/envoy/config/core/v3/HeaderValueOption.js';
import { METADATA_NAMESPACE } from './attempt-log.js';
import { setHeader } from './headers.js';

const CONTINUE_REQUEST_HEADERS: ProcessingResponse = { requestHeaders: {} };
const CONTINUE_RESPONSE_HEADERS: ProcessingResponse = { responseHeaders: {} };
const CONTINUE_REQUEST_BODY: ProcessingResponse = { requestBody: {} };
const CONTINUE_RESPONSE_BODY: ProcessingResponse = { responseBody: {} };

export function continueRequestHeaders(): ProcessingResponse {
  return CONTINUE_REQUEST_HEADERS;
}
export function continueResponseHeaders(): ProcessingResponse {
  return CONTINUE_RESPONSE_HEADERS;
}
export function continueRequestBody(): ProcessingResponse {
  return CONTINUE_REQUEST_BODY;
}
export function continueResponseBody(): ProcessingResponse {
  return CONTINUE_RESPONSE_BODY;
}

/** A local reply with a JSON body. */
export function jsonResponse(status: number, body: string, requestId: string, extra?: Readonly<Record<string, string>>): ProcessingResponse {
  const headers: HeaderValueOption[] = [setHeader('content-type', 'application/json'), setHeader('x-request-id', requestId)];
  if (extra) for (const [k, v] of Object.entries(extra)) headers.push(setHeader(k, v));
  return {
    immediateResponse: {
      status: { code: status as never },
      headers: { setHeaders: headers },
      body: Buffer.from(body),
      details: 'tollgate',
    },
  };
}

/** A local reply for a client mistake or refusal, in the error shape and status of the client's API. */
export function errorResponse(error: GatewayError, requestId: string, api: ClientApi = 'openai'): ProcessingResponse {
  return jsonResponse(statusFor(api, error.code), errorBodyFor(api, error), requestId, error.headers);
}

/** Continue the buffered request body with header and (optionally) body mutations, re-routing. */
export function forwardRequestBody(
  setHeaders: readonly (readonly [string, string])[],
  removeHeaders: readonly string[],
  body: Buffer | undefined,
  dynamicMetadata?: ProcessingResponse['dynamicMetadata'],
): ProcessingResponse {
  return {
    ...(dynamicMetadata ? { dynamicMetadata } : {}),
    requestBody: {
      response: {
        status: 'CONTINUE',
        headerMutation: { setHeaders: setHeaders.map(([k, v]) => setHeader(k, v)), removeHeaders: [...removeHeaders] },
        ...(body ? { bodyMutation: { body } } : {}),
        clearRouteCache: true,
      },
    },
  };
}

/**
 * Continue a request without reading its body, its headers rewritten and re-routed (a request about
 * a stored response, which has none): the body, if any, streams through untouched.
 */
export function forwardRequestHeaders(setHeaders: readonly (readonly [string, string])[], removeHeaders: readonly string[]): ProcessingResponse {
  return {
    requestHeaders: {
      response: {
        status: 'CONTINUE',
        headerMutation: { setHeaders: setHeaders.map(([k, v]) => setHeader(k, v)), removeHeaders: [...removeHeaders] },
        clearRouteCache: true,
      },
    },
    modeOverride: { requestBodyMode: 'NONE', responseHeaderMode: 'SEND' },
  };
}

const STREAMED_RESPONSE_BODY = { responseBodyMode: 'STREAMED' } as const;
const BUFFERED_RESPONSE_BODY = { responseBodyMode: 'BUFFERED' } as const;

/**
 * Response headers answer with extra headers (x-ratelimit-*), headers to drop, and, when
 * `inspectBody`, response body processing switched on for this request only (`mode_override`;
 * Envoy has allow_mode_override).
 */
export function responseHeadersWith(
  headers: Readonly<Record<string, string>> | undefined,
  inspectBody: boolean,
  remove: readonly string[] = [],
  /** How the body comes when inspected: chunk by chunk, or whole (the guardrails' non-streamed answers). */
  mode: 'STREAMED' | 'BUFFERED' = 'STREAMED',
): ProcessingResponse {
  if (!headers && !inspectBody && remove.length === 0) return CONTINUE_RESPONSE_HEADERS;
  const setHeaders: HeaderValueOption[] = [];
  if (headers) for (const k in headers) setHeaders.push(setHeader(k, headers[k] as string));
  const mutation = setHeaders.length > 0 || remove.length > 0;
  return {
    responseHeaders: mutation ? { response: { headerMutation: { setHeaders, removeHeaders: [...remove] } } } : {},
    ...(inspectBody ? { modeOverride: mode === 'BUFFERED' ? BUFFERED_RESPONSE_BODY : STREAMED_RESPONSE_BODY } : {}),
  };
}

/**
 * Response headers of a translated attempt: the client's status (when it differs from the
 * provider's), the header changes, and the body streamed through ext_proc for translation.
 */
export function translatedResponseHeaders(
  status: number | undefined,
  set: readonly (readonly [string, string])[],
  remove: readonly string[],
): ProcessingResponse {
  const setHeaders: HeaderValueOption[] = set.map(([k, v]) => setHeader(k, v));
  if (status !== undefined) setHeaders.push(setHeader(':status', String(status)));
  return {
    responseHeaders: { response: { headerMutation: { setHeaders, removeHeaders: [...remove] } } },
    modeOverride: STREAMED_RESPONSE_BODY,
  };
}

/**
 * Replaces a whole BUFFERED response body; its headers are still held by Envoy, so content-length
 * is set to the new length in the same answer.
 */
export function replaceBufferedResponseBody(body: Buffer): ProcessingResponse {
  return { responseBody: { response: { headerMutation: { setHeaders: [setHeader('content-length', String(body.length))], removeHeaders: [] }, bodyMutation: { body } } } };
}

/** Response headers set on an answer whose body is not read (a passed-through error gets `retry-after`). */
export function headersOnly(set: readonly (readonly [string, string])[]): ProcessingResponse {
  return { responseHeaders: { response: { headerMutation: { setHeaders: set.map(([k, v]) => setHeader(k, v)), removeHeaders: [] } } } };
}

/** Response headers held by Envoy until the whole body has been answered (replaceHeldResponseBody). */
export function heldResponseHeaders(): ProcessingResponse {
  return { responseHeaders: {}, modeOverride: BUFFERED_RESPONSE_BODY };
}

/** The answer to a held (BUFFERED) body: its status and headers may still change with it. */
export function replaceHeldResponseBody(status: number | undefined, set: readonly (readonly [string, string])[], body: Buffer): ProcessingResponse {
  const setHeaders: HeaderValueOption[] = set.map(([k, v]) => setHeader(k, v));
  setHeaders.push(setHeader('content-length', String(body.length)));
  if (status !== undefined) setHeaders.push(setHeader(':status', String(status)));
  return { responseBody: { response: { headerMutation: { setHeaders, removeHeaders: ['content-encoding'] }, bodyMutation: { body } } } };
}

/** Replaces one streamed response body chunk. */
export function replaceResponseBody(body: Buffer): ProcessingResponse {
  return { responseBody: { response: { bodyMutation: { body } } } };
}

/** Dynamic metadata `tollgate.target` (and `tollgate.api` for a non-OpenAI front door) naming an upstream attempt's target, read back from Envoy's access log (attempt-log.ts). */
export function targetMetadata(target: string, api: ClientApi = 'openai'): NonNullable<ProcessingResponse['dynamicMetadata']> {
  const fields: Record<string, { stringValue: string }> = { target: { stringValue: target } };
  // Envoy's local replies on this attempt (upstream unreachable, timeouts) take the client API's error
  // shape from `tollgate.api` (envoy.yaml local_reply_config): the path is the provider's by then.
  if (api !== 'openai') fields['api'] = { stringValue: api };
  return { fields: { [METADATA_NAMESPACE]: { structValue: { fields } } } };
}
