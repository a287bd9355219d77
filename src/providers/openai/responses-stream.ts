/**
 * OpenAI chat.completion.chunk SSE -> the Responses API's stream, incrementally: every complete chunk
 * becomes Responses events at once (https://platform.openai.com/docs/api-reference/responses-streaming):
 *
 *   response.created, response.in_progress; per output item response.output_item.added, then for the
 *   answer text response.content_part.added / response.output_text.delta / response.output_text.done /
 *   response.content_part.done, for a tool call response.function_call_arguments.delta / .done; then
 *   response.output_item.done; at the end response.completed (or response.incomplete when the answer
 *   was cut by max_output_tokens) carrying the whole response with its usage. An `error` event when the
 *   provider reports an error or the stream breaks off before it finished.
 *
 * The final event repeats the whole output (clients accumulate from it), so the answer text and tool
 * arguments are held until the end: bounded by MAX_OUTPUT_CHARS, past which the stream ends with an
 * error event. Otherwise: the decoder's one incomplete event, a capped table of tool calls.
 */
import { SseDecoder, type SseSink } from '../sse.js';
import { isObject, type StreamTranslator } from '../translation.js';
import { reasoningItem, responseIdFor, responseObject, responsesUsage, statusFor } from './responses.js';

const MAX_TOOL_CALLS = 256;
/** Largest answer (text plus tool arguments) a stream holds for its final event. */
export const MAX_OUTPUT_CHARS = 16 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

interface Item {
  readonly index: number;
  readonly id: string;
  readonly kind: 'message' | 'function_call' | 'reasoning';
  text: string;
  callId: string;
  name: string;
  done: boolean;
  /** Reasoning: the provider's thinking blocks (the last list it sent). */
  blocks?: unknown[];
}

type State = 'start' | 'open' | 'done' | 'failed';

export class ResponsesStreamTranslator implements StreamTranslator, SseSink {
  private readonly decoder = new SseDecoder(this);
  private out = '';
  private state: State = 'start';
  private seq = 0;
  private id = '';
  private model: string;
  private readonly items: Item[] = [];
  private open: Item | undefined;
  /** OpenAI tool-call index -> output item. */
  private readonly calls: (Item | undefined)[] = [];
  private finish: unknown = undefined;
  private usage: unknown = undefined;
  private chars = 0;

  constructor(
    private readonly created: number,
    model: string,
  ) {
    this.model = model;
  }

  push(chunk: Buffer): Buffer {
    if (this.finished()) return EMPTY;
    this.decoder.push(chunk);
    if (this.decoder.overflow) this.fail('The provider sent a stream event larger than the gateway accepts.');
    return this.flush();
  }

  end(): Buffer {
    if (!this.finished()) {
      this.decoder.end();
      if (!this.finished()) {
        if (this.finish !== undefined && this.usage !== undefined) this.complete();
        else this.fail('The provider ended the stream before the response was complete.');
      }
    }
    return this.flush();
  }

  onEvent(_event: string, data: string): void {
    if (this.finished()) return;
    if (data === '[DONE]') {
      this.complete();
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      this.fail('The provider sent a stream event that is not JSON.');
      return;
    }
    if (!isObject(json)) return;
    if (isObject(json['error'])) {
      const err = json['error'];
      this.fail(typeof err['message'] === 'string' ? err['message'] : 'The provider reported an error during the stream.', typeof err['code'] === 'string' ? err['code'] : 'api_error');
      return;
    }
    if (this.state === 'start') this.start(json);
    if (json['usage'] !== undefined && json['usage'] !== null) this.usage = json['usage'];
    const choices = json['choices'];
    const choice: unknown = Array.isArray(choices) ? choices[0] : undefined;
    if (!isObject(choice)) return;
    const delta = choice['delta'];
    if (isObject(delta)) {
      const reasoning = delta['reasoning_content'];
      if (typeof reasoning === 'string' && reasoning !== '') this.reasoningDelta(reasoning);
      const blocks = delta['thinking_blocks'];
      if (Array.isArray(blocks) && blocks.length > 0) this.thinkingBlocks(blocks);
      const text = delta['content'];
      if (typeof text === 'string' && text !== '') this.textDelta(text);
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
    this.id = responseIdFor(typeof chunk['id'] === 'string' ? chunk['id'] : '', this.created);
    if (typeof chunk['model'] === 'string' && chunk['model'] !== '') this.model = chunk['model'];
    const response = JSON.stringify(responseObject(this.id, this.created, this.model, 'in_progress', [], null, undefined));
    this.event('response.created', `"response":${response}`);
    this.event('response.in_progress', `"response":${response}`);
  }

  private grow(n: number): boolean {
    this.chars += n;
    if (this.chars <= MAX_OUTPUT_CHARS) return true;
    this.fail('The answer is larger than the gateway holds for a translated Responses stream.');
    return false;
  }

  private textDelta(text: string): void {
    if (!this.grow(text.length)) return;
    let item = this.open;
    if (!item || item.kind !== 'message') {
      this.closeItem();
      item = this.newItem('message', `msg_${this.id.slice(5)}_${this.items.length}`);
      this.event('response.output_item.added', `"output_index":${item.index},"item":{"id":"${item.id}","type":"message","status":"in_progress","role":"assistant","content":[]}`);
      this.event('response.content_part.added', `"item_id":"${item.id}","output_index":${item.index},"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}`);
    }
    item.text += text;
    this.event('response.output_text.delta', `"item_id":"${item.id}","output_index":${item.index},"content_index":0,"delta":${JSON.stringify(text)},"logprobs":[]`);
  }

  private openReasoning(): Item {
    let item = this.open;
    if (!item || item.kind !== 'reasoning') {
      this.closeItem();
      item = this.newItem('reasoning', `rs_${this.id.slice(5)}_${this.items.length}`);
      this.event('response.output_item.added', `"output_index":${item.index},"item":{"id":"${item.id}","type":"reasoning","summary":[]}`);
    }
    return item;
  }

  private reasoningDelta(text: string): void {
    if (!this.grow(text.length)) return;
    const item = this.openReasoning();
    if (item.text === '') this.event('response.reasoning_summary_part.added', `"item_id":"${item.id}","output_index":${item.index},"summary_index":0,"part":{"type":"summary_text","text":""}`);
    item.text += text;
    this.event('response.reasoning_summary_text.delta', `"item_id":"${item.id}","output_index":${item.index},"summary_index":0,"delta":${JSON.stringify(text)}`);
  }

  /** The provider's thinking blocks so far (each delta carries the whole list): kept for encrypted_content. */
  private thinkingBlocks(blocks: unknown[]): void {
    let item = this.open?.kind === 'reasoning' ? this.open : this.items.findLast((i) => i.kind === 'reasoning');
    // Blocks after the reasoning item closed (a late delta) still belong to it; none yet opens one.
    item ??= this.openReasoning();
    const before = item.blocks ? JSON.stringify(item.blocks).length : 0;
    if (!this.grow(Math.max(0, JSON.stringify(blocks).length - before))) return;
    item.blocks = blocks;
  }

  private toolDelta(call: unknown): void {
    if (!isObject(call)) return;
    const index = typeof call['index'] === 'number' ? call['index'] : 0;
    if (index < 0 || index >= MAX_TOOL_CALLS) return;
    const fn = isObject(call['function']) ? call['function'] : {};
    let item = this.calls[index];
    if (!item) {
      this.closeItem();
      item = this.newItem('function_call', `fc_${this.id.slice(5, 29)}_${this.items.length}`);
      item.callId = typeof call['id'] === 'string' ? call['id'] : `call_${index}`;
      item.name = typeof fn['name'] === 'string' ? fn['name'] : '';
      this.calls[index] = item;
      this.event('response.output_item.added', `"output_index":${item.index},"item":${JSON.stringify(this.itemJson(item, 'in_progress'))}`);
    }
    const args = fn['arguments'];
    if (typeof args === 'string' && args !== '') {
      if (!this.grow(args.length)) return;
      item.text += args;
      this.event('response.function_call_arguments.delta', `"item_id":"${item.id}","output_index":${item.index},"delta":${JSON.stringify(args)}`);
    }
  }

  private newItem(kind: Item['kind'], id: string): Item {
    const item: Item = { index: this.items.length, id, kind, text: '', callId: '', name: '', done: false };
    this.items.push(item);
    this.open = item;
    return item;
  }

  private itemJson(item: Item, status: string): Record<string, unknown> {
    if (item.kind === 'reasoning') return reasoningItem(item.id, status === 'in_progress' ? '' : item.text, status === 'in_progress' ? undefined : item.blocks);
    if (item.kind === 'message') return { id: item.id, type: 'message', status, role: 'assistant', content: [{ type: 'output_text', text: item.text, annotations: [] }] };
    return { id: item.id, type: 'function_call', status, call_id: item.callId, name: item.name, arguments: status === 'in_progress' ? '' : item.text };
  }

  private closeItem(): void {
    const item = this.open;
    if (!item || item.done) return;
    item.done = true;
    this.open = undefined;
    const text = JSON.stringify(item.text);
    if (item.kind === 'reasoning') {
      if (item.text !== '') {
        this.event('response.reasoning_summary_text.done', `"item_id":"${item.id}","output_index":${item.index},"summary_index":0,"text":${text}`);
        this.event('response.reasoning_summary_part.done', `"item_id":"${item.id}","output_index":${item.index},"summary_index":0,"part":{"type":"summary_text","text":${text}}`);
      }
    } else if (item.kind === 'message') {
      this.event('response.output_text.done', `"item_id":"${item.id}","output_index":${item.index},"content_index":0,"text":${text},"logprobs":[]`);
      this.event('response.content_part.done', `"item_id":"${item.id}","output_index":${item.index},"content_index":0,"part":{"type":"output_text","text":${text},"annotations":[]}`);
    } else {
      this.event('response.function_call_arguments.done', `"item_id":"${item.id}","output_index":${item.index},"arguments":${text}`);
    }
    this.event('response.output_item.done', `"output_index":${item.index},"item":${JSON.stringify(this.itemJson(item, 'completed'))}`);
  }

  private complete(): void {
    if (this.state === 'start') this.start({});
    this.closeItem();
    const status = statusFor(this.finish);
    const output = this.items.map((i) => this.itemJson(i, 'completed'));
    const response = responseObject(this.id, this.created, this.model, status, output, responsesUsage(this.usage), this.finish);
    this.event(status === 'completed' ? 'response.completed' : 'response.incomplete', `"response":${JSON.stringify(response)}`);
    this.state = 'done';
  }

  /** Ends the stream with an `error` event (the SDK raises it). */
  private fail(message: string, code = 'api_error'): void {
    if (this.finished()) return;
    this.state = 'failed';
    this.event('error', `"code":${JSON.stringify(code)},"message":${JSON.stringify(message)},"param":null`);
  }

  /** One event: `type` and `sequence_number` first, then `fields` (a JSON object's members). */
  private event(type: string, fields: string): void {
    this.out += `event: ${type}\ndata: {"type":"${type}","sequence_number":${this.seq++},${fields}}\n\n`;
  }

  private flush(): Buffer {
    if (this.out === '') return EMPTY;
    const bytes = Buffer.from(this.out);
    this.out = '';
    return bytes;
  }
}
