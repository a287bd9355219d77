/**
 * The translation framework: one translator per (client API, provider API) pair, each with a
 * request, a response and a stream part. Translators are pure (bytes or parsed JSON in, bytes out)
 * and know nothing of Envoy or gRPC; the pipeline (pipeline/translation.ts) feeds them and the
 * ext_proc stages turn what they return into Envoy answers.
 *
 * The client API is always OpenAI chat completions today (the only front door); a provider folder
 * exports its translator as `chat` from `<provider>/chat.ts`.
 */
import { gatewayError, type GatewayError, isGatewayError } from '../errors.js';

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
  /**
   * The client asked for `response_format` json_object or json_schema. Translators that request it
   * through one forced tool (Anthropic, Bedrock) answer that tool's input as the message content
   * (a JSON string) with finish_reason "stop", streamed as content deltas.
   */
  readonly jsonResponse?: boolean;
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

/** The response side of a translator: what the attempt stage needs to turn a provider's answer into the client's. */
export interface ResponseTranslator {
  /** Content type of the provider's streamed responses (`text/event-stream`, AWS event streams ...). */
  readonly streamContentType: string;
  /**
   * True when a response with this status goes to the client as the provider sent it (the body is
   * not read by the gateway: a native answer already in the client's API). Absent = never.
   */
  passes?(providerStatus: number, stream: boolean): boolean;
  /**
   * Status the client sees for a provider status (before the body arrives: it goes out with the
   * headers); `errorType` is the provider's error type header when it sent one (AWS `x-amzn-errortype`).
   */
  status(providerStatus: number, errorType?: string): number;
  /** A complete non-streamed provider body of a successful (2xx) response -> OpenAI `chat.completion`. */
  response(body: Buffer, options: ResponseOptions): TranslatedResponse;
  /** A complete provider error body (non-2xx) -> OpenAI's error shape `{"error":{message,type,param,code}}`. */
  error(providerStatus: number, body: Buffer, errorType?: string): Buffer;
  /** A fresh stream translator for one streamed response. */
  stream(options: ResponseOptions): StreamTranslator;
  /**
   * Token counting only (`/v1/messages/count_tokens` to a cloud's own counter): true when the cloud
   * refused to count for this model (not for a malformed request), so the gateway answers with its
   * own estimate instead. `errorType` is the cloud's error type header when it sent one. Absent = never.
   */
  countRefused?(providerStatus: number, errorType: string | undefined, body: Buffer): boolean;
  /** A status for which `countRefused` may hold: that answer is held whole before its headers go out. */
  countMayRefuse?(providerStatus: number): boolean;
}

/** OpenAI chat completions <-> one provider API. */
export interface ChatTranslator extends ResponseTranslator {
  /** OpenAI chat request (parsed once by the pipeline) -> the provider's request body, or a client error (400). */
  request(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError;
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

// ---- response_format through a forced tool ---------------------------------------------------

/** The tool that carries a JSON answer when the schema has no usable name. */
export const JSON_RESPONSE_TOOL = 'json_response';
const TOOL_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

/** What a `response_format` asks for, for providers that honour it with one forced tool. */
export interface JsonResponseTool {
  /** Tool name: the json_schema's `name`, or JSON_RESPONSE_TOOL. */
  readonly name: string;
  readonly description: string;
  /** The tool's input schema: the client's JSON Schema, or any object for json_object. */
  readonly schema: JsonObject;
  /**
   * `json_schema.strict: true`: the client asked for output guaranteed to match the schema. Providers
   * with a strict mode (Anthropic strict tool use, Bedrock toolSpec.strict) are asked for it.
   */
  readonly strict: boolean;
}

/**
 * Reads an OpenAI `strict` flag (response_format.json_schema.strict, tools[].function.strict):
 * true, false (also when absent or null), or a 400 for anything else, as OpenAI answers.
 */
export function readStrict(holder: JsonObject, where: string): boolean | GatewayError {
  const strict = holder['strict'];
  if (strict === undefined || strict === null) return false;
  return typeof strict === 'boolean' ? strict : invalid(where, 'expected a boolean.');
}

/** Whether an OpenAI request asks for a JSON answer (response_format json_object or json_schema). */
export function wantsJsonResponse(body: Readonly<Record<string, unknown>>): boolean {
  const format = body['response_format'];
  return isObject(format) && (format['type'] === 'json_object' || format['type'] === 'json_schema');
}

/**
 * Reads `response_format` for a provider that answers in JSON through a forced tool whose input
 * schema is the requested schema (Anthropic Messages, Bedrock Converse): undefined for text (or
 * absent), the tool otherwise, a clear 400 for what cannot work that way (a schema whose root is not
 * an object: tool inputs are objects; the client's own tools or reasoning, which cannot coexist
 * with a forced tool).
 */
export function jsonResponseTool(body: Readonly<Record<string, unknown>>, provider: string, withReasoning = ''): JsonResponseTool | undefined | GatewayError {
  const format = body['response_format'];
  if (format === undefined || format === null) return undefined;
  if (!isObject(format)) return invalid('response_format', "expected an object {type: 'text' | 'json_object' | 'json_schema'}.");
  const type = format['type'];
  if (type === 'text') return undefined;
  if (type !== 'json_object' && type !== 'json_schema') return invalid('response_format.type', "expected 'text', 'json_object' or 'json_schema'.");
  const tools = body['tools'];
  if (Array.isArray(tools) && tools.length > 0) {
    return unsupported('response_format', provider, 'it is translated into one forced tool call, which cannot be combined with your own tools (drop response_format and add a tool whose parameters are your schema)');
  }
  const effort = body['reasoning_effort'];
  if (effort !== undefined && effort !== null && effort !== 'none') {
    return unsupported('response_format', provider, `it is translated into a forced tool call, which extended thinking (reasoning_effort) does not allow${withReasoning ? ` (${withReasoning})` : ''}`);
  }
  if (type === 'json_object') {
    return { name: JSON_RESPONSE_TOOL, description: 'Respond with a JSON object: the input of this tool is your whole answer.', schema: { type: 'object' }, strict: false };
  }
  return readJsonSchema(format, provider);
}

/** `response_format.json_schema` of a json_schema format: its name, description and object schema, or a 400. */
export function readJsonSchema(format: JsonObject, provider: string): JsonResponseTool | GatewayError {
  const spec = format['json_schema'];
  if (!isObject(spec)) return invalid('response_format.json_schema', 'expected an object {name, schema}.');
  const schema = spec['schema'] ?? { type: 'object' };
  if (!isObject(schema)) return invalid('response_format.json_schema.schema', 'expected a JSON Schema object.');
  if (schema['type'] !== 'object') {
    return unsupported('response_format.json_schema.schema', provider, "the schema's root must be {type: 'object'} (the answer is a tool input, which is an object)");
  }
  const strict = readStrict(spec, 'response_format.json_schema.strict');
  if (isGatewayError(strict)) return strict;
  const name = typeof spec['name'] === 'string' && TOOL_NAME_PATTERN.test(spec['name']) ? spec['name'] : JSON_RESPONSE_TOOL;
  const described = typeof spec['description'] === 'string' && spec['description'] !== '' ? `${spec['description']} ` : '';
  return { name, description: `${described}Respond with a JSON object matching this schema: the input of this tool is your whole answer.`, schema, strict };
}

/** With response_format, the forced tool call is the answer: it finished as a message does. */
export function jsonFinish(reason: FinishReason, options: ResponseOptions): FinishReason {
  return options.jsonResponse && reason === 'tool_calls' ? 'stop' : reason;
}

// ---- reasoning blocks round-trip (thinking_blocks) -------------------------------------------

/**
 * One reasoning block as an OpenAI-side message carries it (`thinking_blocks`, the field LiteLLM
 * documents): Claude needs the blocks of the assistant turn that made a tool call sent back,
 * unchanged and with their signature, when extended thinking is on.
 */
export type ThinkingBlock = { readonly type: 'thinking'; readonly thinking: string; readonly signature?: string } | { readonly type: 'redacted_thinking'; readonly data: string };

/** Reads an assistant message's `thinking_blocks` (absent = none); a clear 400 for a malformed one. */
export function readThinkingBlocks(msg: JsonObject, where: string): ThinkingBlock[] | GatewayError {
  const blocks = msg['thinking_blocks'];
  if (blocks === undefined || blocks === null) return [];
  if (!Array.isArray(blocks)) return invalid(`${where}.thinking_blocks`, 'expected an array of {type: "thinking", thinking, signature} or {type: "redacted_thinking", data}.');
  const out: ThinkingBlock[] = [];
  for (const [i, block] of blocks.entries()) {
    const at = `${where}.thinking_blocks[${i}]`;
    if (!isObject(block)) return invalid(at, 'expected a thinking block object.');
    if (block['type'] === 'thinking') {
      if (typeof block['thinking'] !== 'string') return invalid(`${at}.thinking`, 'expected a string.');
      const signature = block['signature'];
      if (signature !== undefined && signature !== null && typeof signature !== 'string') return invalid(`${at}.signature`, 'expected a string.');
      // A missing signature is passed on: the provider says why it needs one.
      out.push(typeof signature === 'string' ? { type: 'thinking', thinking: block['thinking'], signature } : { type: 'thinking', thinking: block['thinking'] });
    } else if (block['type'] === 'redacted_thinking') {
      if (typeof block['data'] !== 'string' || block['data'] === '') return invalid(`${at}.data`, 'expected the opaque data string of the redacted block.');
      out.push({ type: 'redacted_thinking', data: block['data'] });
    } else {
      return invalid(`${at}.type`, "expected 'thinking' or 'redacted_thinking'.");
    }
  }
  return out;
}

/** Largest total of reasoning text a stream holds to hand the blocks back whole (1 MiB). */
export const MAX_THINKING_CHARS = 1024 * 1024;

/**
 * Collects a streamed message's reasoning blocks so that each completed block can be sent in one
 * delta: `{"thinking_blocks": [every block so far]}` (the whole list each time: the OpenAI SDK's
 * stream accumulator keeps the last value of a field it does not know). The text also went out as
 * `reasoning_content` deltas while it streamed. Bounded: past MAX_THINKING_CHARS the blocks are no
 * longer collected (the message then carries no thinking_blocks, as before).
 */
export class ThinkingCollector {
  private readonly done: ThinkingBlock[] = [];
  private text: string[] = [];
  private signature: string | undefined;
  private open = false;
  private chars = 0;
  private overflow = false;

  /** A reasoning block starts. */
  begin(): void {
    this.open = true;
    this.text = [];
    this.signature = undefined;
  }

  get collecting(): boolean {
    return this.open;
  }

  /** More reasoning text of the open block. */
  append(piece: string): void {
    if (!this.open || this.overflow) return;
    this.chars += piece.length;
    if (this.chars > MAX_THINKING_CHARS) {
      this.overflow = true;
      this.text = [];
      return;
    }
    this.text.push(piece);
  }

  sign(signature: string): void {
    if (this.open) this.signature = (this.signature ?? '') + signature;
  }

  /** A redacted block (whole): the delta to send, or undefined. */
  redacted(data: string): string | undefined {
    this.open = false;
    if (this.overflow) return undefined;
    this.chars += data.length;
    if (this.chars > MAX_THINKING_CHARS) {
      this.overflow = true;
      return undefined;
    }
    this.done.push({ type: 'redacted_thinking', data });
    return this.delta();
  }

  /** The open block ended: the delta to send (the whole list), or undefined. */
  end(): string | undefined {
    if (!this.open) return undefined;
    this.open = false;
    if (this.overflow) return undefined;
    const thinking = this.text.join('');
    this.text = [];
    this.done.push(this.signature === undefined ? { type: 'thinking', thinking } : { type: 'thinking', thinking, signature: this.signature });
    return this.delta();
  }

  private delta(): string {
    return `{"thinking_blocks":${JSON.stringify(this.done)}}`;
  }
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
