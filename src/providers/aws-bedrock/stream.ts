/**
 * Bedrock ConverseStream -> OpenAI chat.completion.chunk SSE, incrementally. The response body is AWS
 * event-stream binary framing (a 4-byte total length, headers, a JSON payload, CRCs): frames split
 * anywhere across network chunks are reassembled here and decoded (CRC-checked) with
 * @smithy/eventstream-codec. Events (`:event-type`): messageStart, contentBlockStart (toolUse),
 * contentBlockDelta (text, toolUse.input, reasoningContent.text), contentBlockStop, messageStop
 * (stopReason), metadata (usage). Exceptions arrive as frames with `:message-type: exception`.
 *
 * Tool calls: each toolUse block becomes one OpenAI tool call with its own `index`; its first delta
 * carries id and name, then every toolUse.input delta appends to `function.arguments` (how the
 * OpenAI SDK accumulates it). Reasoning text goes out as `reasoning_content`; when a reasoning block
 * stops, one delta carries `thinking_blocks` (every block so far, with signatures) for the client to
 * send back in a tool loop. With response_format (the forced JSON tool), the tool's input deltas are
 * `content` deltas and the finish is "stop". Bounded state: one incomplete frame (capped), a
 * per-block table, the reasoning text of a message (capped, only when the model reasons).
 */
import { isObject, openAIErrorJson, openAIErrorType, openAIUsage, type ProviderUsage, type ResponseOptions, SSE_DONE, type StreamTranslator, ThinkingCollector, jsonFinish } from '../translation.js';
import { finishReason, readUsage } from './chat.js';
import { EventStreamFrames, type EventStreamMessage } from './event-stream.js';

const MAX_BLOCKS = 1024;
const NOT_A_TOOL = -1;
/** The forced response_format tool: its input is the message content. */
const JSON_ANSWER = -2;
const EMPTY = Buffer.alloc(0);

type State = 'open' | 'stopped' | 'done' | 'failed';

export class BedrockStreamTranslator implements StreamTranslator {
  private readonly frames = new EventStreamFrames();
  /** Made once: handed to the frame reader for every chunk. */
  private readonly onMessage = (message: EventStreamMessage): boolean => {
    this.frame(message);
    return this.state === 'open' || this.state === 'stopped';
  };
  private out = '';
  private readonly prefix: string;
  private readonly toolIndex: number[] = [];
  private tools = 0;
  private usage: ProviderUsage | undefined;
  /** `stopped` after messageStop (usage may follow in metadata), `done` once [DONE] went out. */
  private state: State = 'open';
  /** Created at the first reasoning delta only (most streams have none). */
  private thinking: ThinkingCollector | undefined;
  /** contentBlockIndex of the reasoning block being collected. */
  private thinkingIndex = -1;

  constructor(private readonly options: ResponseOptions) {
    this.prefix = `data: {"id":"chatcmpl-bedrock-${options.created}","object":"chat.completion.chunk","created":${options.created},"model":${JSON.stringify(options.model)},`;
  }

  push(chunk: Buffer): Buffer {
    if (this.state === 'done' || this.state === 'failed') return EMPTY;
    const problem = this.frames.push(chunk, this.onMessage);
    if (problem === 'unreadable') this.fail('The provider sent an event-stream frame the gateway cannot read.', 'api_error', 'bad_upstream_response');
    else if (problem === 'corrupt') this.fail('The provider sent a corrupt event-stream frame.', 'api_error', 'bad_upstream_response');
    return this.flush();
  }

  end(): Buffer {
    if (this.state === 'stopped') this.finish();
    else if (this.state === 'open') this.fail('The provider ended the stream before the message was complete.', 'api_error', 'stream_interrupted');
    return this.flush();
  }

  private frame(message: EventStreamMessage): void {
    const header = (name: string): string | undefined => {
      const h = message.headers[name];
      return h && h.type === 'string' ? h.value : undefined;
    };
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(message.body).toString('utf8'));
    } catch {
      payload = {};
    }
    const kind = header(':message-type');
    if (kind === 'exception' || kind === 'error') {
      const type = header(':exception-type') ?? header(':error-code') ?? 'internalServerException';
      const text = isObject(payload) && typeof payload['message'] === 'string' ? payload['message'] : `The provider reported ${type} during the stream.`;
      const status = type === 'throttlingException' ? 429 : type === 'validationException' ? 400 : 500;
      this.fail(text, openAIErrorType(status), type);
      return;
    }
    if (!isObject(payload)) return;
    switch (header(':event-type')) {
      case 'messageStart':
        this.delta('{"role":"assistant"}');
        return;
      case 'contentBlockStart':
        return this.onBlockStart(payload['contentBlockIndex'], payload['start']);
      case 'contentBlockDelta':
        return this.onBlockDelta(payload['contentBlockIndex'], payload['delta']);
      case 'messageStop':
        this.out += `${this.prefix}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"${jsonFinish(finishReason(payload['stopReason']), this.options)}"}]}\n\n`;
        this.state = 'stopped';
        return;
      case 'metadata':
        this.usage = readUsage(payload['usage']) ?? this.usage;
        if (this.state === 'stopped') this.finish();
        return;
      case 'contentBlockStop':
        return this.onBlockStop(payload['contentBlockIndex']);
      default:
        return; // later event types need no output
    }
  }

  private onBlockStop(index: unknown): void {
    if (!this.thinking?.collecting || index !== this.thinkingIndex) return;
    const delta = this.thinking.end();
    if (delta) this.delta(delta);
  }

  /** A reasoningContent delta: text (also streamed as reasoning_content), signature or redacted bytes. */
  private onReasoning(index: unknown, r: Readonly<Record<string, unknown>>): void {
    const thinking = (this.thinking ??= new ThinkingCollector());
    if (typeof r['redactedContent'] === 'string') {
      const delta = thinking.redacted(r['redactedContent']);
      if (delta) this.delta(delta);
      return;
    }
    // Converse sends no contentBlockStart for reasoning: the first delta of a new index opens it.
    if (!thinking.collecting || index !== this.thinkingIndex) {
      thinking.begin();
      this.thinkingIndex = typeof index === 'number' ? index : -1;
    }
    if (typeof r['text'] === 'string' && r['text'] !== '') {
      thinking.append(r['text']);
      this.delta(`{"reasoning_content":${JSON.stringify(r['text'])}}`);
    }
    if (typeof r['signature'] === 'string') thinking.sign(r['signature']);
  }

  private onBlockStart(index: unknown, start: unknown): void {
    if (typeof index !== 'number' || !isObject(start) || !isObject(start['toolUse'])) return;
    const t = start['toolUse'];
    if (this.options.jsonResponse) {
      if (index >= 0 && index < MAX_BLOCKS) this.toolIndex[index] = JSON_ANSWER;
      return;
    }
    const tool = this.tools++;
    if (index >= 0 && index < MAX_BLOCKS) this.toolIndex[index] = tool;
    this.delta(`{"tool_calls":[{"index":${tool},"id":${JSON.stringify(t['toolUseId'] ?? '')},"type":"function","function":{"name":${JSON.stringify(t['name'] ?? '')},"arguments":""}}]}`);
  }

  private onBlockDelta(index: unknown, delta: unknown): void {
    if (!isObject(delta)) return;
    if (typeof delta['text'] === 'string') {
      if (delta['text'] !== '') this.delta(`{"content":${JSON.stringify(delta['text'])}}`);
      return;
    }
    if (isObject(delta['toolUse'])) {
      const input = delta['toolUse']['input'];
      const tool = typeof index === 'number' ? this.toolIndex[index] : undefined;
      if (typeof input === 'string' && input !== '' && tool === JSON_ANSWER) this.delta(`{"content":${JSON.stringify(input)}}`);
      else if (typeof input === 'string' && input !== '' && tool !== undefined && tool !== NOT_A_TOOL) {
        this.delta(`{"tool_calls":[{"index":${tool},"function":{"arguments":${JSON.stringify(input)}}}]}`);
      }
      return;
    }
    if (isObject(delta['reasoningContent'])) this.onReasoning(index, delta['reasoningContent']);
  }

  private finish(): void {
    if (this.options.includeUsage && this.usage) this.out += `${this.prefix}"choices":[],"usage":${JSON.stringify(openAIUsage(this.usage))}}\n\n`;
    this.out += SSE_DONE;
    this.state = 'done';
  }

  private fail(message: string, type: string, code: string): void {
    if (this.state === 'done' || this.state === 'failed') return;
    this.state = 'failed';
    this.out += `data: ${openAIErrorJson(message, type, code)}\n\n`;
  }

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
