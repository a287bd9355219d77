/**
 * Envoy-shaped ext_proc messages for the codec tests and bench/codec-micro.ts: what Envoy 1.40
 * sends for an OpenAI client request (headers in raw_value, lowercase names, pseudo-headers first)
 * and the answers Tollgate builds. Plain objects in proto-loader's shape; nothing here is secret.
 */
import type { HeaderValue } from '../../generated/envoy/config/core/v3/HeaderValue.js';
import type { ProcessingRequest } from '../../generated/envoy/service/ext_proc/v3/ProcessingRequest.js';

/** Headers of a chat completion request from the openai npm client through Envoy (15 headers). */
export const CLIENT_REQUEST_HEADERS: readonly (readonly [string, string])[] = [
  [':authority', 'gateway.example.test:8080'],
  [':path', '/v1/chat/completions'],
  [':method', 'POST'],
  [':scheme', 'http'],
  ['content-type', 'application/json'],
  ['content-length', '1024'],
  ['authorization', 'Bearer tg-test-0123456789abcdef'],
  ['accept', 'application/json'],
  ['user-agent', 'OpenAI/JS 6.9.1'],
  ['x-stainless-lang', 'js'],
  ['x-stainless-package-version', '6.9.1'],
  ['x-stainless-runtime', 'node'],
  ['x-stainless-retry-count', '0'],
  ['x-forwarded-proto', 'http'],
  ['x-request-id', '5f0c1c9e-8a53-4f57-9d0f-2b7c7f4f9a11'],
];

/** Header list in raw_value form, as Envoy sends it. */
export function rawHeaders(headers: readonly (readonly [string, string])[]): HeaderValue[] {
  return headers.map(([key, value]) => ({ key, rawValue: Buffer.from(value, 'latin1') }));
}

/** A request-headers message (raw_value headers), as Envoy sends it. */
export function requestHeadersMessage(endOfStream = false): ProcessingRequest {
  return { requestHeaders: { headers: { headers: rawHeaders(CLIENT_REQUEST_HEADERS) }, endOfStream } };
}

/** A buffered request body of `size` bytes of JSON-ish text, end of stream set. */
export function requestBodyMessage(size: number): ProcessingRequest {
  const prefix = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"';
  const suffix = '"}]}';
  const body = Buffer.alloc(size, 'a');
  if (size >= prefix.length + suffix.length) {
    body.write(prefix, 0, 'latin1');
    body.write(suffix, size - suffix.length, 'latin1');
  }
  return { requestBody: { body, endOfStream: true } };
}

/** Upstream response headers of a streaming 200. */
export function responseHeadersMessage(): ProcessingRequest {
  return {
    responseHeaders: {
      headers: {
        headers: rawHeaders([
          [':status', '200'],
          ['content-type', 'text/event-stream; charset=utf-8'],
          ['date', 'Wed, 25 Nov 2026 12:00:00 GMT'],
          ['x-envoy-upstream-service-time', '3'],
        ]),
      },
      endOfStream: false,
    },
  };
}
