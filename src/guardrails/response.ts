/**
 * Response inspection. Two shapes:
 *
 * SseGuard, for streamed answers: an incremental SSE parser (events may split anywhere, UTF-8
 * sequences too) that runs every text the model writes through a window and re-emits the event with
 * only what the window released (masked). Chat completions: each choice's `delta.content`,
 * `refusal`, `reasoning_content` / `reasoning` (a StreamWindow each) and each tool call's
 * `function.arguments` (an ArgumentsWindow, which keeps the JSON valid); released at
 * `finish_reason`, `[DONE]` or the end of the body. A `block` ends the stream with an explicit
 * OpenAI-style error event; the caller then stops the stream. Held state is bounded: one incomplete
 * event (MAX_EVENT_CHARS) and a few windows per choice.
 *
 * Anthropic Messages: text, thinking and input_json deltas per content block, released at
 * content_block_stop. Responses API (`format` 'responses'): output text, refusal, reasoning and
 * tool-call argument deltas through a window per part, flushed at their `.done` event; the events
 * that repeat a whole text (`.done` events, `content_part.done`, `output_item.done`,
 * `response.completed`/`incomplete`) get it checked whole and masked, so no event carries the
 * original. A block ends the stream with a Responses `error` event.
 *
 * Streams without refusals, reasoning or tool calls pay a few property reads on the event already
 * parsed, nothing more.
 *
 * JsonGuard, for non-streamed answers: the body is buffered (up to MAX_JSON_BYTES), every text the
 * model wrote (chat message content, refusal, reasoning, tool-call arguments; Anthropic text,
 * thinking and tool_use input; Responses output items) is checked whole, and the body is
 * re-serialised when masked.
 */
import { StringDecoder } from 'node:string_decoder';
import { errorBodyFor, errorEventFor, gatewayError, type ClientApi, type GatewayError } from '../errors.js';
import { encryptedThinking, thinkingOf } from '../providers/openai/responses.js';
import type { CompiledGuardrail } from './compile.js';
import { ArgumentsWindow, checkArguments } from './arguments.js';
import { checkText, type Finding } from './scan.js';
import { StreamWindow, type WindowResult } from './window.js';

export const MAX_EVENT_CHARS = 1024 * 1024;
export const MAX_JSON_BYTES = 8 * 1024 * 1024;
const MAX_CHOICES = 128;
/**
 * Tool calls of one chat choice with a window of their own (a call's arguments are held until the
 * choice finishes); calls past it share the last one's, masked then as raw text.
 */
const MAX_TOOL_CALLS = 1024;

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

/** A window over streamed text or streamed tool-call arguments. */
/** What an Anthropic content block's deltas carry. */
type BlockKind = 'text' | 'thinking' | 'tool';

interface TextWindow {
  push(text: string): WindowResult;
  flush(): WindowResult;
  readonly heldLength: number;
}

/**
 * How a text field is checked: plain text, JSON arguments (string), a parsed JSON value (Anthropic
 * tool_use input), or the `encrypted_content` this gateway writes for Claude thinking on the
 * Responses API (base64 of the thinking blocks, readable by anyone: its thinking texts are masked).
 */
type FieldKind = 'text' | 'args' | 'object' | 'thinking64';

/** The gateway's own encrypted_content with each thinking text checked by `check`; other values unchanged. */
function maskEncryptedThinking(value: string, check: (text: string) => string | Finding): string | Finding {
  const blocks = thinkingOf(value);
  if (!blocks) return value;
  let changed = false;
  for (const b of blocks) {
    if (!isRecord(b) || typeof b['thinking'] !== 'string') continue;
    const masked = check(b['thinking']);
    if (typeof masked !== 'string') return masked;
    if (masked !== b['thinking']) {
      b['thinking'] = masked;
      changed = true;
    }
  }
  return changed ? encryptedThinking(blocks) : value;
}

/** Chat completion delta/message fields other than `content` that carry model text. */
const CHAT_TEXT_FIELDS = ['refusal', 'reasoning_content', 'reasoning'] as const;

/** Responses API streamed fields: the delta event, its done event, the done event's whole-text field, how to key the window. */
interface ResponsesStreamed {
  readonly delta: string;
  readonly done: string;
  readonly field: string;
  readonly kind: 'text' | 'args';
  /** The second index of the window key (content part, summary part), if any. */
  readonly sub: 'content_index' | 'summary_index' | undefined;
}

const RESPONSES_STREAMED: readonly ResponsesStreamed[] = [
  { delta: 'response.output_text.delta', done: 'response.output_text.done', field: 'text', kind: 'text', sub: 'content_index' },
  { delta: 'response.refusal.delta', done: 'response.refusal.done', field: 'refusal', kind: 'text', sub: 'content_index' },
  { delta: 'response.reasoning_summary_text.delta', done: 'response.reasoning_summary_text.done', field: 'text', kind: 'text', sub: 'summary_index' },
  { delta: 'response.reasoning_text.delta', done: 'response.reasoning_text.done', field: 'text', kind: 'text', sub: 'content_index' },
  { delta: 'response.function_call_arguments.delta', done: 'response.function_call_arguments.done', field: 'arguments', kind: 'args', sub: undefined },
  { delta: 'response.mcp_call_arguments.delta', done: 'response.mcp_call_arguments.done', field: 'arguments', kind: 'args', sub: undefined },
  { delta: 'response.custom_tool_call_input.delta', done: 'response.custom_tool_call_input.done', field: 'input', kind: 'text', sub: undefined },
];
const RESPONSES_BY_DELTA: ReadonlyMap<string, ResponsesStreamed> = new Map(RESPONSES_STREAMED.map((s) => [s.delta, s]));
const RESPONSES_BY_DONE: ReadonlyMap<string, ResponsesStreamed> = new Map(RESPONSES_STREAMED.map((s) => [s.done, s]));

/** The Responses events whose data repeats an answer's whole text (besides the done events above). */
const RESPONSES_WHOLE_TEXT: ReadonlySet<string> = new Set([
  'response.content_part.done',
  'response.reasoning_summary_part.done',
  'response.output_item.done',
  'response.completed',
  'response.incomplete',
  'response.failed',
]);

/** The model-written fields of one Responses output item (message parts, reasoning, tool calls). */
function responsesItemFields(item: Json, out: [Json, string, FieldKind][]): void {
  const content = item['content'];
  if (Array.isArray(content)) for (const p of content as unknown[]) if (isRecord(p)) responsesPartField(p, out);
  const summary = item['summary'];
  if (Array.isArray(summary)) for (const p of summary as unknown[]) if (isRecord(p) && typeof p['text'] === 'string') out.push([p, 'text', 'text']);
  const type = item['type'];
  if (type === 'function_call' || type === 'mcp_call') out.push([item, 'arguments', 'args']);
  else if (type === 'reasoning' && typeof item['encrypted_content'] === 'string') out.push([item, 'encrypted_content', 'thinking64']);
  else if (type === 'custom_tool_call') out.push([item, 'input', 'text']);
}

/** A Responses content part's text: output_text and reasoning_text `text`, refusal `refusal`. */
function responsesPartField(p: Json, out: [Json, string, FieldKind][]): void {
  const t = p['type'];
  if (t === 'output_text' || t === 'reasoning_text' || t === 'summary_text') out.push([p, 'text', 'text']);
  else if (t === 'refusal') out.push([p, 'refusal', 'text']);
}

/** Per chat choice: windows of refusal/reasoning text and of each tool call's arguments (-1: legacy function_call). */
class ChoiceExtras {
  texts: Map<string, StreamWindow> | undefined;
  args: Map<number, ArgumentsWindow> | undefined;
}

export class SseGuard {
  private readonly decoder = new StringDecoder('utf8');
  /** Wire format of the answer: OpenAI chat completion chunks, Anthropic Messages or Responses API events. */
  private readonly api: AnswerFormat;
  /** Responses API: the window of each streamed part (text, refusal, reasoning, arguments), and the last sequence number. */
  private responsesWindows: Map<string, { readonly window: TextWindow; readonly ids: Json; readonly delta: string }> | undefined;
  private sequence: number | undefined;
  /** The last whole text checked and its masked form (the Responses API repeats it in several events). */
  private lastWhole: { readonly text: string; readonly masked: string } | undefined;
  /** The last whole arguments checked and their masked form. */
  private lastArgs: { readonly text: string; readonly masked: string } | undefined;
  private pending = '';
  private readonly windows: (StreamWindow | undefined)[] = [];
  /** Chat: refusal, reasoning and tool-call argument windows per choice (only streams that have them). */
  private extras: (ChoiceExtras | undefined)[] | undefined;
  /** Anthropic: the text, thinking or tool_use input window of each open content block (dropped at its stop). */
  private blocks: Map<number, { readonly kind: BlockKind; readonly window: TextWindow }> | undefined;
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
   * Responses API events: text, refusal, reasoning and tool-call argument deltas through a window per
   * part; every event that repeats a whole text gets it masked (checked whole), so no event carries
   * what the deltas masked.
   */
  private onResponsesEvent(event: string, obj: Json): string | Finding {
    const type = obj['type'];
    if (typeof obj['sequence_number'] === 'number') this.sequence = obj['sequence_number'];
    if (typeof type !== 'string') return event + '\n\n';
    const streamed = RESPONSES_BY_DELTA.get(type);
    if (streamed) {
      const delta = obj['delta'];
      if (typeof delta !== 'string' || delta.length === 0) return event + '\n\n';
      const r = this.responsesWindow(streamed, obj).push(delta);
      if (r.blocked) return r.blocked;
      if (r.text === delta) return event + '\n\n';
      obj['delta'] = r.text;
      return withData(event, obj);
    }
    const done = RESPONSES_BY_DONE.get(type);
    if (!done && !RESPONSES_WHOLE_TEXT.has(type)) return event + '\n\n';
    // Held text of this part (a done event) or of every part (the end of the response) first.
    let before = '';
    if (done) {
      const tail = this.releaseResponsesPart(done, obj);
      if (typeof tail !== 'string') return tail;
      before = tail;
    } else if (type !== 'response.content_part.done' && type !== 'response.output_item.done' && type !== 'response.reasoning_summary_part.done') {
      const tail = this.releaseAll();
      if (typeof tail !== 'string') return tail;
      before = tail;
    }
    const changed = this.maskWhole(obj, type, done);
    if (typeof changed !== 'boolean') return changed;
    return before + (changed ? withData(event, obj) : event + '\n\n');
  }

  private responsesKey(spec: ResponsesStreamed, obj: Json): string {
    return `${spec.done}:${String(obj['output_index'])}:${spec.sub ? String(obj[spec.sub]) : ''}`;
  }

  private responsesWindow(spec: ResponsesStreamed, obj: Json): TextWindow {
    this.responsesWindows ??= new Map();
    const key = this.responsesKey(spec, obj);
    let entry = this.responsesWindows.get(key);
    if (!entry) {
      // Bounded like chat choices: beyond MAX_CHOICES open parts, the last one's window is shared.
      if (this.responsesWindows.size >= MAX_CHOICES) return [...this.responsesWindows.values()].at(-1)?.window as TextWindow;
      const ids: Json = { item_id: obj['item_id'], output_index: obj['output_index'] };
      if (spec.sub) ids[spec.sub] = obj[spec.sub];
      const window = spec.kind === 'args' ? new ArgumentsWindow(this.guardrails, this.window, this.report) : new StreamWindow(this.guardrails, this.window, this.report);
      entry = { window, ids, delta: spec.delta };
      this.responsesWindows.set(key, entry);
    }
    return entry.window;
  }

  /**
   * Flushes one part's window: its tail as a delta event ('' when nothing was held). The part is done:
   * its window is dropped, so the map holds only open parts (a response can have hundreds of parts).
   */
  private releaseResponsesPart(spec: ResponsesStreamed, obj: Json): string | Finding {
    const key = this.responsesKey(spec, obj);
    const entry = this.responsesWindows?.get(key);
    if (entry) this.responsesWindows?.delete(key);
    if (!entry || entry.window.heldLength === 0) return '';
    const r = entry.window.flush();
    if (r.blocked) return r.blocked;
    return r.text.length > 0 ? this.responsesDelta(entry.delta, entry.ids, r.text) : '';
  }

  private responsesDelta(type: string, ids: Json, text: string): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, ...ids, delta: text })}\n\n`;
  }

  /** Masks the whole texts an event repeats; true when one changed, or the blocking finding. */
  private maskWhole(obj: Json, type: string, done: ResponsesStreamed | undefined): boolean | Finding {
    const holders: [Json, string, FieldKind][] = [];
    const items = (output: unknown): void => {
      if (!Array.isArray(output)) return;
      for (const item of output as unknown[]) if (isRecord(item)) responsesItemFields(item, holders);
    };
    if (done) holders.push([obj, done.field, done.kind]);
    else if ((type === 'response.content_part.done' || type === 'response.reasoning_summary_part.done') && isRecord(obj['part'])) responsesPartField(obj['part'], holders);
    else if (type === 'response.output_item.done' && isRecord(obj['item'])) responsesItemFields(obj['item'], holders);
    else if (isRecord(obj['response'])) {
      items(obj['response']['output']);
      if (typeof obj['response']['output_text'] === 'string') holders.push([obj['response'], 'output_text', 'text']);
    }
    return this.maskFields(holders);
  }

  /** Masks whole texts in place (findings already counted by the windows; only a block is reported now). */
  private maskFields(holders: readonly [Json, string, FieldKind][]): boolean | Finding {
    let changed = false;
    for (const [holder, key, kind] of holders) {
      const text = holder[key];
      if (typeof text !== 'string' || text.length === 0) continue;
      const masked = kind === 'text' ? this.wholeText(text) : kind === 'thinking64' ? maskEncryptedThinking(text, (t) => this.wholeText(t)) : this.wholeArgs(text);
      if (typeof masked !== 'string') return masked;
      if (masked !== text) {
        holder[key] = masked;
        changed = true;
      }
    }
    return changed;
  }

  /** Whole tool-call arguments, masked inside JSON strings (see wholeText). */
  private wholeArgs(text: string): string | Finding {
    if (this.lastArgs?.text === text) return this.lastArgs.masked;
    const r = checkArguments(text, this.guardrails, (f) => {
      if (f.rule.action === 'block') this.report(f);
    });
    if (r.blocked) return r.blocked;
    this.lastArgs = { text, masked: r.text };
    return r.text;
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

  /**
   * Anthropic Messages events: text, thinking and tool_use input (input_json_delta) deltas per
   * content block, released at content_block_stop. Blocks are keyed by their own index (an answer
   * with web search citations or many tool calls has hundreds); only open blocks hold a window.
   */
  private onAnthropicEvent(event: string, obj: Json): string | Finding {
    const type = obj['type'];
    const index = typeof obj['index'] === 'number' && Number.isSafeInteger(obj['index']) && obj['index'] >= 0 ? obj['index'] : 0;
    if (type === 'content_block_delta') {
      const delta = obj['delta'];
      if (!isRecord(delta)) return event + '\n\n';
      let field: string;
      let window: TextWindow;
      if (typeof delta['text'] === 'string') {
        field = 'text';
        window = this.blockWindow(index, 'text');
      } else if (typeof delta['thinking'] === 'string') {
        field = 'thinking';
        window = this.blockWindow(index, 'thinking');
      } else if (typeof delta['partial_json'] === 'string') {
        field = 'partial_json';
        window = this.blockWindow(index, 'tool');
      } else return event + '\n\n';
      const text = delta[field] as string;
      if (text.length === 0) return event + '\n\n';
      const r = window.push(text);
      if (r.blocked) return r.blocked;
      if (r.text === text) return event + '\n\n';
      delta[field] = r.text;
      return withData(event, obj);
    }
    if (type === 'content_block_stop') {
      const tail = this.releaseBlock(index);
      if (typeof tail !== 'string') return tail;
      return tail + event + '\n\n';
    }
    if (type === 'message_delta' || type === 'message_stop') {
      const tail = this.releaseAll();
      if (typeof tail !== 'string') return tail;
      return tail + event + '\n\n';
    }
    return event + '\n\n';
  }

  /** The text, thinking or tool_use input window of Anthropic content block `index`. */
  private blockWindow(index: number, kind: BlockKind): TextWindow {
    this.blocks ??= new Map();
    let entry = this.blocks.get(index);
    // Bounded: beyond MAX_CHOICES open blocks (an upstream that never stops them), the last one's window is shared.
    if (!entry && this.blocks.size >= MAX_CHOICES) return [...this.blocks.values()].at(-1)?.window as TextWindow;
    if (!entry || entry.kind !== kind) {
      entry = { kind, window: kind === 'tool' ? new ArgumentsWindow(this.guardrails, this.window, this.report) : new StreamWindow(this.guardrails, this.window, this.report) };
      this.blocks.set(index, entry);
    }
    return entry.window;
  }

  /** Flushes Anthropic content block `index` (text, thinking or tool input) and drops its window: its tail as a delta event. */
  private releaseBlock(index: number): string | Finding {
    const b = this.blocks?.get(index);
    if (!b) return '';
    this.blocks?.delete(index);
    if (b.window.heldLength === 0) return '';
    const r = b.window.flush();
    if (r.blocked) return r.blocked;
    if (r.text.length === 0) return '';
    if (b.kind === 'text') return anthropicDelta(index, r.text);
    const delta = b.kind === 'thinking' ? { type: 'thinking_delta', thinking: r.text } : { type: 'input_json_delta', partial_json: r.text };
    return `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index, delta })}\n\n`;
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
      const r = this.onChoice(choice);
      if (typeof r !== 'boolean') return r;
      if (r) changed = true;
    }
    return changed ? withData(event, obj) : event + '\n\n';
  }

  /** One chat choice of a chunk: its delta's texts through their windows; true when it changed. */
  private onChoice(choice: Json): boolean | Finding {
    const index = typeof choice['index'] === 'number' && choice['index'] >= 0 && choice['index'] < MAX_CHOICES ? choice['index'] : 0;
    let delta = choice['delta'];
    const d = isRecord(delta) ? delta : undefined;
    const content = d?.['content'];
    let released = '';
    let contentChanged = false;
    let changed = false;
    if (typeof content === 'string' && content.length > 0) {
      const r = this.windowOf(index).push(content);
      if (r.blocked) return r.blocked;
      released = r.text;
      if (released !== content) contentChanged = true;
    }
    // Refusal, reasoning and tool-call arguments: property reads only, unless the stream has them.
    if (d && (d['tool_calls'] !== undefined || d['refusal'] != null || d['reasoning_content'] != null || d['reasoning'] != null || d['function_call'] !== undefined || d['thinking_blocks'] !== undefined)) {
      const r = this.choiceExtras(index, d);
      if (typeof r !== 'boolean') return r;
      if (r) changed = true;
    }
    if (choice['finish_reason'] !== null && choice['finish_reason'] !== undefined) {
      const r = this.windowOf(index).flush();
      if (r.blocked) return r.blocked;
      if (r.text.length > 0) {
        released += r.text;
        contentChanged = true;
      }
      const extras = this.extras?.[index];
      if (extras) {
        if (!isRecord(delta)) {
          delta = {};
          choice['delta'] = delta;
        }
        const t = flushExtras(extras, delta as Json);
        if (typeof t !== 'boolean') return t;
        if (t) changed = true;
      }
    }
    if (contentChanged) {
      if (!isRecord(delta)) {
        delta = {};
        choice['delta'] = delta;
      }
      (delta as Json)['content'] = released;
    }
    return changed || contentChanged;
  }

  /** Refusal, reasoning and tool-call argument deltas of one choice; true when one changed. */
  private choiceExtras(index: number, d: Json): boolean | Finding {
    this.extras ??= [];
    let extras = this.extras[index];
    if (!extras) {
      extras = new ChoiceExtras();
      this.extras[index] = extras;
    }
    let changed = false;
    for (const field of CHAT_TEXT_FIELDS) {
      const v = d[field];
      if (typeof v !== 'string' || v.length === 0) continue;
      extras.texts ??= new Map();
      let w = extras.texts.get(field);
      if (!w) {
        w = new StreamWindow(this.guardrails, this.window, this.report);
        extras.texts.set(field, w);
      }
      const r = w.push(v);
      if (r.blocked) return r.blocked;
      if (r.text !== v) {
        d[field] = r.text;
        changed = true;
      }
    }
    const calls = d['tool_calls'];
    if (Array.isArray(calls)) {
      for (const call of calls as unknown[]) {
        if (!isRecord(call)) continue;
        const i = call['index'];
        const k = typeof i === 'number' && Number.isInteger(i) && i >= 0 ? Math.min(i, MAX_TOOL_CALLS - 1) : 0;
        const r = this.argumentsDelta(extras, k, call['function']);
        if (typeof r !== 'boolean') return r;
        if (r) changed = true;
      }
    }
    if (d['function_call'] !== undefined) {
      const r = this.argumentsDelta(extras, -1, d['function_call']);
      if (typeof r !== 'boolean') return r;
      if (r) changed = true;
    }
    // The gateway's Claude translators repeat the whole thinking text (with its signature) here.
    const blocks = d['thinking_blocks'];
    if (Array.isArray(blocks)) {
      const holders: [Json, string, FieldKind][] = [];
      for (const b of blocks as unknown[]) if (isRecord(b) && typeof b['thinking'] === 'string') holders.push([b, 'thinking', 'text']);
      const r = this.maskFields(holders);
      if (typeof r !== 'boolean') return r;
      if (r) changed = true;
    }
    return changed;
  }

  /** One tool call's argument delta (`fn` is its `function`) through the call's window. */
  private argumentsDelta(extras: ChoiceExtras, k: number, fn: unknown): boolean | Finding {
    if (!isRecord(fn)) return false;
    const a = fn['arguments'];
    if (typeof a !== 'string' || a.length === 0) return false;
    extras.args ??= new Map();
    let w = extras.args.get(k);
    if (!w) {
      w = new ArgumentsWindow(this.guardrails, this.window, this.report);
      extras.args.set(k, w);
    }
    const r = w.push(a);
    if (r.blocked) return r.blocked;
    if (r.text === a) return false;
    fn['arguments'] = r.text;
    return true;
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
      if (r.text.length > 0) out += this.responsesDelta(entry.delta, entry.ids, r.text);
    }
    if (this.api === 'anthropic') {
      for (const i of [...(this.blocks?.keys() ?? [])].sort((a, b) => a - b)) {
        const r = this.releaseBlock(i);
        if (typeof r !== 'string') return r;
        out += r;
      }
      return out;
    }
    const n = Math.max(this.windows.length, this.extras?.length ?? 0);
    for (let i = 0; i < n; i++) {
      const delta: Json = {};
      let changed = false;
      const w = this.windows[i];
      if (w && w.heldLength > 0) {
        const r = w.flush();
        if (r.blocked) return r.blocked;
        if (r.text.length > 0) {
          delta['content'] = r.text;
          changed = true;
        }
      }
      const extras = this.extras?.[i];
      if (extras) {
        const r = flushExtras(extras, delta);
        if (typeof r !== 'boolean') return r;
        if (r) changed = true;
      }
      if (changed) out += `data: ${JSON.stringify({ ...this.envelope, choices: [{ index: i, delta, finish_reason: null }] })}\n\n`;
    }
    return out;
  }
}

/**
 * Flushes a choice's refusal, reasoning and argument windows into `delta` (appended to what it
 * already carries; a tool call's tail joins its entry in `tool_calls` or a new one). True when
 * anything was added.
 */
function flushExtras(extras: ChoiceExtras, delta: Json): boolean | Finding {
  let changed = false;
  for (const [field, w] of extras.texts ?? []) {
    if (w.heldLength === 0) continue;
    const r = w.flush();
    if (r.blocked) return r.blocked;
    if (r.text.length === 0) continue;
    const before = delta[field];
    delta[field] = (typeof before === 'string' ? before : '') + r.text;
    changed = true;
  }
  for (const [k, w] of extras.args ?? []) {
    if (w.heldLength === 0) continue;
    const r = w.flush();
    if (r.blocked) return r.blocked;
    if (r.text.length === 0) continue;
    changed = true;
    if (k === -1) {
      const fc = isRecord(delta['function_call']) ? delta['function_call'] : (delta['function_call'] = {});
      fc['arguments'] = (typeof fc['arguments'] === 'string' ? fc['arguments'] : '') + r.text;
      continue;
    }
    const calls = Array.isArray(delta['tool_calls']) ? (delta['tool_calls'] as unknown[]) : (delta['tool_calls'] = []);
    const call = calls.find((c): c is Json => isRecord(c) && c['index'] === k);
    if (call) {
      const fn = isRecord(call['function']) ? call['function'] : (call['function'] = {});
      fn['arguments'] = (typeof fn['arguments'] === 'string' ? fn['arguments'] : '') + r.text;
    } else calls.push({ index: k, function: { arguments: r.text } });
  }
  return changed;
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
  private field(holder: Json, key: string, kind: FieldKind): GuardOutput | boolean {
    const value = holder[key];
    let text: string;
    if (kind === 'object') {
      // Anthropic tool_use input: checked as the JSON text it streams as (input_json_delta).
      if (!isRecord(value) && !Array.isArray(value)) return false;
      text = JSON.stringify(value);
    } else if (typeof value === 'string') text = value;
    else return false;
    let blocked: Finding | undefined;
    let out: string;
    const plain = (t: string): string | Finding => {
      const v = checkText(t, this.guardrails);
      // Encrypted thinking repeats the reasoning summary, whose findings are counted: only a block is.
      if (kind === 'text') for (const f of v.findings) if (f.rule.action !== 'block') this.report(f);
      if (v.blocked) this.report(v.blocked);
      return v.blocked ?? v.text;
    };
    if (kind === 'text' || kind === 'thinking64') {
      const r = kind === 'text' ? plain(text) : maskEncryptedThinking(text, plain);
      blocked = typeof r === 'string' ? undefined : r;
      out = typeof r === 'string' ? r : text;
    } else {
      const r = checkArguments(text, this.guardrails, this.report);
      blocked = r.blocked;
      out = r.blocked ? text : r.text;
    }
    if (blocked) {
      const error = policyError(blocked, 'response');
      return { kind: 'blocked', body: Buffer.from(errorBodyFor(this.api, error)), error };
    }
    if (this.collect && out.length > 0 && kind !== 'thinking64') this.texts.push(out);
    if (out === text) return false;
    holder[key] = kind === 'object' ? (JSON.parse(out) as unknown) : out;
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
    // OpenAI: choices[].message: content, refusal, reasoning, tool-call arguments, thinking blocks.
    const fields: [Json, string, FieldKind][] = [];
    if (Array.isArray(obj['choices'])) {
      for (const c of obj['choices'] as unknown[]) {
        if (!isRecord(c) || !isRecord(c['message'])) continue;
        const m = c['message'];
        fields.push([m, 'content', 'text']);
        for (const f of CHAT_TEXT_FIELDS) if (typeof m[f] === 'string') fields.push([m, f, 'text']);
        if (Array.isArray(m['tool_calls'])) for (const t of m['tool_calls'] as unknown[]) if (isRecord(t) && isRecord(t['function'])) fields.push([t['function'], 'arguments', 'args']);
        if (isRecord(m['function_call'])) fields.push([m['function_call'], 'arguments', 'args']);
        if (Array.isArray(m['thinking_blocks'])) for (const b of m['thinking_blocks'] as unknown[]) if (isRecord(b)) fields.push([b, 'thinking', 'text']);
      }
    }
    // Anthropic: content[] text, thinking and tool_use blocks.
    if (Array.isArray(obj['content'])) {
      for (const b of obj['content'] as unknown[]) {
        if (!isRecord(b)) continue;
        if (b['type'] === 'tool_use') fields.push([b, 'input', 'object']);
        else if (typeof b['thinking'] === 'string') fields.push([b, 'thinking', 'text']);
        else fields.push([b, 'text', 'text']);
      }
    }
    // Responses API: output items (message parts and refusals, reasoning, tool calls), and output_text where a server adds it.
    if (Array.isArray(obj['output'])) {
      for (const item of obj['output'] as unknown[]) if (isRecord(item)) responsesItemFields(item, fields);
      if (typeof obj['output_text'] === 'string') fields.push([obj, 'output_text', 'text']);
    }
    for (const [holder, key, kind] of fields) {
      const r = this.field(holder, key, kind);
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
