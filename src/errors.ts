/**
 * Client-facing errors. Every refusal the gateway makes is one of these codes; one table maps a code
 * to its HTTP status and OpenAI error type, so the wire shape is decided in exactly one place.
 */

/** OpenAI's error `type` values that Tollgate uses. */
export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error';

const ERROR_TABLE = {
  missing_api_key: { status: 401, type: 'invalid_request_error' },
  invalid_api_key: { status: 401, type: 'invalid_request_error' },
  key_disabled: { status: 403, type: 'permission_error' },
  key_expired: { status: 403, type: 'permission_error' },
  model_not_allowed: { status: 403, type: 'permission_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  unknown_url: { status: 404, type: 'invalid_request_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  invalid_json: { status: 400, type: 'invalid_request_error' },
  missing_body: { status: 400, type: 'invalid_request_error' },
  missing_model: { status: 400, type: 'invalid_request_error' },
  invalid_model: { status: 400, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  /** A request parameter the model's provider API cannot honour (translated providers). */
  unsupported_parameter: { status: 400, type: 'invalid_request_error' },
  /** A parameter value that is malformed or out of the provider API's range (translated providers). */
  invalid_value: { status: 400, type: 'invalid_request_error' },
  request_too_large: { status: 413, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error' },
  insufficient_quota: { status: 429, type: 'rate_limit_error' },
  provider_unavailable: { status: 503, type: 'api_error' },
  provider_misconfigured: { status: 502, type: 'api_error' },
  limiter_unavailable: { status: 503, type: 'api_error' },
  internal_error: { status: 500, type: 'api_error' },
  ip_not_allowed: { status: 403, type: 'permission_error' },
  content_policy_violation: { status: 400, type: 'invalid_request_error' },
  moderation_unavailable: { status: 503, type: 'api_error' },
} as const satisfies Record<string, { status: number; type: OpenAIErrorType }>;

/** The closed set of error codes the gateway can return. */
export type GatewayErrorCode = keyof typeof ERROR_TABLE;

/** A client-facing refusal. A value, not an exception: pipeline steps return it. */
export interface GatewayError {
  readonly kind: 'error';
  readonly code: GatewayErrorCode;
  readonly message: string;
  /** Extra response headers (Retry-After, x-ratelimit-*). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Builds a GatewayError. */
export function gatewayError(
  code: GatewayErrorCode,
  message: string,
  headers?: Readonly<Record<string, string>>,
): GatewayError {
  return headers ? { kind: 'error', code, message, headers } : { kind: 'error', code, message };
}

/** HTTP status for an error code. */
export function statusOf(code: GatewayErrorCode): number {
  return ERROR_TABLE[code].status;
}

/** The OpenAI-shaped JSON body for an error: `{"error":{"message","type","param","code"}}`. */
export function errorBody(error: Pick<GatewayError, 'code' | 'message'>): string {
  return JSON.stringify({
    error: { message: error.message, type: ERROR_TABLE[error.code].type, param: null, code: error.code },
  });
}

/** Narrows a step result to its error case. */
export function isGatewayError(value: unknown): value is GatewayError {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'error';
}
