/**
 * Response inspection. Two shapes:
 *
 * SseGuard, for streamed chat completions: an incremental SSE parser (events may split anywhere,
 * UTF-8 sequences too) that runs each choice's `delta.content` through a StreamWindow and re-emits
 * the event with only the text the window released (masked). When a choice finishes
 * (`finish_reason`), at `[DONE]` or at the end of the body, the held text is released. A `block`
 * ends the stream with an explicit OpenAI-style error event; the caller then stops the stream.
 * Held state is bounded: one incomplete event (MAX_EVENT_CHARS) and one window per choice.
 *
 * The same for the Responses API (`format` 'responses'): `response.output_text.delta` events go
 * through a window per (output_index, content_index), flushed at `response.output_text.done`; the
 * events that repeat the whole text (`output_text.done`, `content_part.done`, `output_item.done`,
 * `response.completed`/`incomplete`) get it checked whole and masked, so no event carries the
 * original. A block ends the stream with a Responses `error` event.
 *
 * JsonGuard, for non-streamed answers: the body is buffered (up to MAX_JSON_BYTES), every
 * `choices[].message.content` (Anthropic: text blocks; Responses: `output[].content[]` output_text
 * parts) is checked whole, and the body is re-serialised when masked.
 */
import { StringDecoder } from 'node:string_decoder';
import { errorBodyFor, errorEventFor, gatewayError, type ClientApi, type GatewayError } from '../errors.js';
import type { CompiledGuardrail } from './compile.js';
import { checkText, type Finding } from './scan.js';
import { StreamWindow } from './window.js';

export const MAX_EVENT_CHARS = 1024 * 1024;
export const MAX_JSON_BYTES = 8 * 1024 * 1024;
const MAX_CHOICES = 128;

/** The client-facing refusal for a blocked finding (names the guardrail and rule, never the text). */
export function policyError(f: Finding, where: 'request' | 'response'): GatewayError {
  return gatewayError(
    'content_policy_violation',
    where === 'request'
      ? `Your request was blocked by the gateway's content policy (guardrail ${f.guardrail.name}, rule ${f.rule.detector.rule}).`
      : `The response was stopped by the gateway's content policy (guardrail ${f.guardrail.name}, rule ${f.rule.detector.rule}).`,
  );
}

/** What to send for one response body chunk. */
export type GuardOutput =
  | { readonly kind: 'bytes'; readonly body: Buffer }
  /** Blocked: `body` ends with the error event (stream) or is the error body (JSON); nothing may follow. */
  | { readonly kind: 'blocked'; readonly body: Buffer; readonly error: GatewayError };

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const EVENT_END = /\r?\n\r?\n/g;

/** Wire format of an answer: a client API's errors, plus the Responses API's own events. */
export type AnswerFormat = ClientApi | 'responses';

/** A Responses API error event (the SDKs raise it as an API error). */
function responsesErrorEvent(error: Pick<GatewayError, 'code' | 'message'>, sequence: number | undefined): string {
  return `event: error\ndata: ${JSON.stringify({ type: 'error', code: error.code, message: error.message, param: null, ...(sequence !== undefined ? { sequence_number: sequence } : {}) })}\n\n`;
}

/** The errors of `format`: Responses streams have their own event; otherwise the client API's. */
function errorEvent(format: AnswerFormat, error: Pick<GatewayError, 'code' | 'message'>, sequence?: number): string {
  return format === 'responses' ? responsesErrorEvent(error, sequence) : errorEventFor(format, error);
}

/** The Responses events whose data repeats an answer's whole text. */
const RESPONSES_WHOLE_TEXT: ReadonlySet<string> = new Set([
  'response.output_text.done',
  'response.content_part.done',
  'response.output_item.done',
  'response.completed',
  'response.incomplete',
  'response.failed',
]);

export class SseGuard {
  private readonly decoder = new StringDecoder('utf8');
  /** Wire format of the answer: OpenAI chat completion chunks, Anthropic Messages or Responses API events. */
  private readonly api: AnswerFormat;
  /** Responses API: the window of each (output_index, content_index), and the last sequence number. */
  private responsesWindows: Map<string, { readonly window: StreamWindow; readonly ids: Json }> | undefined;
  private sequence: number | undefined;
  /** The last whole text checked and its masked form (the Responses API repeats it in several events). */
  private lastWhole: { readonly text: string; readonly masked: string } | undefined;
  private pending = '';
  private readonly windows: (StreamWindow | undefined)[] = [];
  /** id/object/created/model of the last chunk, for the event that releases held text at the end. */
  private envelope: Json = { object: 'chat.completion.chunk' };

  constructor(
    private readonly guardrails: readonly CompiledGuardrail[],
    private readonly window: number,
    private readonly report: (f: Finding) => void,
    api: AnswerFormat = 'openai',
  ) {
    this.api = api;
  }

  push(chunk: Buffer, end: boolean): GuardOutput {
    let text = this.pending + this.decoder.write(chunk);
    if (end) text += this.decoder.end();
    let out = '';
    let pos = 0;
    EVENT_END.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = EVENT_END.exec(text)) !== null) {
      const event = text.slice(pos, m.index);
      pos = m.index + m[0].length;
      const r = this.onEvent(event);
      if (typeof r !== 'string') return this.blocked(out, r);
      out += r;
    }
    this.pending = text.slice(pos);
    if (end) {
      if (this.pending.length > 0) {
        const r = this.onEvent(this.pending);
        this.pending = '';
        if (typeof r !== 'string') return this.blocked(out, r);
        out += r;
      }
      const tail = this.releaseAll();
      if (typeof tail !== 'string') return this.blocked(out, tail);
      out += tail;
    } else if (this.pending.length > MAX_EVENT_CHARS) {
      // An event this large cannot be inspected within bounds: fail closed.
      const error = gatewayError('content_policy_violation', 'The response could not be inspected by the gateway content policy (event too large).');
      return { kind: 'blocked', body: Buffer.from(out + errorEvent(this.api, error, this.nextSequence())), error };
    }
    return { kind: 'bytes', body: Buffer.from(out) };
  }

  private blocked(before: string, f: Finding): GuardOutput {
    const error = policyError(f, 'response');
    return { kind: 'blocked', body: Buffer.from(before + errorEvent(this.api, error, this.nextSequence())), error };
  }

  private nextSequence(): number | undefined {
    return this.sequence === undefined ? undefined : this.sequence + 1;
  }

  /**
   * Responses API events: text deltas through a window per content part; every event that repeats
   * the whole text gets it masked (checked whole), so no event carries what the deltas masked.
   */
  private onResponsesEvent(event: string, obj: Json): string | Finding {
    const type = obj['type'];
    if (typeof obj['sequence_number'] === 'number') this.sequence = obj['sequence_number'];
    if (type === 'response.output_text.delta') {
      if (typeof obj['delta'] !== 'string' || obj['delta'].length === 0) return event + '\n\n';
      const r = this.responsesWindow(obj).push(obj['delta']);
      if (r.blocked) return r.blocked;
      if (r.text === obj['delta']) return event + '\n\n';
      obj['delta'] = r.text;
      return withData(event, obj);
    }
    if (typeof type !== 'string' || !RESPONSES_WHOLE_TEXT.has(type)) return event + '\n\n';
    // Held text of this part (output_text.done) or of every part (the end of the response) first.
    let before = '';
    if (type === 'response.output_text.done') {
      const tail = this.releaseResponsesPart(obj);
      if (typeof tail !== 'string') return tail;
      before = tail;
    } else if (type !== 'response.content_part.done' && type !== 'response.output_item.done') {
      const tail = this.releaseAll();
      if (typeof tail !== 'string') return tail;
      before = tail;
    }
    const changed = this.maskWhole(obj, type);
    if (typeof changed !== 'boolean') return changed;
    return before + (changed ? withData(event, obj) : event + '\n\n');
  }

  private responsesWindow(obj: Json): StreamWindow {
    this.responsesWindows ??= new Map();
    const key = `${String(obj['output_index'])}:${String(obj['content_index'])}`;
    let entry = this.responsesWindows.get(key);
    if (!entry) {
      // Bounded like chat choices: beyond MAX_CHOICES parts, the last one's window is shared.
      if (this.responsesWindows.size >= MAX_CHOICES) return [...this.responsesWindows.values()].at(-1)?.window as StreamWindow;
      entry = { window: new StreamWindow(this.guardrails, this.window, this.report), ids: { item_id: obj['item_id'], output_index: obj['output_index'], content_index: obj['content_index'] } };
      this.responsesWindows.set(key, entry);
    }
    return entry.window;
  }

  /** Flushes one content part's window: its tail as a delta event ('' when nothing was held). */
  private releaseResponsesPart(obj: Json): string | Finding {
    const key = `${String(obj['output_index'])}:${String(obj['content_index'])}`;
    const entry = this.responsesWindows?.get(key);
    if (!entry || entry.window.heldLength === 0) return '';
    const r = entry.window.flush();
    if (r.blocked) return r.blocked;
    return r.text.length > 0 ? this.responsesDelta(entry.ids, r.text) : '';
  }

  private responsesDelta(ids: Json, text: string): string {
    return `event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', ...ids, delta: text })}\n\n`;
  }

  /** Masks the whole texts an event repeats; true when one changed, or the blocking finding. */
  private maskWhole(obj: Json, type: string): boolean | Finding {
    const holders: [Json, string][] = [];
    const parts = (content: unknown): void => {
      if (!Array.isArray(content)) return;
      for (const p of content as unknown[]) if (isRecord(p) && p['type'] === 'output_text') holders.push([p, 'text']);
    };
    const items = (output: unknown): void => {
      if (!Array.isArray(output)) return;
      for (const item of output as unknown[]) if (isRecord(item)) parts(item['content']);
    };
    if (type === 'response.output_text.done') holders.push([obj, 'text']);
    else if (type === 'response.content_part.done' && isRecord(obj['part']) && obj['part']['type'] === 'output_text') holders.push([obj['part'], 'text']);
    else if (type === 'response.output_item.done' && isRecord(obj['item'])) parts(obj['item']['content']);
    else if (isRecord(obj['response'])) {
      items(obj['response']['output']);
      if (typeof obj['response']['output_text'] === 'string') holders.push([obj['response'], 'output_text']);
    }
    let changed = false;
    for (const [holder, key] of holders) {
      const text = holder[key];
      if (typeof text !== 'string' || text.length === 0) continue;
      const masked = this.wholeText(text);
      if (typeof masked !== 'string') return masked;
      if (masked !== text) {
        holder[key] = masked;
        changed = true;
      }
    }
    return changed;
  }

  /**
   * One whole text, masked (its findings were counted as the deltas went through the window; only a
   * block found now is reported). The last result is kept: the same text comes in up to four events.
   */
  private wholeText(text: string): string | Finding {
    if (this.lastWhole?.text === text) return this.lastWhole.masked;
    const v = checkText(text, this.guardrails);
    if (v.blocked) {
      this.report(v.blocked);
      return v.blocked;
    }
    this.lastWhole = { text, masked: v.text };
    return v.text;
  }

  /** Anthropic Messages events: text deltas per content block, released at content_block_stop. */
  private onAnthropicEvent(event: string, obj: Json): string | Finding {
    const type = obj['type'];
    const index = typeof obj['index'] === 'number' && obj['index'] >= 0 && obj['index'] < MAX_CHOICES ? obj['index'] : 0;
    if (type === 'content_block_delta') {
      const delta = obj['delta'];
      if (!isRecord(delta) || typeof delta['text'] !== 'string' || delta['text'].length === 0) return event + '\n\n';
      const r = this.windowOf(index).push(delta['text']);
      if (r.blocked) return r.blocked;
      if (r.text === delta['text']) return event + '\n\n';
      delta['text'] = r.text;
      return withData(event, obj);
    }
    if (type === 'content_block_stop') {
      const w = this.windows[index];
      if (!w || w.heldLength === 0) return event + '\n\n';
      const r = w.flush();
      if (r.blocked) return r.blocked;
      return (r.text.length > 0 ? anthropicDelta(index, r.text) : '') + event + '\n\n';
    }
    if (type === 'message_delta' || type === 'message_stop') {
      const tail = this.releaseAll();
      if (typeof tail !== 'string') return tail;
      return tail + event + '\n\n';
    }
    return event + '\n\n';
  }

  /** One complete event: its bytes to send (with separator), or the blocking finding. */
  private onEvent(event: string): string | Finding {
    if (event.length === 0) return '';
    let data: string | undefined;
    for (const line of event.split(/\r?\n/)) {
      if (line.startsWith('data:')) {
        const v = line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5);
        data = data === undefined ? v : data + '\n' + v;
      }
    }
    if (data === undefined) return event + '\n\n';
    if (data.trim() === '[DONE]') {
      const tail = this.releaseAll();
      if (typeof tail !== 'string') return tail;
      return tail + event + '\n\n';
    }
    let obj: unknown;
    try {
      obj = JSON.parse(data);
    } catch {
      return event + '\n\n'; // not JSON: nothing a guardrail could read in it
    }
    if (this.api === 'anthropic' && isRecord(obj)) return this.onAnthropicEvent(event, obj);
    if (this.api === 'responses') return isRecord(obj) ? this.onResponsesEvent(event, obj) : event + '\n\n';
    if (!isRecord(obj) || !Array.isArray(obj['choices'])) return event + '\n\n';
    this.envelope = { id: obj['id'], object: obj['object'] ?? 'chat.completion.chunk', created: obj['created'], model: obj['model'] };
    let changed = false;
    for (const choice of obj['choices'] as unknown[]) {
      if (!isRecord(choice)) continue;
      const index = typeof choice['index'] === 'number' && choice['index'] >= 0 && choice['index'] < MAX_CHOICES ? choice['index'] : 0;
      let delta = choice['delta'];
      const content = isRecord(delta) ? delta['content'] : undefined;
      let released = '';
      let choiceChanged = false;
      if (typeof content === 'string' && content.length > 0) {
        const r = this.windowOf(index).push(content);
        if (r.blocked) return r.blocked;
        released = r.text;
        if (released !== content) choiceChanged = true;
      }
      if (choice['finish_reason'] !== null && choice['finish_reason'] !== undefined) {
        const r = this.windowOf(index).flush();
        if (r.blocked) return r.blocked;
        if (r.text.length > 0) {
          released += r.text;
          choiceChanged = true;
        }
      }
      if (choiceChanged) {
        changed = true;
        if (!isRecord(delta)) {
          delta = {};
          choice['delta'] = delta;
        }
        (delta as Json)['content'] = released;
      }
    }
    return changed ? withData(event, obj) : event + '\n\n';
  }

  private windowOf(index: number): StreamWindow {
    let w = this.windows[index];
    if (!w) {
      w = new StreamWindow(this.guardrails, this.window, this.report);
      this.windows[index] = w;
    }
    return w;
  }

  /** Releases every choice's held text as one extra event (before [DONE] or at the end). */
  private releaseAll(): string | Finding {
    let out = '';
    for (const entry of this.responsesWindows?.values() ?? []) {
      if (entry.window.heldLength === 0) continue;
      const r = entry.window.flush();
      if (r.blocked) return r.blocked;
      if (r.text.length > 0) out += this.responsesDelta(entry.ids, r.text);
    }
    for (let i = 0; i < this.windows.length; i++) {
      const w = this.windows[i];
      if (!w || w.heldLength === 0) continue;
      const r = w.flush();
      if (r.blocked) return r.blocked;
      if (r.text.length === 0) continue;
      if (this.api === 'anthropic') out += anthropicDelta(i, r.text);
      else out += `data: ${JSON.stringify({ ...this.envelope, choices: [{ index: i, delta: { content: r.text }, finish_reason: null }] })}\n\n`;
    }
    return out;
  }

}

/** Non-streamed answers: buffered, checked whole, re-serialised when masked. */
export class JsonGuard {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** The answer's texts after masking, for an external moderation hook (when collected). */
  readonly texts: string[] = [];

  constructor(
    private readonly guardrails: readonly CompiledGuardrail[],
    private readonly report: (f: Finding) => void,
    private readonly api: ClientApi = 'openai',
    /** Keep the checked texts in `texts` (answer moderation). */
    private readonly collect = false,
  ) {}

  /** Checks one text field of `holder`; the refusal when blocked, true when it changed. */
  private field(holder: Json, key: string): GuardOutput | boolean {
    const text = holder[key];
    if (typeof text !== 'string') return false;
    const v = checkText(text, this.guardrails);
    for (const f of v.findings) if (f.rule.action !== 'block') this.report(f);
    if (v.blocked) {
      this.report(v.blocked);
      const error = policyError(v.blocked, 'response');
      return { kind: 'blocked', body: Buffer.from(errorBodyFor(this.api, error)), error };
    }
    if (this.collect && v.text.length > 0) this.texts.push(v.text);
    if (v.text === text) return false;
    holder[key] = v.text;
    return true;
  }

  /** Holds chunks until the end; then the body to send (or the refusal). */
  push(chunk: Buffer, end: boolean): GuardOutput | undefined {
    this.size += chunk.length;
    if (this.size > MAX_JSON_BYTES) {
      const error = gatewayError('content_policy_violation', 'The response is too large for the gateway content policy to inspect.');
      return { kind: 'blocked', body: Buffer.from(errorBodyFor(this.api, error)), error };
    }
    if (chunk.length > 0) this.chunks.push(chunk);
    if (!end) return undefined;
    // One chunk (the buffered case) is kept as it is, so an unchanged answer goes back untouched.
    const raw = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks.length = 0;
    let obj: unknown;
    try {
      obj = JSON.parse(raw.toString('utf8'));
    } catch {
      const error = gatewayError('content_policy_violation', 'The response could not be inspected by the gateway content policy (not JSON).');
      return { kind: 'blocked', body: Buffer.from(errorBodyFor(this.api, error)), error };
    }
    if (!isRecord(obj)) return { kind: 'bytes', body: raw };
    let changed = false;
    // OpenAI: choices[].message.content; Anthropic: content[] text blocks.
    const fields: [Json, string][] = [];
    if (Array.isArray(obj['choices'])) for (const c of obj['choices'] as unknown[]) if (isRecord(c) && isRecord(c['message'])) fields.push([c['message'], 'content']);
    if (Array.isArray(obj['content'])) for (const b of obj['content'] as unknown[]) if (isRecord(b)) fields.push([b, 'text']);
    // Responses API: output items' output_text parts (and output_text, where a server adds it).
    if (Array.isArray(obj['output'])) {
      for (const item of obj['output'] as unknown[]) {
        if (!isRecord(item) || !Array.isArray(item['content'])) continue;
        for (const p of item['content'] as unknown[]) if (isRecord(p) && p['type'] === 'output_text') fields.push([p, 'text']);
      }
      if (typeof obj['output_text'] === 'string') fields.push([obj, 'output_text']);
    }
    for (const [holder, key] of fields) {
      const r = this.field(holder, key);
      if (typeof r !== 'boolean') return r;
      if (r) changed = true;
    }
    return { kind: 'bytes', body: changed ? Buffer.from(JSON.stringify(obj)) : raw };
  }
}

/** The event with its data replaced by `obj` (its `event:`, `id:` and other lines kept). */
function withData(event: string, obj: Json): string {
  let out = '';
  let wrote = false;
  for (const line of event.split(/\r?\n/)) {
    if (line.startsWith('data:')) {
      if (!wrote) out += `data: ${JSON.stringify(obj)}\n`;
      wrote = true;
    } else out += line + '\n';
  }
  return out + '\n';
}

/** An Anthropic text delta event for content block `index`. */
function anthropicDelta(index: number, text: string): string {
  return `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } })}\n\n`;
}
