/**
 * Per-model compatibility filter for OpenAI-style engines that write their reasoning inside the
 * answer as `<think>…</think>` (DeepSeek-R1, QwQ and Qwen3 on vLLM or SGLang): `extract` moves it to
 * `reasoning_content` (as OpenAI-style reasoning models return it), `strip` drops it. An OpenAI ->
 * OpenAI translator, so it uses the translation framework's attempt-stage plumbing; it is only in the
 * path of models that set ModelProvider `models[].reasoningTags`.
 *
 * Streams: TagSplitter is a small state machine over the content deltas of choice 0 that survives
 * chunk boundaries: a tag split over two chunks (`<thi` + `nk>`) is recognised, because up to
 * `</think>`.length - 1 characters that could start a tag are held back until the next delta.
 */
import { SseDecoder, type SseSink } from '../sse.js';
import { type ChatTranslator, isObject, type ResponseOptions, type StreamTranslator, type TranslatedResponse, type TranslationContext } from '../translation.js';
import type { GatewayError } from '../../errors.js';

export type ReasoningTagMode = 'extract' | 'strip';

const OPEN = '<think>';
const CLOSE = '</think>';
const EMPTY = Buffer.alloc(0);

/** Splits a text stream into answer and reasoning at <think> tags, across arbitrary cuts. */
export class TagSplitter {
  private inside = false;
  private held = '';

  /** Feeds one piece; returns what is certain so far. */
  push(piece: string): { content: string; reasoning: string } {
    let text = this.held + piece;
    this.held = '';
    let content = '';
    let reasoning = '';
    for (;;) {
      const tag = this.inside ? CLOSE : OPEN;
      const at = text.indexOf(tag);
      if (at >= 0) {
        if (this.inside) reasoning += text.slice(0, at);
        else content += text.slice(0, at);
        text = text.slice(at + tag.length);
        this.inside = !this.inside;
        continue;
      }
      // Hold back a tail that could be the start of the tag.
      let keep = 0;
      for (let k = Math.min(tag.length - 1, text.length); k > 0; k--) {
        if (tag.startsWith(text.slice(text.length - k))) {
          keep = k;
          break;
        }
      }
      const sure = text.slice(0, text.length - keep);
      this.held = text.slice(text.length - keep);
      if (this.inside) reasoning += sure;
      else content += sure;
      return { content, reasoning };
    }
  }

  /** The stream ended: whatever was held back is text after all. */
  end(): { content: string; reasoning: string } {
    const rest = this.held;
    this.held = '';
    return this.inside ? { content: '', reasoning: rest } : { content: rest, reasoning: '' };
  }
}

function splitWhole(text: string): { content: string; reasoning: string } {
  const s = new TagSplitter();
  const a = s.push(text);
  const b = s.end();
  return { content: (a.content + b.content).replace(/^\s+/, ''), reasoning: a.reasoning + b.reasoning };
}

class ThinkTagStream implements StreamTranslator, SseSink {
  private readonly decoder = new SseDecoder(this);
  private readonly splitter = new TagSplitter();
  private out = '';
  /** Leading whitespace of the answer after a reasoning block is dropped (as in non-streamed answers). */
  private answerStarted = false;
  private last: Record<string, unknown> | undefined;

  constructor(private readonly mode: ReasoningTagMode) {}

  push(chunk: Buffer): Buffer {
    this.decoder.push(chunk);
    return this.flush();
  }

  end(): Buffer {
    this.decoder.end();
    return this.flush();
  }

  onEvent(_event: string, data: string): void {
    if (data === '[DONE]') {
      this.emitRest();
      this.out += 'data: [DONE]\n\n';
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      this.out += `data: ${data}\n\n`;
      return;
    }
    const choice = isObject(chunk) && Array.isArray(chunk['choices']) ? chunk['choices'][0] : undefined;
    const delta = isObject(choice) && isObject(choice['delta']) ? (choice['delta'] as Record<string, unknown>) : undefined;
    if (!isObject(chunk) || !delta || typeof delta['content'] !== 'string') {
      // A finish chunk closes the text: what was held back goes out before it.
      if (isObject(choice) && choice['finish_reason']) this.emitRest();
      this.out += `data: ${data}\n\n`;
      return;
    }
    this.last = chunk as Record<string, unknown>;
    const parts = this.splitter.push(delta['content']);
    this.write(chunk as Record<string, unknown>, delta, parts);
  }

  private emitRest(): void {
    const rest = this.splitter.end();
    if (this.last && (rest.content || rest.reasoning)) {
      const chunk = JSON.parse(JSON.stringify(this.last)) as Record<string, unknown>;
      const delta = ((chunk['choices'] as Record<string, unknown>[])[0] as Record<string, unknown>)['delta'] as Record<string, unknown>;
      for (const k of Object.keys(delta)) delete delta[k];
      this.write(chunk, delta, rest);
    }
  }

  private write(chunk: Record<string, unknown>, delta: Record<string, unknown>, parts: { content: string; reasoning: string }): void {
    let content = parts.content;
    if (!this.answerStarted) {
      content = content.replace(/^\s+/, '');
      if (content !== '') this.answerStarted = true;
    }
    delta['content'] = content;
    if (this.mode === 'extract' && parts.reasoning) delta['reasoning_content'] = parts.reasoning;
    if (content === '' && !(this.mode === 'extract' && parts.reasoning) && delta['role'] === undefined && delta['tool_calls'] === undefined) return;
    this.out += `data: ${JSON.stringify(chunk)}\n\n`;
  }

  private flush(): Buffer {
    if (this.out === '') return EMPTY;
    const b = Buffer.from(this.out);
    this.out = '';
    return b;
  }
}

/** The filter for one mode. */
export function thinkTagsTranslator(mode: ReasoningTagMode): ChatTranslator {
  return {
    streamContentType: 'text/event-stream',
    request(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
      const usage = ctx.streamUsage && body['stream_options'] === undefined ? { stream_options: { include_usage: true } } : {};
      return Buffer.from(JSON.stringify({ ...usage, ...body, model: ctx.upstreamModel }));
    },
    status: (s) => s,
    response(raw: Buffer, _options: ResponseOptions): TranslatedResponse {
      let msg: unknown;
      try {
        msg = JSON.parse(raw.toString('utf8'));
      } catch {
        return { status: 200, body: raw };
      }
      if (isObject(msg) && Array.isArray(msg['choices'])) {
        for (const choice of msg['choices']) {
          const message = isObject(choice) ? choice['message'] : undefined;
          if (!isObject(message) || typeof message['content'] !== 'string') continue;
          const m = message as Record<string, unknown>;
          const { content, reasoning } = splitWhole(m['content'] as string);
          m['content'] = content;
          if (mode === 'extract' && reasoning) m['reasoning_content'] = `${typeof m['reasoning_content'] === 'string' ? m['reasoning_content'] : ''}${reasoning}`;
        }
      }
      return { status: 200, body: Buffer.from(JSON.stringify(msg)) };
    },
    error: (_status, raw) => raw,
    stream: () => new ThinkTagStream(mode),
  };
}

export const THINK_TAGS: Readonly<Record<ReasoningTagMode, ChatTranslator>> = { extract: thinkTagsTranslator('extract'), strip: thinkTagsTranslator('strip') };
