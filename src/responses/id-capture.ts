/**
 * The id of a Responses API response, read from the first bytes of the provider's answer without
 * parsing the body: the top-level `id` of a JSON response, or `response.id` of a stream's first event
 * (`response.created`). A byte walker over the head of the body (strings skipped, depth tracked):
 * the rest of the body is never looked at, and at most MAX_HEAD_BYTES are held.
 */
import { SseDecoder, type SseSink } from '../providers/sse.js';

/** The head of a body this long without the id: give up (a real answer has it in its first bytes). */
export const MAX_HEAD_BYTES = 64 * 1024;

const INCOMPLETE = Symbol('incomplete');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Index of the closing quote of the string whose content starts at `i`, or -1 when it does not end in range. */
function stringEnd(buf: Buffer, i: number, end: number): number {
  while (i < end) {
    const c = buf[i];
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) return i;
    else i++;
  }
  return -1;
}

function keyEquals(buf: Buffer, start: number, end: number, key: string): boolean {
  if (end - start !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (buf[start + k] !== key.charCodeAt(k)) return false;
  return true;
}

/**
 * The string at `path` (keys from the top-level object down) in the JSON text [start, end) of `buf`.
 * Undefined when the objects on the path end without it (or it is not a string); INCOMPLETE when the
 * text ends first.
 */
export function stringAtPath(buf: Buffer, start: number, end: number, path: readonly string[]): string | undefined | typeof INCOMPLETE {
  const containers: boolean[] = []; // true = object
  let matched = 0;
  let armed = false;
  let expectKey = false;
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (isSpace(c) || c === 0x3a) continue;
    const depth = containers.length;
    if (c === QUOTE) {
      const close = stringEnd(buf, i + 1, end);
      if (close < 0) return INCOMPLETE;
      if (expectKey) {
        expectKey = false;
        armed = depth === matched + 1 && keyEquals(buf, i + 1, close, path[matched] as string);
      } else {
        if (armed && matched === path.length - 1) {
          try {
            return JSON.parse(buf.toString('utf8', i, close + 1)) as string;
          } catch {
            return undefined;
          }
        }
        armed = false;
      }
      i = close;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      if (armed && c === 0x7b && matched < path.length - 1) matched++;
      armed = false;
      containers.push(c === 0x7b);
      expectKey = c === 0x7b;
      continue;
    }
    if (c === 0x7d || c === 0x5d) {
      // The object searched for the next key closed without it: it is not there.
      if (depth === matched + 1) return undefined;
      containers.pop();
      armed = false;
      expectKey = false;
      continue;
    }
    if (c === 0x2c) {
      expectKey = containers[depth - 1] === true;
      armed = false;
      continue;
    }
    armed = false; // a number, true, false or null
  }
  return INCOMPLETE;
}

const RESPONSE_ID_PATH = ['response', 'id'] as const;
const ID_PATH = ['id'] as const;

/**
 * Reads the response id from the body chunks of one answer (push each chunk until `done`).
 * `stream`: the body is an SSE stream whose first event carries the response.
 */
export class ResponseIdCapture implements SseSink {
  /** The id, once found. */
  id: string | undefined;
  /** Found, or given up (not there, or not in the first MAX_HEAD_BYTES). */
  done = false;
  private head: Buffer | undefined;
  private seen = 0;
  private readonly decoder: SseDecoder | undefined;

  constructor(stream: boolean) {
    this.decoder = stream ? new SseDecoder(this) : undefined;
  }

  /** Feeds one chunk; returns the id when this chunk completed it. */
  push(chunk: Buffer): string | undefined {
    if (this.done) return undefined;
    this.seen += chunk.length;
    if (this.decoder) {
      this.decoder.push(chunk);
      if (!this.done && (this.seen > MAX_HEAD_BYTES || this.decoder.overflow)) this.done = true;
      return this.id;
    }
    const buf = this.head ? Buffer.concat([this.head, chunk]) : chunk;
    const found = stringAtPath(buf, 0, buf.length, ID_PATH);
    if (found !== INCOMPLETE) return this.finish(found);
    if (buf.length > MAX_HEAD_BYTES) return this.finish(undefined);
    // Copied: the chunk's memory belongs to the caller.
    this.head = buf === chunk ? Buffer.from(chunk) : buf;
    return undefined;
  }

  /** The first event of the stream (`response.created`): its `response.id`, or nothing. */
  onEvent(_event: string, data: string): void {
    if (this.done) return;
    const buf = Buffer.from(data);
    const found = stringAtPath(buf, 0, buf.length, RESPONSE_ID_PATH);
    this.finish(found === INCOMPLETE ? undefined : found);
  }

  private finish(id: string | undefined): string | undefined {
    this.done = true;
    this.head = undefined;
    this.id = id;
    return id;
  }
}
