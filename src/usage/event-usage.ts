/**
 * Usage meters for the streams of the newer front doors, read from the events the client receives:
 *
 * - Anthropic Messages (`/v1/messages`, passed through or translated): `message_start` carries the
 *   input side (`message.usage`), `message_delta` the cumulative usage (output tokens, and on
 *   translated streams and newer API versions the input side again); the last value of each field wins.
 * - OpenAI Responses (`/v1/responses`): the final `response.completed` (or `response.incomplete`,
 *   `response.failed`) event carries `response.usage`.
 *
 * Same contract as SseUsageMeter (pipeline/limits.ts reads `usage`, `counted`, `done`), but these
 * streams are never rewritten: the gateway never injects anything into them. Events are decoded
 * with the SSE decoder (bounded: one incomplete event); only the usage-carrying events are parsed,
 * the others are counted by the length of their data (1 token, +1 per 16 bytes of delta text) for
 * mid-stream reservation checks.
 */
import { SseDecoder, type SseSink } from '../providers/sse.js';
import { readUsage, type TokenUsage } from './response-usage.js';

/** What limits.ts needs from a stream meter. */
export interface StreamUsageMeter {
  readonly usage: TokenUsage | undefined;
  readonly counted: number;
  /** Returns replacement bytes for the chunk, or undefined when it goes out unchanged. */
  push(chunk: Buffer, end: boolean): Buffer | undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Tokens of one delta event: 1, +1 per 16 bytes of its text. The text is the value of the event's
 * last string field (`text`, `partial_json`, `thinking` of Anthropic deltas; `delta` of Responses
 * events): quotes inside JSON strings are escaped, so the last `":"` starts it.
 */
function deltaTokens(data: string): number {
  const at = data.lastIndexOf('":"');
  const len = at < 0 ? data.length : data.length - at - 6;
  return 1 + (Math.max(0, len) >> 4);
}

abstract class EventMeter implements StreamUsageMeter, SseSink {
  usage: TokenUsage | undefined;
  counted = 0;
  done = false;
  private readonly decoder = new SseDecoder(this);

  push(chunk: Buffer, end: boolean): undefined {
    this.decoder.push(chunk);
    if (end) this.decoder.end();
    return undefined;
  }

  abstract onEvent(event: string, data: string): void;

  protected parse(data: string): Obj | undefined {
    try {
      const v: unknown = JSON.parse(data);
      return isObj(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Anthropic Messages stream (see the file comment). */
export class AnthropicUsageMeter extends EventMeter {
  /** Usage fields seen so far, last value wins (Anthropic's counters are cumulative). */
  private readonly fields: Record<string, number> = {};

  onEvent(event: string, data: string): void {
    if (event === 'content_block_delta') {
      this.counted += deltaTokens(data);
      return;
    }
    if (event === 'message_start') {
      const json = this.parse(data);
      this.merge(isObj(json?.['message']) ? json['message']['usage'] : undefined);
    } else if (event === 'message_delta') {
      this.merge(this.parse(data)?.['usage']);
      // The usage is known once message_delta carries the output count: message_start's is a
      // placeholder (0 or 1 output tokens), so until then the streamed text is what was spent.
      this.usage = readUsage({ input_tokens: 0, output_tokens: 0, ...this.fields });
    } else if (event === 'message_stop') {
      this.done = true;
    }
  }

  private merge(usage: unknown): void {
    if (!isObj(usage)) return;
    for (const [k, v] of Object.entries(usage)) if (typeof v === 'number') this.fields[k] = v;
  }
}

/** OpenAI Responses stream (see the file comment). */
export class ResponsesUsageMeter extends EventMeter {
  onEvent(event: string, data: string): void {
    if (event.endsWith('.delta')) {
      this.counted += deltaTokens(data);
      return;
    }
    if (event !== 'response.completed' && event !== 'response.incomplete' && event !== 'response.failed') return;
    const json = this.parse(data);
    const response = json?.['response'];
    const usage = isObj(response) ? readUsage(response['usage']) : undefined;
    if (usage) this.usage = usage;
    this.done = true;
  }
}
