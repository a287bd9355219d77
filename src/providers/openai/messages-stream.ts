/**
 * OpenAI chat.completion.chunk SSE -> Anthropic's Messages stream, incrementally: each network chunk
 * is decoded (events split anywhere are reassembled by SseDecoder) and every complete chunk becomes
 * Anthropic events at once (https://docs.anthropic.com/en/api/messages-streaming):
 *
 *   message_start, ping, then per content block content_block_start / content_block_delta
 *   (thinking_delta, text_delta, input_json_delta) / content_block_stop, then message_delta
 *   (stop_reason and the whole usage) and message_stop; an `error` event when the provider reports
 *   an error or the stream breaks off before it finished.
 *
 * reasoning_content opens a thinking block, content a text block, each new tool call (OpenAI
 * `index`) a tool_use block whose streamed `arguments` become input_json_delta events. A block is
 * closed when another one opens. A `thinking_blocks` delta (the gateway's Claude translators send one
 * when a thinking block ends) adds the block's signature_delta and closes it, so an Anthropic client
 * can send the signed block back in a tool loop. Usage arrives in OpenAI's last chunk (the translated request always
 * asks for it), so message_delta is sent when the stream ends.
 *
 * Bounded state: the decoder's one incomplete event, the open block, a capped table of tool-call
 * indexes, the stop reason and usage (a few numbers).
 */
import { SseDecoder, type SseSink } from '../sse.js';
import { isObject, type StreamTranslator } from '../translation.js';
import { anthropicErrorJson, anthropicErrorType, anthropicUsage, stopReason } from './messages.js';

/** Tool calls tracked per message; deltas of calls beyond are dropped. */
const MAX_TOOL_CALLS = 256;
const EMPTY = Buffer.alloc(0);

type Open = 'none' | 'text' | 'thinking' | 'tool';
type State = 'start' | 'open' | 'done' | 'failed';

export class MessagesStreamTranslator implements StreamTranslator, SseSink {
  private readonly decoder = new SseDecoder(this);
  private out = '';
  private state: State = 'start';
  /** Index of the next Anthropic content block. */
  private blocks = 0;
  private open: Open = 'none';
  /** OpenAI tool-call index -> Anthropic block index. */
  private readonly toolBlock: number[] = [];
  private finish: unknown = undefined;
  private usage: unknown = undefined;
  /** Entries of the last `thinking_blocks` list already turned into blocks. */
  private thinkingSeen = 0;

  push(chunk: Buffer): Buffer {
    if (this.state === 'done' || this.state === 'failed') return EMPTY;
    this.decoder.push(chunk);
    if (this.decoder.overflow) this.fail('api_error', 'The provider sent a stream event larger than the gateway accepts.');
    return this.flush();
  }

  end(): Buffer {
    if (!this.finished()) {
      this.decoder.end();
      // onEvent may have finished the message ([DONE] without its blank line).
      if (!this.finished()) {
        // An OpenAI stream that sent its finish_reason and usage but no [DONE] is complete enough.
        if (this.finish !== undefined && this.usage !== undefined) this.complete();
        else this.fail('api_error', 'The provider ended the stream before the message was complete.');
      }
    }
    return this.flush();
  }

  onEvent(_event: string, data: string): void {
    if (this.state === 'done' || this.state === 'failed') return;
    if (data === '[DONE]') {
      this.complete();
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      this.fail('api_error', 'The provider sent a stream event that is not JSON.');
      return;
    }
    if (!isObject(json)) return;
    if (isObject(json['error'])) {
      const err = json['error'];
      const message = typeof err['message'] === 'string' ? err['message'] : 'The provider reported an error during the stream.';
      const code = err['code'];
      this.fail(code === 'rate_limit_exceeded' || code === 'insufficient_quota' ? 'rate_limit_error' : anthropicErrorType(500), message);
      return;
    }
    if (this.state === 'start') this.start(json);
    if (json['usage'] !== undefined && json['usage'] !== null) this.usage = json['usage'];
    const choices = json['choices'];
    if (!Array.isArray(choices)) return;
    const choice: unknown = choices[0];
    if (!isObject(choice)) return;
    const delta = choice['delta'];
    if (isObject(delta)) {
      const reasoning = delta['reasoning_content'];
      if (typeof reasoning === 'string' && reasoning !== '') {
        this.openBlock('thinking', '{"type":"thinking","thinking":"","signature":""}');
        this.blockDelta(`{"type":"thinking_delta","thinking":${JSON.stringify(reasoning)}}`);
      }
      const blocks = delta['thinking_blocks'];
      if (Array.isArray(blocks)) this.thinkingBlocks(blocks);
      const text = delta['content'];
      if (typeof text === 'string' && text !== '') {
        this.openBlock('text', '{"type":"text","text":""}');
        this.blockDelta(`{"type":"text_delta","text":${JSON.stringify(text)}}`);
      }
      const calls = delta['tool_calls'];
      if (Array.isArray(calls)) for (const call of calls) this.toolDelta(call);
    }
    const finish = choice['finish_reason'];
    if (finish !== undefined && finish !== null) this.finish = finish;
  }

  private finished(): boolean {
    return this.state === 'done' || this.state === 'failed';
  }

  private start(chunk: Readonly<Record<string, unknown>>): void {
    this.state = 'open';
    const message = {
      id: typeof chunk['id'] === 'string' ? chunk['id'] : '',
      type: 'message',
      role: 'assistant',
      model: typeof chunk['model'] === 'string' ? chunk['model'] : '',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // Known only at the end (OpenAI's usage chunk): message_delta carries the whole usage.
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    this.event('message_start', `{"type":"message_start","message":${JSON.stringify(message)}}`);
    this.event('ping', '{"type":"ping"}');
  }

  private toolDelta(call: unknown): void {
    if (!isObject(call)) return;
    const index = typeof call['index'] === 'number' ? call['index'] : 0;
    if (index < 0 || index >= MAX_TOOL_CALLS) return;
    const fn = isObject(call['function']) ? call['function'] : {};
    let block = this.toolBlock[index];
    if (block === undefined) {
      this.closeBlock();
      block = this.blocks++;
      this.toolBlock[index] = block;
      this.open = 'tool';
      const start = { type: 'tool_use', id: typeof call['id'] === 'string' ? call['id'] : '', name: typeof fn['name'] === 'string' ? fn['name'] : '', input: {} };
      this.event('content_block_start', `{"type":"content_block_start","index":${block},"content_block":${JSON.stringify(start)}}`);
    }
    const args = fn['arguments'];
    if (typeof args === 'string' && args !== '') {
      this.event('content_block_delta', `{"type":"content_block_delta","index":${block},"delta":{"type":"input_json_delta","partial_json":${JSON.stringify(args)}}}`);
    }
  }

  /**
   * `thinking_blocks` from the gateway's Claude translators: every block of the message so far, sent
   * when one ends. A new thinking entry signs the thinking block streamed as reasoning_content
   * (signature_delta, then it closes); a new redacted entry is a whole redacted_thinking block.
   */
  private thinkingBlocks(blocks: readonly unknown[]): void {
    for (let i = this.thinkingSeen; i < blocks.length && i < MAX_TOOL_CALLS; i++) {
      const b = blocks[i];
      if (!isObject(b)) continue;
      if (b['type'] === 'thinking') {
        if (this.open !== 'thinking' && typeof b['thinking'] === 'string') {
          this.openBlock('thinking', '{"type":"thinking","thinking":"","signature":""}');
          if (b['thinking'] !== '') this.blockDelta(`{"type":"thinking_delta","thinking":${JSON.stringify(b['thinking'])}}`);
        }
        if (typeof b['signature'] === 'string' && b['signature'] !== '') this.blockDelta(`{"type":"signature_delta","signature":${JSON.stringify(b['signature'])}}`);
        this.closeBlock();
      } else if (b['type'] === 'redacted_thinking' && typeof b['data'] === 'string') {
        this.closeBlock();
        this.blocks++;
        this.event('content_block_start', `{"type":"content_block_start","index":${this.blocks - 1},"content_block":${JSON.stringify({ type: 'redacted_thinking', data: b['data'] })}}`);
        this.event('content_block_stop', `{"type":"content_block_stop","index":${this.blocks - 1}}`);
      }
    }
    this.thinkingSeen = Math.max(this.thinkingSeen, blocks.length);
  }

  private openBlock(kind: 'text' | 'thinking', start: string): void {
    if (this.open === kind) return;
    this.closeBlock();
    this.open = kind;
    this.blocks++;
    this.event('content_block_start', `{"type":"content_block_start","index":${this.blocks - 1},"content_block":${start}}`);
  }

  private blockDelta(delta: string): void {
    this.event('content_block_delta', `{"type":"content_block_delta","index":${this.blocks - 1},"delta":${delta}}`);
  }

  private closeBlock(): void {
    if (this.open === 'none') return;
    this.event('content_block_stop', `{"type":"content_block_stop","index":${this.blocks - 1}}`);
    this.open = 'none';
  }

  private complete(): void {
    if (this.state === 'start') this.start({});
    this.closeBlock();
    const usage = anthropicUsage(this.usage);
    this.event('message_delta', `{"type":"message_delta","delta":{"stop_reason":"${stopReason(this.finish)}","stop_sequence":null},"usage":${JSON.stringify(usage)}}`);
    this.event('message_stop', '{"type":"message_stop"}');
    this.state = 'done';
  }

  /** Ends the stream with Anthropic's error event (the SDK raises it as an APIError). */
  private fail(type: string, message: string): void {
    if (this.state === 'done' || this.state === 'failed') return;
    this.state = 'failed';
    this.event('error', anthropicErrorJson(type, message));
  }

  private event(name: string, json: string): void {
    this.out += `event: ${name}\ndata: ${json}\n\n`;
  }

  private flush(): Buffer {
    if (this.out === '') return EMPTY;
    const bytes = Buffer.from(this.out);
    this.out = '';
    return bytes;
  }
}
