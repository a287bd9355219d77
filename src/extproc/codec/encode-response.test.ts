import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatewayError, type GatewayErrorCode } from '../../errors.js';
import type { ProcessingResponse, ProcessingResponse__Output } from '../../generated/envoy/service/ext_proc/v3/ProcessingResponse.js';
import { METADATA_NAMESPACE } from '../attempt-log.js';
import { setHeader } from '../headers.js';
import {
  continueRequestBody,
  continueRequestHeaders,
  continueResponseBody,
  continueResponseHeaders,
  errorResponse,
  forwardRequestBody,
  forwardRequestHeaders,
  jsonResponse,
  replaceResponseBody,
  responseHeadersWith,
  targetMetadata,
} from '../responses.js';
import { encodeProcessingResponse } from './encode-response.js';
import { decodeAnswerFull as decodeFull, protoLoaderProcess } from './test-support.js';
import { CodecError } from './wire.js';

const decode = (b: Buffer): ProcessingResponse__Output => protoLoaderProcess.responseDeserialize(b) as ProcessingResponse__Output;

/**
 * Encodes with ours and with proto-loader; both must decode (protobufjs, defaults on, so an
 * omitted proto3 default equals an explicit one) to the same message.
 */
function same(answer: ProcessingResponse, label: string): Buffer {
  const ours = encodeProcessingResponse(answer);
  assert.deepStrictEqual(decodeFull(ours), decodeFull(protoLoaderProcess.responseSerialize(answer)), label);
  return ours;
}

/** Every GatewayErrorCode (the Record type makes the compiler demand a new code here). */
const ALL_CODES: Record<GatewayErrorCode, true> = {
  missing_api_key: true,
  invalid_api_key: true,
  key_disabled: true,
  key_expired: true,
  model_not_allowed: true,
  model_not_found: true,
  unknown_url: true,
  method_not_allowed: true,
  invalid_json: true,
  missing_body: true,
  missing_model: true,
  invalid_model: true,
  unsupported_media_type: true,
  unsupported_parameter: true,
  invalid_value: true,
  request_too_large: true,
  rate_limit_exceeded: true,
  insufficient_quota: true,
  provider_unavailable: true,
  provider_rate_limited: true,
  provider_misconfigured: true,
  limiter_unavailable: true,
  internal_error: true,
  ip_not_allowed: true,
  content_policy_violation: true,
  moderation_unavailable: true,
  template_not_found: true,
  invalid_template_input: true,
  template_error: true,
  response_not_found: true,
  response_store_unavailable: true,
};

describe('ProcessingResponse encoder: every answer the handlers build', () => {
  it('continue answers for each phase', () => {
    for (const [name, answer] of [
      ['request headers', continueRequestHeaders()],
      ['response headers', continueResponseHeaders()],
      ['request body', continueRequestBody()],
      ['response body', continueResponseBody()],
    ] as const) {
      const wire = same(answer, name);
      assert.equal(wire.length, 2, `${name}: one empty oneof member`);
      assert.deepStrictEqual(decode(wire), { ...answer, response: Object.keys(answer)[0] });
    }
  });

  it('the forward answer: header mutations, removals, body replacement, route cache cleared', () => {
    const setHeaders: [string, string][] = [
      [':authority', 'api.provider.example:443'],
      [':path', '/v1/chat/completions'],
      ['authorization', 'Bearer upstream-credential'],
      ['x-tollgate-route', 'https'],
      ['x-tollgate-plan', 'plan-1'],
      ['x-latin1', 'caf\u00e9'],
    ];
    const body = Buffer.from('{"model":"upstream-model","messages":[]}');
    const answer = forwardRequestBody(setHeaders, ['x-api-key', 'x-tollgate-debug'], body);
    const wire = same(answer, 'forward with body');
    assert.deepStrictEqual(decode(wire), {
      response: 'requestBody',
      requestBody: {
        response: {
          headerMutation: {
            setHeaders: setHeaders.map(([key, v]) => ({ header: { key, rawValue: Buffer.from(v, 'latin1') }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
            removeHeaders: ['x-api-key', 'x-tollgate-debug'],
          },
          bodyMutation: { body, mutation: 'body' },
          clearRouteCache: true,
        },
      },
    });
    same(forwardRequestBody(setHeaders, [], undefined), 'forward without body');
    same(forwardRequestBody([], [], Buffer.alloc(0)), 'forward with an empty body');
    same(forwardRequestBody(setHeaders, [], Buffer.alloc(1024 * 1024, 'x')), 'forward with a 1 MiB body');
  });

  it('local replies: JSON responses and every gateway error, with extra headers', () => {
    same(jsonResponse(200, '{"object":"list","data":[]}', 'req-1'), 'json 200');
    for (const code of Object.keys(ALL_CODES) as GatewayErrorCode[]) {
      same(errorResponse(gatewayError(code, `message for ${code} ✓`), 'req-2'), code);
      same(errorResponse(gatewayError(code, 'limited', { 'retry-after': '7', 'x-ratelimit-remaining-requests': '0' }), 'req-3'), `${code} + headers`);
    }
    const wire = same(errorResponse(gatewayError('rate_limit_exceeded', 'slow down', { 'retry-after': '2' }), 'req-4'), '429');
    const decoded = decode(wire).immediateResponse;
    assert.equal(decoded?.status?.code, 'TooManyRequests');
    assert.equal(decoded?.details, 'tollgate');
    assert.deepStrictEqual(
      decoded?.headers?.setHeaders?.map((h) => [h.header?.key, h.header?.rawValue?.toString()]),
      [
        ['content-type', 'application/json'],
        ['x-request-id', 'req-4'],
        ['retry-after', '2'],
      ],
    );
    assert.equal(JSON.parse(decoded?.body?.toString() ?? '').error.code, 'rate_limit_exceeded');
  });

  it('response headers answers: x-ratelimit headers and the STREAMED mode override', () => {
    same(responseHeadersWith(undefined, false), 'plain');
    same(responseHeadersWith({ 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '12' }, false), 'headers');
    const wire = same(responseHeadersWith(undefined, true), 'inspect body');
    assert.deepStrictEqual(decode(wire).modeOverride, { responseBodyMode: 'STREAMED' });
    same(responseHeadersWith({ 'x-ratelimit-remaining-requests': '3' }, true), 'both');
    same(responseHeadersWith(undefined, false, ['x-envoy-attempt-count']), 'remove only');
    same(responseHeadersWith({ 'x-ratelimit-limit-requests': '5' }, true, ['x-envoy-attempt-count']), 'all three');
  });

  it('streamed response body replacement, empty and not', () => {
    same(replaceResponseBody(Buffer.from('data: {"error":{}}\n\n')), 'replace');
    same(replaceResponseBody(Buffer.alloc(0)), 'replace with nothing');
  });

  it("the attempt stage's answers: headers-only rewrite with mode override and target metadata, body rewrite, refusal", () => {
    // Shapes src/extproc/attempt-stream.ts and stream.ts build inline (stream-answers.test.ts
    // drives the real classes too).
    const headersOnly: ProcessingResponse = {
      requestHeaders: {
        response: {
          status: 'CONTINUE',
          headerMutation: { setHeaders: [setHeader(':authority', 'b.example:80'), setHeader('authorization', 'Bearer x')], removeHeaders: ['x-tollgate-plan'] },
          clearRouteCache: true,
        },
      },
      modeOverride: { requestBodyMode: 'NONE', responseHeaderMode: 'SEND' },
      dynamicMetadata: targetMetadata('ml/vllm@10.0.0.7:8000'),
    };
    const wire = same(headersOnly, 'headers-only rewrite');
    assert.deepStrictEqual(decode(wire).dynamicMetadata, {
      fields: { [METADATA_NAMESPACE]: { structValue: { fields: { target: { stringValue: 'ml/vllm@10.0.0.7:8000', kind: 'stringValue' } } }, kind: 'structValue' } },
    });
    // NONE is 0, the proto3 default: not written, and what Envoy reads for an absent field.
    assert.deepStrictEqual(decodeFull(wire).modeOverride, {
      requestHeaderMode: 'DEFAULT',
      responseHeaderMode: 'SEND',
      requestBodyMode: 'NONE',
      responseBodyMode: 'NONE',
      requestTrailerMode: 'DEFAULT',
      responseTrailerMode: 'DEFAULT',
    });
    same(forwardRequestBody([[':path', '/v1/x']], [], Buffer.from('{}'), targetMetadata('a@10.0.0.1:80')), 'body rewrite + metadata');
    same(forwardRequestBody([[':path', '/v1/x']], [], undefined, targetMetadata('')), 'headers rewrite + metadata');
    same(forwardRequestHeaders([[':path', '/v1/responses/resp_1'], ['x-tollgate-route', 'https']], ['authorization']), 'stored response: headers rewrite, body not read');
    const refusal = errorResponse(gatewayError('provider_unavailable', 'no provider'), 'req-5');
    refusal.immediateResponse?.headers?.setHeaders?.push(setHeader('x-envoy-ratelimited', 'true'));
    same(refusal, 'refusal');
    // The request stage tags its own replies so Envoy's local reply mappers leave them alone.
    same({ ...errorResponse(gatewayError('invalid_json', 'bad'), 'req-6'), dynamicMetadata: { fields: { tollgate: { structValue: { fields: { reply: { boolValue: true } } } } } } }, 'own reply');
  });
});

describe('ProcessingResponse encoder: every supported field and value kind', () => {
  it('CommonResponse status, clear_body, trailers; trailers answers; ImmediateResponse grpc_status and string body', () => {
    same({ requestBody: { response: { status: 'CONTINUE_AND_REPLACE', bodyMutation: { clearBody: true }, trailers: { headers: [{ key: 't', value: 'v' }] } } } }, 'common');
    same({ responseBody: { response: { bodyMutation: { clearBody: false } } } }, 'clear_body false is still a oneof member');
    same({ requestTrailers: { headerMutation: { setHeaders: [{ header: { key: 'a', value: 'b' }, appendAction: 'ADD_IF_ABSENT', keepEmptyValue: true }], removeHeaders: ['c'] } } }, 'request trailers');
    same({ responseTrailers: {} }, 'response trailers');
    same({ immediateResponse: { status: { code: 502 }, grpcStatus: { status: 14 }, details: 'd', body: Buffer.from('b') } }, 'grpc status');
    same({ immediateResponse: { status: { code: 'TooManyRequests' } } }, 'status by name');
    same({ responseHeaders: { response: { status: 1, headerMutation: { setHeaders: [{ header: { key: 'x', rawValue: new Uint8Array([1, 2]) }, appendAction: 3 }] } } } }, 'enums by number, Uint8Array bytes');
    const utf8 = encodeProcessingResponse({ immediateResponse: { status: { code: 400 }, body: 'grüße' } });
    assert.equal(decode(utf8).immediateResponse?.body?.toString('utf8'), 'grüße', 'a string body is UTF-8');
  });

  it('every ProcessingMode field and value', () => {
    for (const mode of ['DEFAULT', 'SEND', 'SKIP'] as const) same({ modeOverride: { requestHeaderMode: mode, responseHeaderMode: mode, requestTrailerMode: mode, responseTrailerMode: mode } }, mode);
    for (const mode of ['NONE', 'STREAMED', 'BUFFERED', 'BUFFERED_PARTIAL'] as const) same({ responseBody: {}, modeOverride: { requestBodyMode: mode, responseBodyMode: mode } }, mode);
  });

  it('google.protobuf.Struct with every Value kind, nested, and non-ASCII keys', () => {
    const struct: NonNullable<ProcessingResponse['dynamicMetadata']> = {
      fields: {
        s: { stringValue: 'text ✓' },
        empty: { stringValue: '' },
        n: { numberValue: -1.25e-7 },
        zero: { numberValue: 0 },
        t: { boolValue: true },
        f: { boolValue: false },
        nil: { nullValue: 'NULL_VALUE' },
        list: { listValue: { values: [{ numberValue: 1 }, { stringValue: 'two' }, { listValue: { values: [] } }, { structValue: { fields: {} } }] } },
        'ключ 𝄞': { structValue: { fields: { deep: { structValue: { fields: { deeper: { boolValue: true } } } } } } },
        '': { stringValue: 'empty key' },
        nothing: {},
      },
    };
    const wire = same({ responseHeaders: {}, dynamicMetadata: struct }, 'struct');
    const f = decode(wire).dynamicMetadata?.fields;
    assert.equal(f?.['n']?.numberValue, -1.25e-7);
    assert.equal(f?.['zero']?.kind, 'numberValue');
    assert.equal(f?.['f']?.boolValue, false);
    assert.equal(f?.['ключ 𝄞']?.structValue?.fields?.['deep']?.structValue?.fields?.['deeper']?.boolValue, true);
  });

  it('long strings and many headers (multi-byte lengths)', () => {
    const setHeaders = Array.from({ length: 200 }, (_, i) => setHeader(`x-h-${i}`, 'v'.repeat(i * 50)));
    same({ requestHeaders: { response: { headerMutation: { setHeaders, removeHeaders: ['é'.repeat(100)] } } } }, 'many');
    same({ immediateResponse: { status: { code: 200 }, details: 'd'.repeat(70_000), body: Buffer.alloc(3 * 1024 * 1024, 1) } }, 'large');
  });
});

describe('ProcessingResponse encoder refuses what it cannot encode faithfully', () => {
  const refuses = (answer: unknown, pattern: RegExp): void => {
    assert.throws(() => encodeProcessingResponse(answer as ProcessingResponse), (err: unknown) => err instanceof CodecError && pattern.test(err.message));
  };

  it('unknown or misspelt fields at every level (proto-loader would drop them silently)', () => {
    const misspelt = { requestBody: { response: { headerMutaton: { setHeaders: [setHeader('authorization', 'Bearer x')] } } } };
    assert.doesNotThrow(() => protoLoaderProcess.responseSerialize(misspelt), 'proto-loader drops the mutation without a word');
    refuses(misspelt, /CommonResponse has no field 'headerMutaton'/);
    refuses({ requestHeaders: {}, extra: 1 }, /ProcessingResponse has no field 'extra'/);
    refuses({ requestHeaders: { respons: {} } }, /requestHeaders has no field 'respons'/);
    refuses({ requestHeaders: { response: { headerMutation: { set: [] } } } }, /CommonResponse.headerMutation has no field 'set'/);
    refuses({ requestHeaders: { response: { headerMutation: { setHeaders: [{ header: { key: 'a', val: 'b' } }] } } } }, /HeaderValue has no field 'val'/);
    refuses({ requestHeaders: { response: { headerMutation: { setHeaders: [{ header: { key: 'a' }, append: { value: true } }] } } } }, /HeaderValueOption has no field 'append'/);
    refuses({ immediateResponse: { status: { code: 400 }, bdy: 'x' } }, /ImmediateResponse has no field 'bdy'/);
    refuses({ modeOverride: { responseBodyModes: 'STREAMED' } }, /ProcessingMode has no field 'responseBodyModes'/);
    refuses({ modeOverride: { toString: 'SEND' } }, /ProcessingMode has no field 'toString'/);
    refuses({ requestHeaders: {}, overrideMessageTimeout: { seconds: 1 } }, /no field 'overrideMessageTimeout'/);
    refuses({ requestHeaders: {}, response: 'requestHeaders' }, /no field 'response'/);
    refuses({ dynamicMetadata: { fields: { a: { structValue: { fields: { b: { stringValu: 'x' } } } } } } }, /dynamicMetadata.fields\['a'\].structValue.fields\['b'\] \(Value\) has no field 'stringValu'/);
    refuses({ requestBody: { response: { bodyMutation: { bodyy: Buffer.alloc(1) } } } }, /BodyMutation has no field 'bodyy'/);
  });

  it('unknown enum values', () => {
    refuses({ modeOverride: { responseBodyMode: 'FULL_DUPLEX_STREAMED' } }, /ProcessingMode.responseBodyMode has unknown enum value "FULL_DUPLEX_STREAMED"/);
    refuses({ modeOverride: { responseHeaderMode: 'STREAMED' } }, /unknown enum value "STREAMED"/);
    refuses({ requestBody: { response: { status: 'CONTINUE_AND_REPLACED' } } }, /CommonResponse.status has unknown enum value/);
    refuses({ requestHeaders: { response: { headerMutation: { setHeaders: [{ header: { key: 'a' }, appendAction: 'OVERWRITE' }] } } } }, /appendAction has unknown enum value "OVERWRITE"/);
    refuses({ requestHeaders: { response: { headerMutation: { setHeaders: [{ header: { key: 'a' }, appendAction: 9 }] } } } }, /appendAction has unknown enum value 9/);
    refuses({ immediateResponse: { status: { code: 299 } } }, /HttpStatus.code has unknown enum value 299/);
    refuses({ immediateResponse: { status: { code: 0 } } }, /must not be 0/);
    refuses({ dynamicMetadata: { fields: { a: { nullValue: 'NULL' } } } }, /nullValue has unknown enum value/);
  });

  it('two members of one oneof, and values of the wrong type', () => {
    refuses({ requestHeaders: {}, immediateResponse: { status: { code: 500 } } }, /ProcessingResponse.response oneof has both 'requestHeaders' and 'immediateResponse'/);
    refuses({ requestBody: { response: { bodyMutation: { body: Buffer.alloc(1), clearBody: true } } } }, /BodyMutation.mutation oneof has both/);
    refuses({ dynamicMetadata: { fields: { a: { stringValue: 'x', numberValue: 1 } } } }, /kind oneof has both/);
    refuses({ requestHeaders: { response: { headerMutation: { setHeaders: [{ header: { key: 'a', rawValue: 5 } }] } } } }, /HeaderValue.rawValue must be a Buffer, Uint8Array or string, got number/);
    refuses({ requestHeaders: { response: { headerMutation: { setHeaders: setHeader('a', 'b') } } } }, /setHeaders must be an array, got object/);
    refuses({ requestHeaders: { response: { headerMutation: { removeHeaders: [1] } } } }, /removeHeaders\[\] must be a string, got number/);
    refuses({ requestHeaders: { response: { clearRouteCache: 'yes' } } }, /clearRouteCache must be a boolean, got string/);
    refuses({ requestHeaders: Buffer.alloc(1) }, /requestHeaders must be a message object, got bytes/);
    refuses({ immediateResponse: { status: { code: 400 }, grpcStatus: { status: -1 } } }, /GrpcStatus.status must be a uint32/);
    refuses({ dynamicMetadata: { fields: { a: null } } }, /has no Value/);
    refuses({ dynamicMetadata: { fields: { a: { numberValue: '1' } } } }, /numberValue must be a number, got string/);
  });

  it('treats null and undefined fields as absent, like proto-loader', () => {
    const answer = { requestBody: { response: { headerMutation: null, bodyMutation: undefined, clearRouteCache: true } }, dynamicMetadata: null } as unknown as ProcessingResponse;
    same(answer, 'nulls');
  });
});
