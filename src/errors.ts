/**
 * Client-facing errors. Every refusal the gateway makes is one of these codes; one table maps a code
 * to its HTTP status and its error type in each client API the gateway serves (OpenAI's, and
 * Anthropic's for the `/v1/messages` front door), so the wire shape is decided in exactly one place.
 */

/** OpenAI's error `type` values that Tollgate uses. */
export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error';

/** Anthropic's error `type` values (https://docs.anthropic.com/en/api/errors). */
export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error';

/** The client API a request speaks (its front door): decides the error shape it gets. */
export type ClientApi = 'openai' | 'anthropic';

const ERROR_TABLE = {
  missing_api_key: { status: 401, type: 'invalid_request_error', anthropic: 'authentication_error' },
  invalid_api_key: { status: 401, type: 'invalid_request_error', anthropic: 'authentication_error' },
  key_disabled: { status: 403, type: 'permission_error', anthropic: 'permission_error' },
  key_expired: { status: 403, type: 'permission_error', anthropic: 'permission_error' },
  model_not_allowed: { status: 403, type: 'permission_error', anthropic: 'permission_error' },
  model_not_found: { status: 404, type: 'invalid_request_error', anthropic: 'not_found_error' },
  unknown_url: { status: 404, type: 'invalid_request_error', anthropic: 'not_found_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  invalid_json: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  missing_body: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  missing_model: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  invalid_model: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  /** A request parameter the model's provider API cannot honour (translated providers). */
  unsupported_parameter: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  /** A parameter value that is malformed or out of the provider API's range (translated providers). */
  invalid_value: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  request_too_large: { status: 413, type: 'invalid_request_error', anthropic: 'request_too_large' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error', anthropic: 'rate_limit_error' },
  insufficient_quota: { status: 429, type: 'rate_limit_error', anthropic: 'rate_limit_error' },
  provider_unavailable: { status: 503, type: 'api_error', anthropic: 'overloaded_error' },
  /** Every provider of the model throttled this request's attempts and now rests (Retry-After). */
  provider_rate_limited: { status: 429, type: 'rate_limit_error', anthropic: 'rate_limit_error' },
  provider_misconfigured: { status: 502, type: 'api_error', anthropic: 'api_error' },
  limiter_unavailable: { status: 503, type: 'api_error', anthropic: 'api_error' },
  internal_error: { status: 500, type: 'api_error', anthropic: 'api_error' },
  ip_not_allowed: { status: 403, type: 'permission_error', anthropic: 'permission_error' },
  content_policy_violation: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  moderation_unavailable: { status: 503, type: 'api_error', anthropic: 'api_error' },
  template_not_found: { status: 404, type: 'invalid_request_error', anthropic: 'not_found_error' },
  invalid_template_input: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  template_error: { status: 400, type: 'invalid_request_error', anthropic: 'invalid_request_error' },
  /** A stored Responses API response that does not exist for this key (unknown, expired, or another consumer's). */
  response_not_found: { status: 404, type: 'invalid_request_error', anthropic: 'not_found_error' },
  /** The directory of stored responses (Redis) could not be read. */
  response_store_unavailable: { status: 503, type: 'api_error', anthropic: 'api_error' },
} as const satisfies Record<string, { status: number; type: OpenAIErrorType; anthropic: AnthropicErrorType }>;

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

/**
 * Where Anthropic's API answers a different status than OpenAI's for the same refusal: a wrong
 * content type is a plain 400. (No provider available stays 503 with type `overloaded_error`:
 * Anthropic's own 529 is not a status Envoy can send as a local reply; it would become a 500.)
 */
const ANTHROPIC_STATUS: Partial<Record<GatewayErrorCode, number>> = {
  unsupported_media_type: 400,
};

/** HTTP status for an error code in the client's API. */
export function statusFor(api: ClientApi, code: GatewayErrorCode): number {
  return api === 'anthropic' ? (ANTHROPIC_STATUS[code] ?? ERROR_TABLE[code].status) : ERROR_TABLE[code].status;
}

/** Anthropic's JSON body for an error: `{"type":"error","error":{"type","message"}}`. */
export function anthropicErrorBody(error: Pick<GatewayError, 'code' | 'message'>): string {
  return JSON.stringify({ type: 'error', error: { type: ERROR_TABLE[error.code].anthropic, message: error.message } });
}

/** The error body in the shape of the client's API (the per-front-door renderer). */
export function errorBodyFor(api: ClientApi, error: Pick<GatewayError, 'code' | 'message'>): string {
  return api === 'anthropic' ? anthropicErrorBody(error) : errorBody(error);
}

/**
 * The same error as an event inside a stream the client already receives: OpenAI clients read a
 * `data:` event with the error object, Anthropic clients an `event: error`.
 */
export function errorEventFor(api: ClientApi, error: Pick<GatewayError, 'code' | 'message'>): string {
  return api === 'anthropic' ? `event: error\ndata: ${anthropicErrorBody(error)}\n\n` : `data: ${errorBody(error)}\n\n`;
}

/** Narrows a step result to its error case. */
export function isGatewayError(value: unknown): value is GatewayError {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'error';
}
