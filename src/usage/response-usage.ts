/**
 * Reading `usage` out of upstream responses without buffering them.
 *
 * SseUsageMeter: an incremental SSE scanner (events may split anywhere across chunks) that finds the
 * usage event, counts streamed completion text while the stream runs (so reservations can be
 * extended mid-stream), and, when the gateway added `stream_options.include_usage` itself, removes
 * the usage-only event from what the client sees. Every chunk runs on the ext_proc hot path
 * (tens of thousands of chunks/s), so the work is one pass over each byte with a small state
 * machine whose state survives chunk boundaries: no lookahead, no rescanning of bytes already seen,
 * no `toString`, no allocation for a chunk that holds whole events; JSON.parse only for the event
 * that carries a top-level `usage` object. It holds at most one incomplete event (bounded by
 * MAX_EVENT_BYTES, kept only because its bytes may have to be parsed or withheld); an event longer
 * than that passes through unparsed (its text is still counted).
 *
 * JsonUsageTail: for non-streamed JSON, keeps only the last TAIL_BYTES of the body and parses the
 * top-level `usage` object from it at the end (OpenAI-style bodies end with usage).
 */

export interface TokenUsage {
  /** All prompt tokens, cached ones included. */
  readonly promptTokens: number;
  /** All completion tokens, reasoning included. */
  readonly completionTokens: number;
  /** Of the prompt: read from the provider's cache (billed at the cached-input price). */
  readonly cachedReadTokens?: number;
  /** Of the prompt: written to the provider's cache. */
  readonly cachedWriteTokens?: number;
  /** Of the completion: reasoning tokens. */
  readonly reasoningTokens?: number;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

function sub(obj: unknown, field: string): unknown {
  return typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[field] : undefined;
}

export const MAX_EVENT_BYTES = 64 * 1024;
export const TAIL_BYTES = 16 * 1024;

const NL = 0x0a;
const DONE = Buffer.from('[DONE]');
const USAGE = Buffer.from('"usage":');
const EMPTY = Buffer.alloc(0);

/** Token usage from a provider `usage` object (OpenAI chat, Responses or Anthropic field names). */
export function readUsage(value: unknown): TokenUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const u = value as Record<string, unknown>;
  const p = u['prompt_tokens'] ?? u['input_tokens'];
  const c = u['completion_tokens'] ?? u['output_tokens'] ?? 0;
  if (typeof p !== 'number' || typeof c !== 'number') return undefined;
  // OpenAI: prompt_tokens_details.cached_tokens (part of prompt_tokens), completion_tokens_details.
  // reasoning_tokens (part of completion_tokens); Responses API: input_tokens_details / output_tokens_details.
  // Anthropic-shaped usage: cache_read_input_tokens / cache_creation_input_tokens are NOT part of input_tokens.
  const anthropicRead = num(u['cache_read_input_tokens']);
  const anthropicWrite = num(u['cache_creation_input_tokens']);
  const read = num(sub(u['prompt_tokens_details'] ?? u['input_tokens_details'], 'cached_tokens')) ?? anthropicRead;
  const write = num(sub(u['prompt_tokens_details'], 'cache_creation_tokens')) ?? anthropicWrite;
  const reasoning = num(sub(u['completion_tokens_details'] ?? u['output_tokens_details'], 'reasoning_tokens'));
  const separate = u['prompt_tokens'] === undefined ? (anthropicRead ?? 0) + (anthropicWrite ?? 0) : 0;
  return {
    promptTokens: p + separate,
    completionTokens: c,
    ...(read ? { cachedReadTokens: read } : {}),
    ...(write ? { cachedWriteTokens: write } : {}),
    ...(reasoning ? { reasoningTokens: reasoning } : {}),
  };
}

/** Length in bytes of the JSON string whose content starts at `start` (just after the opening quote). */
function jsonStringLength(buf: Buffer, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const c = buf[i];
    if (c === 0x5c) i += 2;
    else if (c === 0x22) return i - start;
    else i++;
  }
  return end - start;
}

const CR = 0x0d;
const TAB = 0x09;
const SPACE = 0x20;
const QUOTE = 0x22;
const COLON = 0x3a;
const LBRACE = 0x7b;

/**
 * Key search in a data line: every key we look for (`"usage"`, `content` — which also matches
 * `reasoning_content` —, `"arguments"`) ends in `":`, so a Horspool scan over the last KEY_WINDOW
 * bytes of those keys skips most bytes of a chunk without looking at them (about 1 in 7 bytes is
 * read on OpenAI chunks), stopping only at colons to check the key before it.
 */
const KEY_WINDOW = 8;
const KEY_SHIFT = ((): Uint8Array => {
  const shift = new Uint8Array(256).fill(KEY_WINDOW);
  for (const tail of ['"usage":', 'ontent":', 'uments":']) {
    for (let k = 0; k < KEY_WINDOW - 1; k++) {
      const b = tail.charCodeAt(k);
      shift[b] = Math.min(shift[b] as number, KEY_WINDOW - 1 - k);
    }
  }
  shift[COLON] = 0; // a colon ends the window: check the key before it
  return shift;
})();

const KEY_OTHER = 0;
/** Completion text follows (a `content` or `arguments` string). */
const KEY_TEXT = 1;
const KEY_USAGE = 2;

/** `content` (at the end of the key), `arguments` and `usage`, as the bytes before `":` at `colon`. */
function keyBefore(b: Buffer, colon: number): number {
  const q = colon - 1; // closing quote of the key
  if (b[q] !== QUOTE) return KEY_OTHER;
  const last = b[q - 1];
  if (last === 0x74) {
    // ...content"
    return b[q - 2] === 0x6e && b[q - 3] === 0x65 && b[q - 4] === 0x74 && b[q - 5] === 0x6e && b[q - 6] === 0x6f && b[q - 7] === 0x63 ? KEY_TEXT : KEY_OTHER;
  }
  if (last === 0x73) {
    // "arguments"
    return b[q - 2] === 0x74 && b[q - 3] === 0x6e && b[q - 4] === 0x65 && b[q - 5] === 0x6d && b[q - 6] === 0x75 && b[q - 7] === 0x67 && b[q - 8] === 0x72 && b[q - 9] === 0x61 && b[q - 10] === QUOTE
      ? KEY_TEXT
      : KEY_OTHER;
  }
  if (last === 0x65) {
    // "usage"
    return b[q - 2] === 0x67 && b[q - 3] === 0x61 && b[q - 4] === 0x73 && b[q - 5] === 0x75 && b[q - 6] === QUOTE ? KEY_USAGE : KEY_OTHER;
  }
  return KEY_OTHER;
}

/** Completion tokens counted for one streamed text of `len` JSON-escaped bytes. */
function textTokens(len: number): number {
  return len > 0 ? 1 + (len >> 4) : 0;
}

/** Whether [ls, le) of `b` is a `data:` line; returns the value's first byte, or -1. */
function dataValue(b: Buffer, ls: number, le: number): number {
  if (le - ls < 5 || b[ls] !== 0x64 || b[ls + 1] !== 0x61 || b[ls + 2] !== 0x74 || b[ls + 3] !== 0x61 || b[ls + 4] !== COLON) return -1;
  return le > ls + 5 && b[ls + 5] === SPACE ? ls + 6 : ls + 5;
}

/**
 * The data of the event in [start, end) of `b` (its `data:` lines joined with `\n`, as SSE
 * defines). Only for the one event per stream that is parsed.
 */
function eventData(b: Buffer, start: number, end: number): string {
  let joined: string | undefined;
  let p = start;
  while (p < end) {
    let nl = b.indexOf(NL, p);
    if (nl < 0 || nl > end) nl = end;
    const le = nl > p && b[nl - 1] === CR ? nl - 1 : nl;
    const v = dataValue(b, p, le);
    if (v >= 0) {
      const line = b.toString('utf8', v, le);
      joined = joined === undefined ? line : `${joined}\n${line}`;
    }
    p = nl + 1;
  }
  return joined ?? '';
}

/** Result of parsing a usage candidate event. */
const NOT_USAGE = 0;
const WITH_USAGE = 1;
const USAGE_ONLY = 2;

/**
 * Usage meter of one streamed response. Reads OpenAI-style SSE: `data:` lines (one per event
 * normally; several are joined as SSE defines), `\n` or `\r\n` line endings, a space after `data:`
 * or none, `data: [DONE]` at the end.
 *
 * Work per chunk: one native `indexOf('\n')` per line (each byte searched once: a carried incomplete
 * line is not searched again) and one key scan per complete data line; the usage event (a top-level
 * `"usage":{`) is the only one parsed.
 *
 * Counting: every JSON string value of a `content` key (including `reasoning_content`) or of an
 * `arguments` key (tool calls) counts 1 token, +1 per 16 bytes beyond, in every choice and tool call
 * of an event. It is the estimate for mid-stream reservation checks and for streams that end without
 * usage; the upstream's `usage` replaces it when it arrives.
 */
export class SseUsageMeter {
  /** Usage reported by the upstream, once seen. */
  usage: TokenUsage | undefined;
  /** Completion tokens counted from streamed text (see the class comment). */
  counted = 0;
  /** `data: [DONE]` seen. */
  done = false;
  /** Bytes of an incomplete event carried to the next chunk. */
  private carry: Buffer | undefined;
  /** Start of the carried event's incomplete line, within `carry`. */
  private carryLine = 0;
  /** Inside an over-long event: pass it through unparsed until its end. */
  private skipping = false;
  // The event being read (its complete lines so far).
  private eventTokens = 0;
  private usageCandidate = false;
  private eventDone = false;

  /** @param strip remove the usage-only event (the client did not ask for usage). */
  constructor(readonly strip: boolean) {}

  /**
   * Feeds one chunk. Returns the bytes to send instead of it, or undefined when the chunk goes out
   * unchanged (always the case unless `strip`).
   */
  push(chunk: Buffer, end: boolean): Buffer | undefined {
    const carry = this.carry;
    const data = carry ? Buffer.concat([carry, chunk]) : chunk;
    this.carry = undefined;
    const n = data.length;
    let out: Buffer[] | undefined;
    let emitted = 0; // bytes of `data` already accounted for in `out`
    let eventStart = 0;
    let lineStart = carry ? this.carryLine : 0;
    let from = carry ? carry.length : 0; // the carried bytes hold no line end
    for (;;) {
      const nl = data.indexOf(NL, from);
      if (nl < 0) break;
      const ls = lineStart;
      lineStart = from = nl + 1;
      const le = nl > ls && data[nl - 1] === CR ? nl - 1 : nl;
      if (le !== ls) {
        if (!this.skipping) this.line(data, ls, le);
        continue; // a field line: the event goes on
      }
      if (ls === eventStart && !this.skipping) {
        eventStart = from; // a stray blank line, no event
        continue;
      }
      // [eventStart, from) is one complete event, its blank line included.
      if (this.endEvent(data, eventStart, ls) && this.strip) {
        out ??= [];
        if (eventStart > emitted) out.push(data.subarray(emitted, eventStart));
        emitted = from;
      }
      eventStart = from;
    }
    if (end) {
      // A last event without its blank line: read what we have, never remove it.
      if (lineStart < n && !this.skipping) this.line(data, lineStart, data[n - 1] === CR ? n - 1 : n);
      if (eventStart < n || this.skipping) this.endEvent(data, eventStart, n);
    } else if (eventStart < n) {
      if (this.skipping || n - eventStart > MAX_EVENT_BYTES) {
        this.skipping = true; // too long to hold: let it through unparsed
      } else {
        this.carry = Buffer.from(data.subarray(eventStart));
        this.carryLine = lineStart - eventStart;
      }
    }
    if (!this.strip) return undefined;
    const keepEnd = this.carry ? eventStart : n;
    if (!out && !carry && keepEnd === n) return undefined;
    out ??= [];
    if (keepEnd > emitted) out.push(data.subarray(emitted, keepEnd));
    return out.length === 1 ? (out[0] as Buffer) : out.length === 0 ? EMPTY : Buffer.concat(out);
  }

  /** One complete line [ls, le) of the event (its line end excluded). */
  private line(b: Buffer, ls: number, le: number): void {
    const v = dataValue(b, ls, le);
    if (v < 0) return; // comment, event:, id:, retry:
    if (le - v === DONE.length && b.compare(DONE, 0, DONE.length, v, le) === 0) {
      this.eventDone = true;
      return;
    }
    let i = v + KEY_WINDOW - 1;
    while (i < le) {
      const shift = KEY_SHIFT[b[i] as number] as number;
      if (shift !== 0) {
        i += shift;
        continue;
      }
      const key = keyBefore(b, i);
      if (key !== KEY_OTHER) {
        let j = i + 1;
        while (j < le && (b[j] === SPACE || b[j] === TAB)) j++;
        if (key === KEY_USAGE) {
          if (j < le && b[j] === LBRACE) this.usageCandidate = true;
        } else if (j < le && b[j] === QUOTE) {
          const len = jsonStringLength(b, j + 1, le);
          this.eventTokens += textTokens(len);
          i = j + 1 + len + KEY_WINDOW; // no key ends inside the text or its closing quote
          continue;
        }
      }
      i += KEY_WINDOW; // a colon is the last byte of every key window: none ends before i + KEY_WINDOW
    }
  }

  /**
   * The event [start, end) of `data` (its blank line excluded) is complete: takes its usage, its
   * counted text or its `[DONE]`. Returns true when it is the usage-only event (`choices: []`).
   */
  private endEvent(data: Buffer, start: number, end: number): boolean {
    let found = NOT_USAGE;
    if (this.usageCandidate && !this.skipping) found = this.readUsageEvent(eventData(data, start, end));
    if (found === NOT_USAGE) this.counted += this.eventTokens;
    if (this.eventDone) this.done = true;
    this.eventTokens = 0;
    this.usageCandidate = false;
    this.eventDone = false;
    this.skipping = false;
    return found === USAGE_ONLY;
  }

  private readUsageEvent(json: string): number {
    try {
      const event = JSON.parse(json) as Record<string, unknown>;
      const usage = readUsage(event['usage']);
      if (!usage) return NOT_USAGE;
      this.usage = usage;
      const choices = event['choices'];
      return Array.isArray(choices) && choices.length === 0 ? USAGE_ONLY : WITH_USAGE;
    } catch {
      return NOT_USAGE; // not JSON: not a usage event
    }
  }
}

/** Finds the top-level `usage` of a JSON response from its last TAIL_BYTES. */
export class JsonUsageTail {
  private tail: Buffer = EMPTY;

  push(chunk: Buffer): void {
    if (chunk.length >= TAIL_BYTES) {
      this.tail = Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES));
      return;
    }
    const joined = this.tail.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.tail, chunk]);
    this.tail = joined.length > TAIL_BYTES ? joined.subarray(joined.length - TAIL_BYTES) : joined;
  }

  /** The usage object, if the body ended with one. */
  usage(): TokenUsage | undefined {
    const at = this.tail.lastIndexOf(USAGE);
    if (at < 0) return undefined;
    let i = at + USAGE.length;
    while (this.tail[i] === 0x20 || this.tail[i] === NL || this.tail[i] === CR) i++;
    if (this.tail[i] !== 0x7b) return undefined;
    let depth = 0;
    for (let j = i; j < this.tail.length; j++) {
      const c = this.tail[j];
      if (c === 0x22) {
        j += jsonStringLength(this.tail, j + 1, this.tail.length) + 1;
        continue;
      }
      if (c === 0x7b) depth++;
      else if (c === 0x7d && --depth === 0) {
        try {
          return readUsage(JSON.parse(this.tail.toString('utf8', i, j + 1)));
        } catch {
          return undefined;
        }
      }
    }
    return undefined;
  }
}
