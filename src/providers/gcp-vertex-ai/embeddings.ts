/**
 * OpenAI embeddings <-> Vertex AI text embeddings through the model's :predict method
 * (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api):
 * each input string becomes one instance {content}; `dimensions` -> parameters.outputDimensionality.
 * The answer's predictions[].embeddings.values come back as OpenAI's list (float arrays, or base64 of
 * little-endian float32 when the client asked for `encoding_format: "base64"`, the OpenAI SDKs'
 * default), and the per-instance statistics.token_count add up to the usage. Limits from the
 * reference: at most 250 instances per request, one for gemini-embedding models. Token-array inputs
 * and Claude models (no embeddings on Vertex) are refused with a 400.
 */
import { isGatewayError, type GatewayError } from '../../errors.js';
import { geminiChat } from '../gemini/chat.js';
import { type ChatTranslator, invalid, isObject, openAIErrorJson, optionalPositiveInt, type ResponseOptions, type TranslatedResponse, type TranslationContext, unsupported } from '../translation.js';
import { isClaude } from './chat.js';

const PROVIDER = 'Vertex AI';
/** Instances per :predict request (text-embedding-*, text-multilingual-embedding-*). */
export const MAX_INSTANCES = 250;

function maxInstances(model: string): number {
  return model.startsWith('gemini-embedding') ? 1 : MAX_INSTANCES;
}

function request(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
  if (isClaude(ctx.upstreamModel)) return unsupported('model', PROVIDER, `'${ctx.upstreamModel}' is a Claude model, which has no embeddings; use a text-embedding model`);
  const input = body['input'];
  const inputs = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(inputs) || inputs.length === 0) return invalid('input', 'expected a string or a non-empty array of strings.');
  if (!inputs.every((x) => typeof x === 'string' && x !== '')) return unsupported('input', PROVIDER, 'token arrays and empty strings cannot be translated; send text');
  const max = maxInstances(ctx.upstreamModel);
  if (inputs.length > max) return invalid('input', `the ${PROVIDER} model '${ctx.upstreamModel}' embeds at most ${max} input${max === 1 ? '' : 's'} per request.`);
  const dimensions = optionalPositiveInt(body, 'dimensions');
  if (isGatewayError(dimensions)) return dimensions;
  const format = body['encoding_format'];
  if (format !== undefined && format !== null && format !== 'float' && format !== 'base64') return invalid('encoding_format', "expected 'float' or 'base64'.");
  const instances = (inputs as string[]).map((content) => ({ content }));
  return Buffer.from(JSON.stringify(dimensions === undefined ? { instances } : { instances, parameters: { outputDimensionality: dimensions } }));
}

function base64Of(values: readonly number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i] as number, i * 4);
  return buf.toString('base64');
}

function malformed(): TranslatedResponse {
  return { status: 502, body: Buffer.from(openAIErrorJson(`The provider (${PROVIDER} API) returned a malformed embeddings response.`, 'api_error', 'bad_upstream_response')) };
}

function response(raw: Buffer, options: ResponseOptions): TranslatedResponse {
  let msg: unknown;
  try {
    msg = JSON.parse(raw.toString('utf8'));
  } catch {
    return malformed();
  }
  if (!isObject(msg) || !Array.isArray(msg['predictions'])) return malformed();
  const data: unknown[] = [];
  let tokens = 0;
  let counted = false;
  for (const [index, p] of msg['predictions'].entries()) {
    const e = isObject(p) ? p['embeddings'] : undefined;
    const values = isObject(e) ? e['values'] : undefined;
    if (!isObject(e) || !Array.isArray(values) || !values.every((v) => typeof v === 'number')) return malformed();
    const stats = e['statistics'];
    if (isObject(stats) && typeof stats['token_count'] === 'number') {
      tokens += stats['token_count'];
      counted = true;
    }
    data.push({ object: 'embedding', index, embedding: options.base64Embeddings ? base64Of(values as number[]) : values });
  }
  const out: Record<string, unknown> = { object: 'list', data, model: options.model };
  if (counted) out['usage'] = { prompt_tokens: tokens, total_tokens: tokens };
  return { status: 200, body: Buffer.from(JSON.stringify(out)) };
}

export const vertexEmbeddings: ChatTranslator = {
  streamContentType: 'text/event-stream',
  request,
  status: (s) => s,
  response,
  error: (status, raw) => geminiChat.error(status, raw),
  // Embeddings never stream; a stream here would be a bug upstream of this translator.
  stream: (options) => geminiChat.stream(options),
};
