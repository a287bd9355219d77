/**
 * OpenAI embeddings <-> Gemini batchEmbedContents (https://ai.google.dev/api/embeddings#method:-models.batchembedcontents):
 * each input string becomes one EmbedContentRequest; `dimensions` -> outputDimensionality; the
 * vectors come back as OpenAI's list, as float arrays or, when the client asked for
 * `encoding_format: "base64"` (the OpenAI SDKs do by default), as base64 of little-endian float32.
 * Gemini reports no token usage for embeddings: the response carries none (accounting keeps the
 * gateway's estimate). Token-array inputs are refused with a 400.
 */
import { type GatewayError } from '../../errors.js';
import { type ChatTranslator, invalid, isObject, openAIErrorJson, optionalPositiveInt, type ResponseOptions, type TranslatedResponse, type TranslationContext, unsupported } from '../translation.js';
import { isGatewayError } from '../../errors.js';
import { geminiChat } from './chat.js';

const PROVIDER = 'Gemini';
/** batchEmbedContents takes at most 100 requests. */
export const MAX_INPUTS = 100;

function request(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
  const input = body['input'];
  const inputs = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(inputs) || inputs.length === 0) return invalid('input', 'expected a string or a non-empty array of strings.');
  if (!inputs.every((x) => typeof x === 'string')) return unsupported('input', PROVIDER, 'token arrays cannot be translated; send strings');
  if (inputs.length > MAX_INPUTS) return invalid('input', `the ${PROVIDER} API embeds at most ${MAX_INPUTS} inputs per request.`);
  const dimensions = optionalPositiveInt(body, 'dimensions');
  if (isGatewayError(dimensions)) return dimensions;
  const format = body['encoding_format'];
  if (format !== undefined && format !== null && format !== 'float' && format !== 'base64') return invalid('encoding_format', "expected 'float' or 'base64'.");
  const model = `models/${ctx.upstreamModel}`;
  const requests = (inputs as string[]).map((text) => ({ model, content: { parts: [{ text }] }, ...(dimensions === undefined ? {} : { outputDimensionality: dimensions }) }));
  return Buffer.from(JSON.stringify({ requests }));
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
  if (!isObject(msg) || !Array.isArray(msg['embeddings'])) {
    return { status: 502, body: Buffer.from(openAIErrorJson(`The provider (${PROVIDER} API) returned a malformed embeddings response.`, 'api_error', 'bad_upstream_response')) };
  }
  const data = msg['embeddings'].map((e, index) => {
    const values = isObject(e) && Array.isArray(e['values']) ? (e['values'] as number[]) : [];
    return { object: 'embedding', index, embedding: options.base64Embeddings ? base64Of(values) : values };
  });
  return { status: 200, body: Buffer.from(JSON.stringify({ object: 'list', data, model: options.model })) };
}

export const geminiEmbeddings: ChatTranslator = {
  streamContentType: 'text/event-stream',
  request,
  status: (s) => s,
  response,
  error: (status, raw) => geminiChat.error(status, raw),
  // Embeddings never stream; a stream here would be a bug upstream of this translator.
  stream: (options) => geminiChat.stream(options),
};
