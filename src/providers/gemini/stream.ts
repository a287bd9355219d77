/**
 * Gemini streamGenerateContent?alt=sse -> OpenAI chat.completion.chunk SSE, incrementally. Each SSE
 * event is a partial GenerateContentResponse: its text parts (thought parts -> reasoning_content)
 * become content deltas, each functionCall part one complete tool call (Gemini sends a call whole,
 * never split), the candidate's finishReason the finish chunk; the latest usageMetadata becomes the
 * usage chunk when the stream ends (Gemini has no end event: the HTTP body simply ends).
 * Bounded state: the SSE decoder's one incomplete event, a few counters.
 */
import { SseDecoder, type SseSink } from '../sse.js';
import { isObject, openAIErrorJson, openAIErrorType, openAIUsage, type ProviderUsage, type ResponseOptions, SSE_DONE, type StreamTranslator } from '../translation.js';
import { callId, finishReason, readUsage } from './chat.js';

const EMPTY = Buffer.alloc(0);

export class GeminiStreamTranslator implements StreamTranslator, SseSink {
  private readonly decoder = new SseDecoder(this);
  private out = '';
  private prefix: string | undefined;
  private tools = 0;
  private usage: ProviderUsage | undefined;
  private finished = false;
  private state: 'open' | 'done' | 'failed' = 'open';

  constructor(private readonly options: ResponseOptions) {}

  push(chunk: Buffer): Buffer {
    if (this.state !== 'open') return EMPTY;
    this.decoder.push(chunk);
    if (this.decoder.overflow) this.fail('The provider sent a stream event larger than the gateway accepts.', 'api_error', 'bad_upstream_response');
    return this.flush();
  }

  end(): Buffer {
    if (this.state === 'open') {
      this.decoder.end();
      if (this.state === 'open') {
        if (!this.finished) this.fail('The provider ended the stream before the answer was complete.', 'api_error', 'stream_interrupted');
        else {
          if (this.options.includeUsage && this.usage) this.out += `${this.head()}"choices":[],"usage":${JSON.stringify(openAIUsage(this.usage))}}\n\n`;
          this.out += SSE_DONE;
          this.state = 'done';
        }
      }
    }
    return this.flush();
  }

  onEvent(_event: string, data: string): void {
    if (this.state !== 'open') return;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      this.fail('The provider sent a stream event that is not JSON.', 'api_error', 'bad_upstream_response');
      return;
    }
    if (!isObject(json)) return;
    if (isObject(json['error'])) {
      const e = json['error'];
      const status = typeof e['code'] === 'number' ? e['code'] : 500;
      this.fail(typeof e['message'] === 'string' ? e['message'] : 'The provider reported an error during the stream.', openAIErrorType(status), typeof e['status'] === 'string' ? e['status'] : 'provider_error');
      return;
    }
    if (this.prefix === undefined) {
      const id = typeof json['responseId'] === 'string' ? json['responseId'] : `chatcmpl-gemini-${this.options.created}`;
      const model = typeof json['modelVersion'] === 'string' ? json['modelVersion'] : this.options.model;
      this.prefix = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${this.options.created},"model":${JSON.stringify(model)},`;
      this.delta('{"role":"assistant"}');
    }
    this.usage = readUsage(json['usageMetadata']) ?? this.usage;
    if (isObject(json['promptFeedback']) && typeof json['promptFeedback']['blockReason'] === 'string') {
      this.finish('content_filter');
      return;
    }
    const candidate = Array.isArray(json['candidates']) && isObject(json['candidates'][0]) ? json['candidates'][0] : undefined;
    if (!candidate) return;
    const parts = isObject(candidate['content']) && Array.isArray(candidate['content']['parts']) ? candidate['content']['parts'] : [];
    for (const part of parts) {
      if (!isObject(part)) continue;
      if (typeof part['text'] === 'string') {
        if (part['text'] === '') continue;
        this.delta(part['thought'] === true ? `{"reasoning_content":${JSON.stringify(part['text'])}}` : `{"content":${JSON.stringify(part['text'])}}`);
      } else if (isObject(part['functionCall'])) {
        const call = part['functionCall'];
        const n = this.tools++;
        this.delta(`{"tool_calls":[{"index":${n},"id":${JSON.stringify(callId(call, n))},"type":"function","function":{"name":${JSON.stringify(call['name'] ?? '')},"arguments":${JSON.stringify(JSON.stringify(call['args'] ?? {}))}}}]}`);
      }
    }
    if (typeof candidate['finishReason'] === 'string') this.finish(finishReason(candidate['finishReason'], this.tools > 0));
  }

  private finish(reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.out += `${this.head()}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"${reason}"}]}\n\n`;
  }

  private head(): string {
    return this.prefix ?? `data: {"id":"chatcmpl-gemini-${this.options.created}","object":"chat.completion.chunk","created":${this.options.created},"model":${JSON.stringify(this.options.model)},`;
  }

  private fail(message: string, type: string, code: string): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.out += `data: ${openAIErrorJson(message, type, code)}\n\n`;
  }

  private delta(json: string): void {
    this.out += `${this.head()}"choices":[{"index":0,"delta":${json},"logprobs":null,"finish_reason":null}]}\n\n`;
  }

  private flush(): Buffer {
    if (this.out === '') return EMPTY;
    const bytes = Buffer.from(this.out);
    this.out = '';
    return bytes;
  }
}
