/**
 * An incremental Server-Sent Events decoder (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * bytes split anywhere across network chunks in, whole events (`event` name + `data`) out.
 * Parsed by the spec's line rules (field name, colon, optional space), never by string prefixes of
 * whole events. Bounded: it holds at most one incomplete line and one incomplete event, each capped
 * at MAX_SSE_EVENT_BYTES; an event over the cap is an error the caller reports.
 */

/** Receives decoded events. A method, not a closure: translators implement it. */
export interface SseSink {
  onEvent(event: string, data: string): void;
}

export const MAX_SSE_EVENT_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

export class SseDecoder {
  /** Bytes of a line whose end has not arrived yet. */
  private partial: Buffer = EMPTY;
  private event = '';
  private data = '';
  private hasData = false;
  private size = 0;
  /** Set once an event exceeded the cap: everything after is ignored. */
  overflow = false;

  constructor(private readonly sink: SseSink) {}

  /** Decodes one chunk, calling the sink for every event it completes. */
  push(chunk: Buffer): void {
    if (this.overflow) return;
    let buf = chunk;
    if (this.partial.length > 0) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = EMPTY;
    }
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(LF, start);
      if (nl < 0) break;
      const end = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
      this.line(buf, start, end);
      if (this.overflow) return;
      start = nl + 1;
    }
    if (start < buf.length) {
      if (buf.length - start + this.size > MAX_SSE_EVENT_BYTES) {
        this.overflow = true;
        return;
      }
      // Copied: the chunk's memory belongs to the caller.
      this.partial = Buffer.from(buf.subarray(start));
    }
  }

  /** The stream ended: an event without its blank line is dispatched (servers may omit the last one). */
  end(): void {
    if (this.overflow) return;
    if (this.partial.length > 0) {
      const rest = this.partial;
      this.partial = EMPTY;
      this.line(rest, 0, rest[rest.length - 1] === CR ? rest.length - 1 : rest.length);
    }
    this.dispatch();
  }

  private line(buf: Buffer, start: number, end: number): void {
    if (start === end) {
      this.dispatch();
      return;
    }
    if (buf[start] === 0x3a) return; // a comment
    this.size += end - start;
    if (this.size > MAX_SSE_EVENT_BYTES) {
      this.overflow = true;
      return;
    }
    const colon = buf.indexOf(0x3a, start);
    const nameEnd = colon < 0 || colon > end ? end : colon;
    let valueStart = nameEnd === end ? end : nameEnd + 1;
    if (valueStart < end && buf[valueStart] === 0x20) valueStart++;
    const name = buf.toString('latin1', start, nameEnd);
    if (name === 'data') {
      const value = buf.toString('utf8', valueStart, end);
      this.data = this.hasData ? `${this.data}\n${value}` : value;
      this.hasData = true;
    } else if (name === 'event') {
      this.event = buf.toString('utf8', valueStart, end);
    }
    // `id` and `retry` mean nothing to a translator.
  }

  private dispatch(): void {
    const event = this.event;
    const data = this.data;
    const had = this.hasData;
    this.event = '';
    this.data = '';
    this.hasData = false;
    this.size = 0;
    if (had) this.sink.onEvent(event || 'message', data);
  }
}
