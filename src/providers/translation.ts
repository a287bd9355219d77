/**
 * The translation framework: one translator per (client API, provider API) pair, each with a
 * request, a response and a stream part. Translators are pure (bytes or parsed JSON in, bytes out)
 * and know nothing of Envoy or gRPC; the pipeline (pipeline/translation.ts) feeds them and the
 * ext_proc stages turn what they return into Envoy answers.
 *
 * The client API is always OpenAI chat completions today (the only front door); a provider folder
 * exports its translator as `chat` from `<provider>/chat.ts`.
 */
import { gatewayError, type GatewayError } from '../errors.js';

/** Facts about one attempt a translator needs beyond the client's body. */
export interface TranslationContext {
  /** Model name sent upstream. */
  readonly upstreamModel: string;
  /** `max_tokens` when the client gave none (ProviderModel.maxTokens); undefined = the translator's default. */
  readonly defaultMaxTokens: number | undefined;
  /** The gateway asked for stream usage on the client's behalf (the limits step): OpenAI-style targets must too. */
  readonly streamUsage?: boolean;
}

/** What the client asked for that shapes the translated response. */
export interface ResponseOptions {
  /** Model name sent upstream (for providers whose responses do not name it). */
  readonly model: string;
  /** `created` of the OpenAI objects (Unix seconds): the caller's clock, so translators stay pure. */
  readonly created: number;
  /** The client asked for `stream_options.include_usage` (or the gateway did, to meter the stream). */
  readonly includeUsage: boolean;
  /** Embeddings: the client asked for `encoding_format: "base64"` (little-endian float32, base64). */
  readonly base64Embeddings?: boolean;
}

/** A translated response: status for the client and the OpenAI-shaped body. */
export interface TranslatedResponse {
  readonly status: number;
  readonly body: Buffer;
}

/**
 * An incremental stream translator: provider stream bytes in (split anywhere), OpenAI SSE bytes out.
 * State is bounded (one incomplete event, a few counters per content block).
 */
export interface StreamTranslator {
  /** One network chunk of the provider's stream; returns the OpenAI SSE bytes it completes (maybe empty). */
  push(chunk: Buffer): Buffer;
  /** The provider's stream ended; returns the last bytes (usage chunk, `[DONE]`, or an error event if it ended early). */
  end(): Buffer;
}

/** OpenAI chat completions <-> one provider API. */
export interface ChatTranslator {
  /** Content type of the provider's streamed responses (`text/event-stream`, AWS event streams ...). */
  readonly streamContentType: string;
  /** OpenAI chat request (parsed once by the pipeline) -> the provider's request body, or a client error (400). */
  request(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError;
  /** Status the client sees for a provider status (before the body arrives: it goes out with the headers). */
  status(providerStatus: number): number;
  /** A complete non-streamed provider body of a successful (2xx) response -> OpenAI `chat.completion`. */
  response(body: Buffer, options: ResponseOptions): TranslatedResponse;
  /** A complete provider error body (non-2xx) -> OpenAI's error shape `{"error":{message,type,param,code}}`. */
  error(providerStatus: number, body: Buffer): Buffer;
  /** A fresh stream translator for one streamed response. */
  stream(options: ResponseOptions): StreamTranslator;
}

// ---- OpenAI-side builders shared by translators ----------------------------------------------

/** OpenAI `finish_reason` values. */
export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

/** Token usage as providers report it, normalised. */
export interface ProviderUsage {
  /** All prompt tokens, cached ones included (OpenAI counts them in prompt_tokens). */
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens read from the provider's cache. */
  readonly cachedTokens: number;
  /** Completion tokens spent on reasoning, when the provider reports them separately. */
  readonly reasoningTokens: number | undefined;
}

/** OpenAI's `usage` object. */
export function openAIUsage(u: ProviderUsage): Record<string, unknown> {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    ...(u.reasoningTokens === undefined ? {} : { completion_tokens_details: { reasoning_tokens: u.reasoningTokens } }),
  };
}

/** One SSE event of an OpenAI stream. */
export function sseData(json: string): string {
  return `data: ${json}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';

/** OpenAI's error body for a provider error that has no better mapping. */
export function openAIErrorJson(message: string, type: string, code: string | null, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

/** OpenAI error `type` for an HTTP status (what OpenAI itself returns for it). */
export function openAIErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'api_error';
}

// ---- request-side helpers: reading OpenAI's request fields with clear 400s -------------------

export type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json };
export type JsonObject = { readonly [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** 400 for a parameter the provider API cannot honour. */
export function unsupported(param: string, provider: string, why = ''): GatewayError {
  return gatewayError('unsupported_parameter', `'${param}' is not supported for models served by the ${provider} API${why ? `: ${why}` : ''}.`);
}

/** 400 for a malformed or out-of-range value. */
export function invalid(param: string, message: string): GatewayError {
  return gatewayError('invalid_value', `Invalid '${param}': ${message}`);
}

/**
 * The text of an OpenAI message whose content must be text only (system, developer, tool messages):
 * a string, or text parts joined by newlines; anything else is a 400 naming the part.
 */
export function textOfContent(content: unknown, where: string): string | GatewayError {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return invalid(`${where}.content`, 'expected a string or an array of text parts.');
  let text = '';
  for (const [i, part] of content.entries()) {
    if (!isObject(part) || part['type'] !== 'text' || typeof part['text'] !== 'string') {
      return invalid(`${where}.content[${i}]`, 'only text parts are allowed here.');
    }
    text += (text ? '\n' : '') + part['text'];
  }
  return text;
}

/** Reads an optional number in [min, max]; error otherwise. */
export function optionalNumber(body: Readonly<Record<string, unknown>>, name: string, min: number, max: number): number | undefined | GatewayError {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) return invalid(name, 'expected a number.');
  if (v < min || v > max) return invalid(name, `expected a number between ${min} and ${max}, got ${v}.`);
  return v;
}

/** Reads an optional positive integer; error otherwise. */
export function optionalPositiveInt(body: Readonly<Record<string, unknown>>, name: string): number | undefined | GatewayError {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) return invalid(name, 'expected a positive integer.');
  return v;
}

/** A parsed `data:` URL of an image. */
export interface DataUrl {
  readonly mediaType: string;
  readonly base64: string;
  /** Decoded size in bytes (computed from the base64 length, without decoding). */
  readonly bytes: number;
}

const DATA_URL_PREFIX = 'data:';
const BASE64_MARK = ';base64,';

/** Parses `data:<media type>;base64,<data>`; undefined when it is not such a URL. */
export function parseDataUrl(url: string): DataUrl | undefined {
  if (!url.startsWith(DATA_URL_PREFIX)) return undefined;
  const mark = url.indexOf(BASE64_MARK);
  if (mark < 0) return undefined;
  const mediaType = url.slice(DATA_URL_PREFIX.length, mark).toLowerCase();
  const base64 = url.slice(mark + BASE64_MARK.length);
  let padding = 0;
  if (base64.endsWith('==')) padding = 2;
  else if (base64.endsWith('=')) padding = 1;
  return { mediaType, base64, bytes: Math.floor((base64.length * 3) / 4) - padding };
}

// ---- composition ---------------------------------------------------------------------------

/**
 * Chains two translators through OpenAI chat completions: `outer` is (client API <-> chat
 * completions), `inner` is (chat completions <-> the provider's API). This is how the Messages front
 * door reaches providers whose API is neither OpenAI's nor Anthropic's (the request is translated
 * twice, the response and stream back twice), without a translator per (front door, provider) pair.
 * The inner stream always carries usage: the outer one needs it.
 */
export function composeTranslators(outer: ChatTranslator, inner: ChatTranslator): ChatTranslator {
  return {
    streamContentType: inner.streamContentType,
    request(body, ctx) {
      const chat = outer.request(body, ctx);
      if (!Buffer.isBuffer(chat)) return chat;
      return inner.request(JSON.parse(chat.toString('utf8')) as Record<string, unknown>, ctx);
    },
    status: (s) => outer.status(inner.status(s)),
    response(body, options) {
      const chat = inner.response(body, { ...options, includeUsage: true });
      if (chat.status < 200 || chat.status >= 300) return { status: chat.status, body: outer.error(chat.status, chat.body) };
      return outer.response(chat.body, options);
    },
    error: (status, body) => outer.error(inner.status(status), inner.error(status, body)),
    stream(options) {
      const first = inner.stream({ ...options, includeUsage: true });
      const second = outer.stream(options);
      return {
        push: (chunk) => {
          const mid = first.push(chunk);
          return mid.length > 0 ? second.push(mid) : mid;
        },
        end: () => {
          const mid = first.end();
          const a = mid.length > 0 ? second.push(mid) : mid;
          const b = second.end();
          return a.length === 0 ? b : b.length === 0 ? a : Buffer.concat([a, b]);
        },
      };
    },
  };
}
