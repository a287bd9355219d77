/**
 * Reading `usage` out of upstream responses without buffering them.
 *
 * SseUsageMeter: an incremental SSE parser (events may split anywhere across chunks) that finds the
 * usage event, counts streamed completion text when no usage arrives, and, when the gateway added
 * `stream_options.include_usage` itself, removes the usage-only event from what the client sees.
 * It holds at most one incomplete event (bounded by MAX_EVENT_BYTES); an event longer than that is
 * passed through unparsed. Work per chunk: a few indexOf scans; JSON.parse only for the usage event.
 *
 * JsonUsageTail: for non-streamed JSON, keeps only the last TAIL_BYTES of the body and parses the
 * top-level `usage` object from it at the end (OpenAI-style bodies end with usage).
 */

export interface TokenUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export const MAX_EVENT_BYTES = 64 * 1024;
export const TAIL_BYTES = 16 * 1024;

const NL = 0x0a;
const CR = 0x0d;
const DATA = Buffer.from('data:');
const DONE = Buffer.from('[DONE]');
const USAGE = Buffer.from('"usage":');
const CONTENT = Buffer.from('content":"');
const ARGUMENTS = Buffer.from('"arguments":"');
const EMPTY = Buffer.alloc(0);

function readUsage(value: unknown): TokenUsage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const u = value as Record<string, unknown>;
  const p = u['prompt_tokens'] ?? u['input_tokens'];
  const c = u['completion_tokens'] ?? u['output_tokens'] ?? 0;
  if (typeof p !== 'number' || typeof c !== 'number') return undefined;
  return { promptTokens: p, completionTokens: c };
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

export class SseUsageMeter {
  /** Usage reported by the upstream, once seen. */
  usage: TokenUsage | undefined;
  /** Completion tokens counted from streamed text (1 per content delta, +1 per 16 bytes beyond). */
  counted = 0;
  /** `data: [DONE]` seen. */
  done = false;
  /** Bytes of an incomplete event carried to the next chunk. */
  private carry: Buffer | undefined;
  /** Inside an over-long event: pass it through unparsed until its end. */
  private skipping = false;

  /** @param strip remove the usage-only event (the client did not ask for usage). */
  constructor(readonly strip: boolean) {}

  /**
   * Feeds one chunk. Returns the bytes to send instead of it, or undefined when the chunk goes out
   * unchanged (always the case unless `strip`).
   */
  push(chunk: Buffer, end: boolean): Buffer | undefined {
    const data = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    const hadCarry = this.carry !== undefined;
    this.carry = undefined;
    let out: Buffer[] | undefined;
    let emitted = 0; // bytes of `data` already accounted for in `out`
    let eventStart = 0;
    let pos = 0;
    for (;;) {
      const nl = data.indexOf(NL, pos);
      if (nl < 0) break;
      const lineStart = pos;
      const lineEnd = nl > lineStart && data[nl - 1] === CR ? nl - 1 : nl;
      pos = nl + 1;
      if (lineEnd !== lineStart) continue; // a field line: the event goes on
      if (lineStart === eventStart) {
        eventStart = pos; // a stray blank line, no event
        continue;
      }
      // [eventStart, pos) is one complete event, its blank line included.
      const drop = this.skipping ? false : this.onEvent(data, eventStart, lineStart);
      this.skipping = false;
      if (drop && this.strip) {
        out ??= [];
        if (eventStart > emitted) out.push(data.subarray(emitted, eventStart));
        emitted = pos;
      }
      eventStart = pos;
    }
    if (eventStart < data.length) {
      if (end) {
        // A last event without its blank line: parse what we have.
        if (!this.skipping) this.onEvent(data, eventStart, data.length);
      } else if (data.length - eventStart > MAX_EVENT_BYTES) {
        this.skipping = true; // too long to hold: let it through unparsed
      } else {
        this.carry = Buffer.from(data.subarray(eventStart));
      }
    }
    if (!this.strip) return undefined;
    const keepEnd = this.carry ? eventStart : data.length;
    if (!out && !hadCarry && keepEnd === data.length) return undefined;
    out ??= [];
    if (keepEnd > emitted) out.push(data.subarray(emitted, keepEnd));
    return out.length === 1 ? (out[0] as Buffer) : out.length === 0 ? EMPTY : Buffer.concat(out);
  }

  /** Handles one event's bytes [start, end); returns true when it is the usage-only event. */
  private onEvent(data: Buffer, start: number, end: number): boolean {
    // Find the data line (OpenAI-style streams use one `data:` line per event).
    let p = data.indexOf(DATA, start);
    if (p < 0 || p >= end) return false;
    p += DATA.length;
    if (data[p] === 0x20) p++;
    let lineEnd = data.indexOf(NL, p);
    if (lineEnd < 0 || lineEnd > end) lineEnd = end;
    if (lineEnd > p && data[lineEnd - 1] === CR) lineEnd--;
    if (lineEnd - p === DONE.length && data.compare(DONE, 0, DONE.length, p, lineEnd) === 0) {
      this.done = true;
      return false;
    }
    const u = data.indexOf(USAGE, p);
    if (u >= 0 && u < lineEnd) {
      let v = u + USAGE.length;
      while (data[v] === 0x20) v++;
      if (data[v] === 0x7b) {
        try {
          const event = JSON.parse(data.toString('utf8', p, lineEnd)) as Record<string, unknown>;
          const usage = readUsage(event['usage']);
          if (usage) {
            this.usage = usage;
            const choices = event['choices'];
            return Array.isArray(choices) && choices.length === 0;
          }
        } catch {
          // not JSON: not a usage event
        }
      }
    }
    this.countText(data, p, lineEnd, CONTENT);
    this.countText(data, p, lineEnd, ARGUMENTS);
    return false;
  }

  private countText(data: Buffer, from: number, to: number, marker: Buffer): void {
    const at = data.indexOf(marker, from);
    if (at < 0 || at >= to) return;
    const len = jsonStringLength(data, at + marker.length, to);
    if (len > 0) this.counted += 1 + (len >> 4);
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
