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
 * JsonGuard, for non-streamed answers: the body is buffered (up to MAX_JSON_BYTES), every
 * `choices[].message.content` is checked whole, and the body is re-serialised when masked.
 */
import { StringDecoder } from 'node:string_decoder';
import { errorBody, gatewayError, type GatewayError } from '../errors.js';
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

export class SseGuard {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private readonly windows: (StreamWindow | undefined)[] = [];
  /** id/object/created/model of the last chunk, for the event that releases held text at the end. */
  private envelope: Json = { object: 'chat.completion.chunk' };
  private done = false;

  constructor(
    private readonly guardrails: readonly CompiledGuardrail[],
    private readonly window: number,
    private readonly report: (f: Finding) => void,
  ) {}

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
      return { kind: 'blocked', body: Buffer.from(out + `data: ${errorBody(error)}\n\n`), error };
    }
    return { kind: 'bytes', body: Buffer.from(out) };
  }

  private blocked(before: string, f: Finding): GuardOutput {
    const error = policyError(f, 'response');
    return { kind: 'blocked', body: Buffer.from(before + `data: ${errorBody(error)}\n\n`), error };
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
      this.done = true;
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
    return changed ? `data: ${JSON.stringify(obj)}\n\n` : event + '\n\n';
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
    for (let i = 0; i < this.windows.length; i++) {
      const w = this.windows[i];
      if (!w || w.heldLength === 0) continue;
      const r = w.flush();
      if (r.blocked) return r.blocked;
      if (r.text.length === 0) continue;
      out += `data: ${JSON.stringify({ ...this.envelope, choices: [{ index: i, delta: { content: r.text }, finish_reason: null }] })}\n\n`;
    }
    return out;
  }

  /** True once `[DONE]` went through. */
  get finished(): boolean {
    return this.done;
  }
}

/** Non-streamed answers: buffered, checked whole, re-serialised when masked. */
export class JsonGuard {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly guardrails: readonly CompiledGuardrail[],
    private readonly report: (f: Finding) => void,
  ) {}

  /** Holds chunks until the end; then the body to send (or the refusal). */
  push(chunk: Buffer, end: boolean): GuardOutput | undefined {
    this.size += chunk.length;
    if (this.size > MAX_JSON_BYTES) {
      const error = gatewayError('content_policy_violation', 'The response is too large for the gateway content policy to inspect.');
      return { kind: 'blocked', body: Buffer.from(errorBody(error)), error };
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
      return { kind: 'blocked', body: Buffer.from(errorBody(error)), error };
    }
    if (!isRecord(obj) || !Array.isArray(obj['choices'])) return { kind: 'bytes', body: raw };
    let changed = false;
    for (const choice of obj['choices'] as unknown[]) {
      const message = isRecord(choice) ? choice['message'] : undefined;
      if (!isRecord(message) || typeof message['content'] !== 'string') continue;
      const v = checkText(message['content'], this.guardrails);
      for (const f of v.findings) if (f.rule.action !== 'block') this.report(f);
      if (v.blocked) {
        this.report(v.blocked);
        const error = policyError(v.blocked, 'response');
        return { kind: 'blocked', body: Buffer.from(errorBody(error)), error };
      }
      if (v.text !== message['content']) {
        message['content'] = v.text;
        changed = true;
      }
    }
    return { kind: 'bytes', body: changed ? Buffer.from(JSON.stringify(obj)) : raw };
  }
}
