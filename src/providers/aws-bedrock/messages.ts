/**
 * Claude on Bedrock through Anthropic's own Messages API (the front door `/v1/messages`), instead of
 * the Converse translation: prompt caching (`cache_control`), signed thinking, documents and
 * citations, `anthropic-beta` features and exact usage (cache creation and read tokens) reach the
 * client as Anthropic defines them.
 *
 * Behaviour follows AWS's published references:
 *   - InvokeModel:  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html
 *   - InvokeModelWithResponseStream: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html
 *     (`Accept: application/vnd.amazon.eventstream`, `X-Amzn-Bedrock-Accept` for the payload type;
 *     `chunk` events carry `{"bytes": base64(one Anthropic stream event)}`; exceptions arrive as
 *     frames: internalServerException, modelStreamErrorException, validationException,
 *     throttlingException, modelTimeoutException, serviceUnavailableException)
 *   - CountTokens:  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokens.html
 *     (`{"input":{"invokeModel":{"body": base64}}}` -> `{"inputTokens": N}`, foundation model ids only)
 *   - Claude's Messages body on Bedrock: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html
 *     (no `model`, no `stream`, `anthropic_version: "bedrock-2023-05-31"`, betas as `anthropic_beta: [...]`)
 */
import { anthropicErrorJson } from '../openai/messages.js';
import { isObject, type ResponseTranslator, type StreamTranslator, type TranslatedResponse } from '../translation.js';
import type { BodyEdits, MessagesOperation, NativeMessages } from '../types.js';
import { anthropicErrorEvent, cloudErrorToAnthropic } from '../anthropic/native.js';
import { EventStreamFrames, type EventStreamMessage } from './event-stream.js';

/** The Messages API version Bedrock expects in the body. */
export const BEDROCK_ANTHROPIC_VERSION = 'bedrock-2023-05-31';

/**
 * Claude model ids: foundation models (`anthropic.claude-...`), cross-region inference profiles
 * (`us.` / `eu.` / `apac.` / `global.` ... `anthropic.claude-...`) and ARNs naming either.
 */
const CLAUDE_ID = /(?:^|[/.])anthropic\.claude/;
/** The geography prefix of an inference profile id (`us.`, `us-gov.`, `global.` ...). */
const PROFILE_PREFIX = /^[a-z]{2,6}(?:-[a-z]+)?\.(?=anthropic\.)/;

export function isBedrockClaude(upstreamModel: string): boolean {
  return CLAUDE_ID.test(upstreamModel);
}

/** CountTokens takes foundation model ids only: an inference profile's geography prefix is dropped. */
export function countTokensModel(upstreamModel: string): string {
  return upstreamModel.replace(PROFILE_PREFIX, '');
}

const EMPTY = Buffer.alloc(0);
const NEWLINE = 0x0a;
const BYTES_MARK = Buffer.from('"bytes":"');
const TYPE_MARK = Buffer.from('{"type":"');
const EVENT = Buffer.from('event: ');
const DATA = Buffer.from('\ndata: ');
const END = Buffer.from('\n\n');

/** Anthropic error type of a Bedrock stream exception (`:exception-type`). */
function exceptionType(name: string): string {
  if (name === 'throttlingException') return 'rate_limit_error';
  if (name === 'validationException') return 'invalid_request_error';
  if (name === 'serviceUnavailableException') return 'overloaded_error';
  return 'api_error';
}

type State = 'open' | 'stopped' | 'failed';

/**
 * InvokeModelWithResponseStream -> Anthropic SSE, incrementally: frames split anywhere across
 * network chunks are reassembled (one incomplete frame held, at most MAX_FRAME_BYTES), each `chunk`
 * event's payload is Anthropic's event JSON, sent on as `event: <type>\ndata: <json>\n\n` with its
 * bytes unchanged. An exception frame, or a stream that ends before `message_stop`, ends with an
 * Anthropic `error` event.
 */
export class BedrockMessagesStream implements StreamTranslator {
  private readonly frames = new EventStreamFrames();
  private out: Buffer[] = [];
  private state: State = 'open';
  /** Made once: handed to the frame reader for every chunk. */
  private readonly onMessage = (message: EventStreamMessage): boolean => {
    this.frame(message);
    return this.state === 'open';
  };

  push(chunk: Buffer): Buffer {
    if (this.state !== 'open') return EMPTY;
    const problem = this.frames.push(chunk, this.onMessage);
    if (problem === 'unreadable') this.fail('api_error', 'The provider sent an event-stream frame the gateway cannot read.');
    else if (problem === 'corrupt') this.fail('api_error', 'The provider sent a corrupt event-stream frame.');
    return this.flush();
  }

  end(): Buffer {
    if (this.state === 'open') this.fail('api_error', 'The provider ended the stream before the message was complete.');
    return this.flush();
  }

  private frame(message: EventStreamMessage): void {
    const kind = message.headers[':message-type'];
    const body = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
    if (kind?.value !== 'event') {
      const name = message.headers[':exception-type'] ?? message.headers[':error-code'];
      const type = typeof name?.value === 'string' ? name.value : 'internalServerException';
      let text = `The provider reported ${type} during the stream.`;
      try {
        const parsed: unknown = JSON.parse(body.toString('utf8'));
        if (isObject(parsed) && typeof parsed['message'] === 'string') text = parsed['message'];
      } catch {
        // the exception's name says enough
      }
      this.fail(exceptionType(type), text);
      return;
    }
    if (message.headers[':event-type']?.value !== 'chunk') return; // later event types need no output
    const event = chunkEvent(body);
    if (!event) {
      this.fail('api_error', 'The provider sent a stream event the gateway cannot read.');
      return;
    }
    this.out.push(EVENT, Buffer.from(event.type), DATA, event.json, END);
    if (event.type === 'message_stop') this.state = 'stopped';
    else if (event.type === 'error') this.state = 'failed';
  }

  private fail(type: string, message: string): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.out.push(Buffer.from(anthropicErrorEvent(type, message)));
  }

  private flush(): Buffer {
    if (this.out.length === 0) return EMPTY;
    const bytes = this.out.length === 1 ? (this.out[0] as Buffer) : Buffer.concat(this.out);
    this.out = [];
    return bytes;
  }
}

/**
 * One `chunk` payload `{"bytes":"<base64>"}` -> the Anthropic event's type and JSON bytes. The payload
 * and the event are read by position when they have their usual shape (they always do), parsed
 * otherwise; an event with a line break is re-serialised (SSE data is one line).
 */
export function chunkEvent(payload: Buffer): { readonly type: string; readonly json: Buffer } | undefined {
  let base64: string | undefined;
  const at = payload.indexOf(BYTES_MARK);
  const close = at < 0 ? -1 : payload.indexOf(0x22, at + BYTES_MARK.length);
  if (close > 0) base64 = payload.toString('latin1', at + BYTES_MARK.length, close);
  else {
    try {
      const parsed: unknown = JSON.parse(payload.toString('utf8'));
      if (isObject(parsed) && typeof parsed['bytes'] === 'string') base64 = parsed['bytes'];
    } catch {
      return undefined;
    }
  }
  if (base64 === undefined) return undefined;
  let json = Buffer.from(base64, 'base64');
  let type: string | undefined;
  if (json.subarray(0, TYPE_MARK.length).equals(TYPE_MARK)) {
    const end = json.indexOf(0x22, TYPE_MARK.length);
    if (end > 0) type = json.toString('latin1', TYPE_MARK.length, end);
  }
  if (type === undefined || json.indexOf(NEWLINE) >= 0) {
    try {
      const parsed: unknown = JSON.parse(json.toString('utf8'));
      if (!isObject(parsed) || typeof parsed['type'] !== 'string') return undefined;
      type = parsed['type'];
      json = Buffer.from(JSON.stringify(parsed));
    } catch {
      return undefined;
    }
  }
  return { type, json };
}

const passJson = (status: number, stream: boolean): boolean => status >= 200 && status < 300 && !stream;

/**
 * Bedrock's "overloaded" answers (ServiceUnavailableException 503, ModelNotReadyException 429) are
 * Anthropic's 529 `overloaded_error` for the client, so the Anthropic SDK treats them as it treats
 * Claude's own; a ThrottlingException stays 429 `rate_limit_error`.
 */
export function bedrockMessagesStatus(status: number, errorType?: string): number {
  if (status === 503) return 529;
  if (status === 429 && errorType?.startsWith('ModelNotReadyException')) return 529;
  return status;
}

/** InvokeModel / InvokeModelWithResponseStream: JSON passes as it is, streams are decoded, errors become Anthropic's. */
const messagesResponse: ResponseTranslator = {
  streamContentType: 'application/vnd.amazon.eventstream',
  passes: passJson,
  status: bedrockMessagesStatus,
  // Reached only for a 2xx that is not the stream the client asked for: Claude's JSON as it is.
  response: (body): TranslatedResponse => ({ status: 200, body }),
  error: (status, body, errorType) => cloudErrorToAnthropic('Bedrock', status, body, bedrockMessagesStatus(status, errorType)),
  stream: () => new BedrockMessagesStream(),
};

/**
 * CountTokens' refusal of a model it cannot count for: HTTP 400, `x-amzn-errortype:
 * ValidationException:...`, `{"message":"The provided model doesn't support counting tokens."}` (the
 * service's exact answer; CountTokens covers only some Claude models). Other 400s (a malformed body,
 * a prompt over its limit) are the client's and stay errors.
 */
const COUNT_UNSUPPORTED = /doesn[’']t support counting tokens/i;

export function bedrockCountRefused(status: number, errorType: string | undefined, body: Buffer): boolean {
  if (status !== 400) return false;
  if (errorType !== undefined && !errorType.startsWith('ValidationException')) return false;
  if (body.length > 4096) return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  if (!isObject(parsed)) return false;
  const message = typeof parsed['message'] === 'string' ? parsed['message'] : parsed['Message'];
  return typeof message === 'string' && COUNT_UNSUPPORTED.test(message);
}

/** CountTokens: `{"inputTokens": N}` -> Anthropic's `{"input_tokens": N}`. */
const countTokensResponse: ResponseTranslator = {
  countRefused: bedrockCountRefused,
  countMayRefuse: (status) => status === 400,
  streamContentType: 'application/vnd.amazon.eventstream',
  status: (s) => s,
  response(body): TranslatedResponse {
    let tokens: unknown;
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      tokens = isObject(parsed) ? parsed['inputTokens'] : undefined;
    } catch {
      tokens = undefined;
    }
    if (typeof tokens !== 'number') return { status: 502, body: Buffer.from(anthropicErrorJson('api_error', 'Bedrock CountTokens returned no inputTokens.')) };
    return { status: 200, body: Buffer.from(`{"input_tokens":${tokens}}`) };
  },
  error: (status, body) => cloudErrorToAnthropic('Bedrock', status, body),
  stream: () => new BedrockMessagesStream(),
};

export const bedrockNativeMessages: NativeMessages = {
  serves: isBedrockClaude,
  edits(operation: MessagesOperation, _upstreamModel: string, betas: readonly string[]): BodyEdits {
    const set: (readonly [string, unknown])[] = [['anthropic_version', BEDROCK_ANTHROPIC_VERSION]];
    if (betas.length > 0) set.push(['anthropic_beta', betas]);
    // CountTokens checks the body as InvokeModel would: max_tokens is required there, not in count_tokens.
    if (operation === 'messages/count_tokens') set.push(['max_tokens', 1]);
    return { drop: ['model', 'stream'], set };
  },
  wrap(operation, body) {
    return operation === 'messages/count_tokens' ? Buffer.from(`{"input":{"invokeModel":{"body":"${body.toString('base64')}"}}}`) : body;
  },
  passHeaders: [],
  response: (operation) => (operation === 'messages' ? messagesResponse : countTokensResponse),
};
