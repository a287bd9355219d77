/**
 * Reads the (buffered) JSON request body once: validates it and pulls out the fields the pipeline
 * needs. The parsed object is kept on the request so later steps (token estimates) never parse again.
 */
import { gatewayError, type GatewayError } from '../errors.js';

/** What the pipeline knows about a request body. */
export interface RequestBody {
  readonly raw: Buffer;
  readonly json: Readonly<Record<string, unknown>>;
  readonly model: string;
  readonly stream: boolean;
  /**
   * `raw` is no longer what the client sent (Envoy holds the client's bytes): a step changed it, for
   * example the limits step adding `stream_options`, so every upstream rewrite must send it.
   */
  readonly rewritten?: boolean;
  /**
   * A step added `stream_options.include_usage` to `raw` (not reflected in `json`): translated
   * providers must emit the usage chunk too.
   */
  readonly streamUsage?: boolean;
  /** The `anthropic-version` a Messages client sent (passed on to Anthropic providers). */
  readonly anthropicVersion?: string;
  /** The `anthropic-beta` a Messages client sent (Claude on Bedrock takes it in the body as `anthropic_beta`). */
  readonly anthropicBeta?: string;
}

const MODEL_NAME = /^[A-Za-z0-9._:/@+-]{1,256}$/;
const POSITION = /at position (\d+)/;

/** Parses and checks a request body; errors are client mistakes. */
export function readRequestBody(raw: Buffer, contentType: string | undefined): RequestBody | GatewayError {
  if (contentType !== undefined && !contentType.toLowerCase().includes('json')) {
    return gatewayError('unsupported_media_type', `Content-Type must be application/json, got "${contentType}".`);
  }
  if (raw.length === 0) return gatewayError('missing_body', 'The request body is empty; expected a JSON object.');
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    // V8's message may quote the body; tell the client where it broke, never echo its content.
    const at = POSITION.exec((err as Error).message);
    const where = at ? ` (syntax error at position ${at[1]})` : ' (syntax error or truncated body)';
    return gatewayError('invalid_json', `We could not parse the JSON body of your request${where}.`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return gatewayError('invalid_json', 'The request body must be a JSON object.');
  }
  const body = json as Record<string, unknown>;
  const model = body['model'];
  if (model === undefined || model === null || model === '') {
    return gatewayError('missing_model', "You must provide a model parameter ('model').");
  }
  if (typeof model !== 'string' || !MODEL_NAME.test(model)) {
    return gatewayError('invalid_model', "'model' must be a model name string.");
  }
  return { raw, json: body, model, stream: body['stream'] === true };
}
