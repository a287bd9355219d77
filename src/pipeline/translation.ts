/**
 * Response translation of one upstream attempt to a provider whose API is not OpenAI's
 * (providers/translation.ts). Decides at the response headers what the client will get (status,
 * headers, whether the body is translated as a stream, as one JSON document, or as an error), then
 * turns each body chunk into the bytes that replace it. Knows nothing of Envoy: the attempt stage
 * builds its answers from what this returns.
 */
import type { ResponseOptions, ResponseTranslator, StreamTranslator } from '../providers/translation.js';
import { openAIErrorJson } from '../providers/translation.js';
import { anthropicErrorJson } from '../providers/openai/messages.js';
import type { ClientApi } from '../errors.js';

/** What the attempt stage needs to translate one attempt's response. */
export interface TranslationPlan {
  readonly translator: ResponseTranslator;
  /** The client asked for a stream. */
  readonly stream: boolean;
  /** The body the gateway sent asks for stream usage (the client or the limits step did). */
  readonly includeUsage: boolean;
  /** Model name sent upstream. */
  readonly upstreamModel: string;
  /** Embeddings: the client asked for base64 vectors. */
  readonly base64Embeddings?: boolean;
  /** The client asked for response_format json_object / json_schema (see ResponseOptions). */
  readonly jsonResponse?: boolean;
  /** The client's API (its errors are in that API's shape). */
  readonly api: ClientApi;
}

/** Largest non-streamed response (or error body) held for translation; above it the client gets a 502. */
export const MAX_TRANSLATED_BODY_BYTES = 32 * 1024 * 1024;

/** Header changes for the translated response. */
export interface TranslatedHeaders {
  /** Status for the client when it differs from the provider's (e.g. Anthropic 529 -> 503). */
  readonly status: number | undefined;
  readonly setHeaders: readonly (readonly [string, string])[];
  readonly removeHeaders: readonly string[];
  /** The answer goes to the client as the provider sent it (ResponseTranslator.passes): its body is not read. */
  readonly passes?: boolean;
  /**
   * The answer is held whole before its headers go out (a count_tokens refusal that may become the
   * gateway's estimate): its body comes back through `held`, which decides the status too.
   */
  readonly held?: boolean;
}

/** Response header saying a count_tokens answer is the gateway's estimate, not the provider's count. */
export const TOKEN_COUNT_HEADER = 'x-tollgate-token-count';

/** A held answer (TranslatedHeaders.held) once its body is complete. */
export interface HeldAnswer {
  readonly status: number | undefined;
  readonly setHeaders: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

const EMPTY = Buffer.alloc(0);
/** The body length changes; the provider's own framing and encoding headers no longer hold. */
const REMOVE: readonly string[] = ['content-length', 'content-encoding'];
const JSON_TYPE: readonly (readonly [string, string])[] = [['content-type', 'application/json']];
const SSE_TYPE: readonly (readonly [string, string])[] = [['content-type', 'text/event-stream']];
const PASS: TranslatedHeaders = { status: undefined, setHeaders: [], removeHeaders: [], passes: true };

type Mode = 'stream' | 'json' | 'error';

export class ResponseTranslation {
  private mode: Mode = 'json';
  private status = 0;
  private stream: StreamTranslator | undefined;
  private readonly parts: Buffer[] = [];
  private size = 0;
  private tooLarge = false;
  private errorType: string | undefined;

  /**
   * @param estimate for count_tokens: the gateway's own count (`{"input_tokens":N}`), given instead of
   *   the provider's refusal to count for the model (ResponseTranslator.countRefused); absent = none.
   */
  constructor(
    private readonly plan: TranslationPlan,
    private readonly options: ResponseOptions,
    private readonly estimate?: () => string | undefined,
  ) {}

  /** The provider's response headers arrived (`errorType`: its error type header, AWS `x-amzn-errortype`). */
  headers(status: number, contentType: string | undefined, errorType?: string): TranslatedHeaders {
    this.status = status;
    this.errorType = errorType;
    if (this.plan.translator.passes?.(status, this.plan.stream)) return PASS;
    const mapped = this.plan.translator.status(status, errorType);
    const statusChange = mapped !== status ? mapped : undefined;
    if (status < 200 || status >= 300) {
      this.mode = 'error';
      if (this.estimate && this.plan.translator.countMayRefuse?.(status)) return { status: undefined, setHeaders: [], removeHeaders: [], held: true };
      return { status: statusChange, setHeaders: JSON_TYPE, removeHeaders: REMOVE };
    }
    if (this.plan.stream && contentType !== undefined && contentType.includes(this.plan.translator.streamContentType)) {
      this.mode = 'stream';
      this.stream = this.plan.translator.stream(this.options);
      return { status: statusChange, setHeaders: SSE_TYPE, removeHeaders: REMOVE };
    }
    this.mode = 'json';
    return { status: statusChange, setHeaders: JSON_TYPE, removeHeaders: REMOVE };
  }

  /** One body chunk; returns the bytes the client gets in its place. */
  body(chunk: Buffer, end: boolean): Buffer {
    if (this.mode === 'stream') {
      const s = this.stream as StreamTranslator;
      const out = chunk.length > 0 ? s.push(chunk) : EMPTY;
      return end ? concat(out, s.end()) : out;
    }
    this.hold(chunk);
    if (!end) return EMPTY;
    const whole = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.size);
    this.parts.length = 0;
    if (this.tooLarge) {
      const message = `The provider's response exceeded ${MAX_TRANSLATED_BODY_BYTES} bytes.`;
      return Buffer.from(this.plan.api === 'anthropic' ? anthropicErrorJson('api_error', message) : openAIErrorJson(message, 'api_error', 'bad_upstream_response'));
    }
    if (this.mode === 'error') return this.plan.translator.error(this.status, whole, this.errorType);
    // A status change for a malformed 200 cannot follow the headers any more: the body says it.
    return this.plan.translator.response(whole, this.options).body;
  }

  /**
   * The whole body of a held answer (TranslatedHeaders.held): the gateway's estimate marked as one
   * when the provider refused to count for the model, else the provider's error as usual.
   */
  held(whole: Buffer): HeldAnswer {
    const translator = this.plan.translator;
    if (!this.tooLarge && translator.countRefused?.(this.status, this.errorType, whole)) {
      const counted = this.estimate?.();
      if (counted !== undefined) return { status: 200, setHeaders: [...JSON_TYPE, [TOKEN_COUNT_HEADER, 'estimate']], body: Buffer.from(counted) };
    }
    const mapped = translator.status(this.status, this.errorType);
    return { status: mapped !== this.status ? mapped : undefined, setHeaders: JSON_TYPE, body: this.body(whole, true) };
  }

  private hold(chunk: Buffer): void {
    if (this.tooLarge || chunk.length === 0) return;
    this.size += chunk.length;
    if (this.size > MAX_TRANSLATED_BODY_BYTES) {
      this.tooLarge = true;
      this.parts.length = 0;
      return;
    }
    // Copied: the chunk's memory belongs to the caller.
    this.parts.push(Buffer.from(chunk));
  }
}

function concat(a: Buffer, b: Buffer): Buffer {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return Buffer.concat([a, b]);
}
