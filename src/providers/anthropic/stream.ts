/**
 * Anthropic Messages SSE stream -> OpenAI chat.completion.chunk SSE, incrementally: each network
 * chunk is decoded (events split anywhere are reassembled by SseDecoder) and every complete event is
 * translated at once; nothing is buffered beyond one incomplete event.
 *
 * Event types (https://docs.anthropic.com/en/api/messages-streaming): message_start,
 * content_block_start / content_block_delta (text_delta, input_json_delta, thinking_delta,
 * signature_delta) / content_block_stop, message_delta (stop_reason, cumulative usage), message_stop,
 * ping, error.
 *
 * Tool calls: each tool_use block becomes one OpenAI tool call with its own `index` (0, 1, ... in
 * block order): its first delta carries id, type and name with empty arguments, then every
 * input_json_delta appends its partial JSON to `function.arguments`, which is exactly how the
 * OpenAI SDK accumulates a streamed tool call. Thinking deltas become `reasoning_content`; when a
 * thinking block ends (its signature_delta came), one delta carries `thinking_blocks` (every block
 * so far, with signatures) for the client to send back in a tool loop. With response_format (the
 * forced JSON tool), the tool's input_json_delta pieces are `content` deltas and the finish is "stop".
 *
 * Bounded state: the decoder's one incomplete event, a small per-block table (capped), counters.
 */
import { SseDecoder, type SseSink } from '../sse.js';
import { isObject, openAIErrorJson, openAIErrorType, openAIUsage, type ProviderUsage, type ResponseOptions, SSE_DONE, type StreamTranslator, ThinkingCollector, jsonFinish } from '../translation.js';
import { finishReason, readUsage } from './chat.js';

/** Content blocks tracked per message (tool-call indexes); blocks beyond are passed as text only. */
const MAX_BLOCKS = 1024;
const NOT_A_TOOL = -1;
/** The forced response_format tool: its input is the message content. */
const JSON_ANSWER = -2;
const EMPTY = Buffer.alloc(0);

type State = 'start' | 'open' | 'stopped' | 'failed';

export class AnthropicStreamTranslator implements StreamTranslator, SseSink {
  private readonly decoder = new SseDecoder(this);
  /** Output of the current push. */
  private out = '';
  /** `{"id":...,"object":"chat.completion.chunk","created":...,"model":...,` */
  private prefix: string;
  /** Anthropic content block index -> OpenAI tool call index (NOT_A_TOOL for other blocks). */
  private readonly toolIndex: number[] = [];
  private tools = 0;
  private usage: ProviderUsage | undefined;
  private state: State = 'start';
  /** Created at the first thinking block only (most streams have none). */
  private thinking: ThinkingCollector | undefined;

  constructor(private readonly options: ResponseOptions) {
    this.prefix = chunkPrefix('', '', options.created);
  }

  push(chunk: Buffer): Buffer {
    if (this.state === 'stopped' || this.state === 'failed') return EMPTY;
    this.decoder.push(chunk);
    if (this.decoder.overflow) this.fail('The provider sent a stream event larger than the gateway accepts.', 'api_error', 'bad_upstream_response');
    return this.flush();
  }

  end(): Buffer {
    if (this.state !== 'stopped' && this.state !== 'failed') {
      this.decoder.end();
      // onEvent may have moved the state on (a message_stop without its blank line).
      if (!this.finished()) {
        this.fail('The provider ended the stream before the message was complete.', 'api_error', 'stream_interrupted');
      }
    }
    return this.flush();
  }

  /** One decoded Anthropic event. */
  onEvent(event: string, data: string): void {
    if (this.state === 'stopped' || this.state === 'failed') return;
    if (event === 'ping') return;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      this.fail('The provider sent a stream event that is not JSON.', 'api_error', 'bad_upstream_response');
      return;
    }
    if (!isObject(json)) return;
    switch (event) {
      case 'message_start':
        return this.onMessageStart(json['message']);
      case 'content_block_start':
        return this.onBlockStart(json['index'], json['content_block']);
      case 'content_block_delta':
        return this.onBlockDelta(json['index'], json['delta']);
      case 'message_delta':
        return this.onMessageDelta(json['delta'], json['usage']);
      case 'message_stop':
        return this.onMessageStop();
      case 'content_block_stop':
        return this.onBlockStop();
      case 'error': {
        const err = isObject(json['error']) ? json['error'] : {};
        const type = typeof err['type'] === 'string' ? err['type'] : 'api_error';
        const message = typeof err['message'] === 'string' ? err['message'] : 'The provider reported an error during the stream.';
        this.fail(message, openAIErrorType(type === 'overloaded_error' ? 503 : type === 'rate_limit_error' ? 429 : 500), type);
        return;
      }
      default:
        return; // event types added later need no output
    }
  }

  private onMessageStart(message: unknown): void {
    if (!isObject(message)) return;
    const id = typeof message['id'] === 'string' ? message['id'] : '';
    const model = typeof message['model'] === 'string' ? message['model'] : '';
    this.prefix = chunkPrefix(id, model, this.options.created);
    this.usage = readUsage(message['usage'], this.usage);
    this.state = 'open';
    // No `content` yet: a tool-call-only answer keeps content null, as the non-streamed one does.
    this.delta('{"role":"assistant"}');
  }

  private onBlockStart(index: unknown, block: unknown): void {
    if (typeof index !== 'number' || !isObject(block)) return;
    const type = block['type'];
    if (type === 'tool_use' && this.options.jsonResponse) {
      if (index >= 0 && index < MAX_BLOCKS) this.toolIndex[index] = JSON_ANSWER;
      const input = block['input'];
      if (isObject(input) && Object.keys(input).length > 0) this.delta(`{"content":${JSON.stringify(JSON.stringify(input))}}`);
      return;
    }
    if (type === 'tool_use') {
      const tool = this.tools++;
      if (index >= 0 && index < MAX_BLOCKS) this.toolIndex[index] = tool;
      const input = block['input'];
      // Anthropic starts with `input: {}` and streams the JSON; a non-empty start input is sent whole.
      const args = isObject(input) && Object.keys(input).length > 0 ? JSON.stringify(input) : '';
      this.delta(
        `{"tool_calls":[{"index":${tool},"id":${JSON.stringify(block['id'] ?? '')},"type":"function","function":{"name":${JSON.stringify(block['name'] ?? '')},"arguments":${JSON.stringify(args)}}}]}`,
      );
      return;
    }
    if (index >= 0 && index < MAX_BLOCKS) this.toolIndex[index] = NOT_A_TOOL;
    if (type === 'text' && typeof block['text'] === 'string' && block['text'] !== '') this.delta(`{"content":${JSON.stringify(block['text'])}}`);
    else if (type === 'thinking') {
      this.thinking ??= new ThinkingCollector();
      this.thinking.begin();
      if (typeof block['thinking'] === 'string' && block['thinking'] !== '') this.onThinking(block['thinking']);
    } else if (type === 'redacted_thinking' && typeof block['data'] === 'string') {
      this.thinking ??= new ThinkingCollector();
      const delta = this.thinking.redacted(block['data']);
      if (delta) this.delta(delta);
    }
  }

  private onThinking(text: string): void {
    this.thinking?.append(text);
    this.delta(`{"reasoning_content":${JSON.stringify(text)}}`);
  }

  private onBlockStop(): void {
    // Blocks do not interleave in a Messages stream: a stop while a thinking block is open ends it.
    if (!this.thinking?.collecting) return;
    const delta = this.thinking.end();
    if (delta) this.delta(delta);
  }

  private onBlockDelta(index: unknown, delta: unknown): void {
    if (!isObject(delta)) return;
    switch (delta['type']) {
      case 'text_delta':
        if (typeof delta['text'] === 'string' && delta['text'] !== '') this.delta(`{"content":${JSON.stringify(delta['text'])}}`);
        return;
      case 'input_json_delta': {
        const partial = delta['partial_json'];
        const tool = typeof index === 'number' ? this.toolIndex[index] : undefined;
        if (typeof partial !== 'string' || partial === '' || tool === undefined || tool === NOT_A_TOOL) return;
        if (tool === JSON_ANSWER) {
          this.delta(`{"content":${JSON.stringify(partial)}}`);
          return;
        }
        this.delta(`{"tool_calls":[{"index":${tool},"function":{"arguments":${JSON.stringify(partial)}}}]}`);
        return;
      }
      case 'thinking_delta':
        if (typeof delta['thinking'] === 'string' && delta['thinking'] !== '') this.onThinking(delta['thinking']);
        return;
      case 'signature_delta':
        if (typeof delta['signature'] === 'string') this.thinking?.sign(delta['signature']);
        return;
      default:
        return; // citations_delta: nothing in OpenAI's shape
    }
  }

  private onMessageDelta(delta: unknown, usage: unknown): void {
    this.usage = readUsage(usage, this.usage);
    const reason = isObject(delta) ? finishReason(delta['stop_reason']) : null;
    const stop = reason === null ? null : jsonFinish(reason, this.options);
    if (stop) this.out += `${this.prefix}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"${stop}"}]}\n\n`;
  }

  private onMessageStop(): void {
    if (this.options.includeUsage && this.usage) this.out += `${this.prefix}"choices":[],"usage":${JSON.stringify(openAIUsage(this.usage))}}\n\n`;
    this.out += SSE_DONE;
    this.state = 'stopped';
  }

  private finished(): boolean {
    return this.state === 'stopped' || this.state === 'failed';
  }

  /** Ends the stream with OpenAI's error event (the SDK raises it as an APIError). */
  private fail(message: string, type: string, code: string): void {
    if (this.state === 'failed' || this.state === 'stopped') return;
    this.state = 'failed';
    this.out += `data: ${openAIErrorJson(message, type, code)}\n\n`;
  }

  /** Appends one chunk with this delta (a JSON object text). */
  private delta(json: string): void {
    this.out += `${this.prefix}"choices":[{"index":0,"delta":${json},"logprobs":null,"finish_reason":null}]}\n\n`;
  }

  private flush(): Buffer {
    if (this.out === '') return EMPTY;
    const bytes = Buffer.from(this.out);
    this.out = '';
    return bytes;
  }
}

function chunkPrefix(id: string, model: string, created: number): string {
  return `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},`;
}
