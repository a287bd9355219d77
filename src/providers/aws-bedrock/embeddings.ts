/**
 * OpenAI embeddings <-> Bedrock InvokeModel for the embedding model families
 * (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html):
 *   - Amazon Titan Text Embeddings (`amazon.titan-embed-*`, https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html):
 *     one input per request, {inputText, dimensions?} -> {embedding, inputTextTokenCount}.
 *   - Cohere Embed (`cohere.embed-*`, https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html):
 *     up to 96 texts, {texts, input_type} -> {embeddings}.
 * Vectors come back as float arrays, or base64 of little-endian float32 when the client asked for
 * `encoding_format: "base64"` (the OpenAI SDKs' default). Titan reports its token count (usage).
 */
import { isGatewayError, type GatewayError } from '../../errors.js';
import { type ChatTranslator, invalid, isObject, openAIErrorJson, optionalPositiveInt, type ResponseOptions, type TranslatedResponse, type TranslationContext, unsupported } from '../translation.js';
import { bedrockChat } from './chat.js';

const PROVIDER = 'AWS Bedrock';
export const MAX_COHERE_TEXTS = 96;

type Family = 'titan' | 'cohere';

export function embeddingFamily(model: string): Family | undefined {
  if (model.startsWith('amazon.titan-embed')) return 'titan';
  if (model.startsWith('cohere.embed')) return 'cohere';
  return undefined;
}

function request(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
  const family = embeddingFamily(ctx.upstreamModel);
  if (!family) return unsupported('model', PROVIDER, `embeddings are translated for Titan (amazon.titan-embed-*) and Cohere (cohere.embed-*) models, not '${ctx.upstreamModel}'`);
  const input = body['input'];
  const inputs = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(inputs) || inputs.length === 0) return invalid('input', 'expected a string or a non-empty array of strings.');
  if (!inputs.every((x) => typeof x === 'string' && x !== '')) return unsupported('input', PROVIDER, 'token arrays and empty strings cannot be translated; send text');
  const format = body['encoding_format'];
  if (format !== undefined && format !== null && format !== 'float' && format !== 'base64') return invalid('encoding_format', "expected 'float' or 'base64'.");
  const dimensions = optionalPositiveInt(body, 'dimensions');
  if (isGatewayError(dimensions)) return dimensions;
  if (family === 'titan') {
    if (inputs.length > 1) return unsupported('input', PROVIDER, 'Titan embeds one input per request; send one string');
    return Buffer.from(JSON.stringify({ inputText: inputs[0], ...(dimensions === undefined ? {} : { dimensions }) }));
  }
  if (dimensions !== undefined) return unsupported('dimensions', PROVIDER, 'Cohere Embed on Bedrock has a fixed size');
  if (inputs.length > MAX_COHERE_TEXTS) return invalid('input', `Cohere Embed takes at most ${MAX_COHERE_TEXTS} texts per request.`);
  return Buffer.from(JSON.stringify({ texts: inputs, input_type: 'search_document' }));
}

function base64Of(values: readonly number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i] as number, i * 4);
  return buf.toString('base64');
}

function response(raw: Buffer, options: ResponseOptions): TranslatedResponse {
  let msg: unknown;
  try {
    msg = JSON.parse(raw.toString('utf8'));
  } catch {
    msg = undefined;
  }
  let vectors: unknown[] | undefined;
  let tokens: number | undefined;
  if (isObject(msg) && Array.isArray(msg['embedding'])) {
    vectors = [msg['embedding']];
    if (typeof msg['inputTextTokenCount'] === 'number') tokens = msg['inputTextTokenCount'];
  } else if (isObject(msg) && Array.isArray(msg['embeddings'])) {
    vectors = msg['embeddings'];
  }
  if (!vectors || !vectors.every((v) => Array.isArray(v))) {
    return { status: 502, body: Buffer.from(openAIErrorJson(`The provider (${PROVIDER} API) returned a malformed embeddings response.`, 'api_error', 'bad_upstream_response')) };
  }
  const data = (vectors as number[][]).map((v, index) => ({ object: 'embedding', index, embedding: options.base64Embeddings ? base64Of(v) : v }));
  const out: Record<string, unknown> = { object: 'list', data, model: options.model };
  if (tokens !== undefined) out['usage'] = { prompt_tokens: tokens, total_tokens: tokens };
  return { status: 200, body: Buffer.from(JSON.stringify(out)) };
}

export const bedrockEmbeddings: ChatTranslator = {
  streamContentType: 'application/vnd.amazon.eventstream',
  request,
  status: (s) => bedrockChat.status(s),
  response,
  error: (status, raw) => bedrockChat.error(status, raw),
  // Embeddings never stream.
  stream: (options) => bedrockChat.stream(options),
};
