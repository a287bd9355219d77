/**
 * Byte-level helpers for a JSON request body that has already been parsed once (so it is valid):
 * find a top-level field's value and splice a replacement in, instead of re-serialising the whole
 * (possibly multi-MiB) body.
 *
 * Safety rule: the bytes sent upstream must mean exactly what the gateway decided. JSON.parse keeps
 * the *last* duplicate key, other parsers keep the first or refuse; a key can also be spelled with
 * escapes (`"mod\u0065l"`). So the splice is used only when the key occurs exactly once at the top
 * level with a string value; anything else is re-serialised from the parsed object (one key).
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

/** Byte range [start, end) of a value, quotes included for strings. */
export interface ValueRange {
  readonly start: number;
  readonly end: number;
  /** True when the value is a JSON string. */
  readonly isString: boolean;
  /** Index of the key's opening quote (the member starts there). */
  readonly keyStart: number;
}

/**
 * Every top-level occurrence of `key` (compared after JSON unescaping), in body order.
 * Non-string values get a range covering only their first byte; callers only splice strings.
 */
export function findTopLevelValues(body: Buffer, key: string): ValueRange[] {
  const keyBytes = Buffer.from(JSON.stringify(key));
  const found: ValueRange[] = [];
  let depth = 0;
  let i = 0;
  const n = body.length;
  while (i < n) {
    const c = body[i] as number;
    if (c === QUOTE) {
      const end = stringEnd(body, i);
      if (depth === 1) {
        const j = skipSpace(body, end);
        if (body[j] === COLON && keyEquals(body, i, end, keyBytes, key)) {
          const v = skipSpace(body, j + 1);
          if (body[v] === QUOTE) {
            const valueEnd = stringEnd(body, v);
            found.push({ start: v, end: valueEnd, isString: true, keyStart: i });
            i = valueEnd;
            continue;
          }
          found.push({ start: v, end: v + 1, isString: false, keyStart: i });
          i = v;
          continue;
        }
      }
      i = end;
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    i++;
  }
  return found;
}

/** True when the JSON string at [start, end) decodes to `key`. Escaped spellings are decoded. */
function keyEquals(body: Buffer, start: number, end: number, keyBytes: Buffer, key: string): boolean {
  if (end - start === keyBytes.length && body.compare(keyBytes, 0, keyBytes.length, start, end) === 0) return true;
  // Only a key containing a backslash can spell `key` differently; decode it (rare, small).
  let escaped = false;
  for (let i = start + 1; i < end - 1; i++) {
    if (body[i] === BACKSLASH) {
      escaped = true;
      break;
    }
  }
  if (!escaped) return false;
  try {
    return JSON.parse(body.toString('utf8', start, end)) === key;
  } catch {
    return false;
  }
}

/** Strings up to this long are scanned byte by byte; beyond it, quote to quote (see stringEnd). */
const SHORT_STRING = 64;

/**
 * Index just past the closing quote of the string starting at `start`. Keys and short values are
 * scanned in JS; a long value (a prompt of several MiB) jumps from quote to quote with the native
 * `indexOf` (memchr), and a quote is the end when an even number of backslashes precedes it. The
 * byte loop alone cost ~5 ms of CPU per MiB of prompt.
 */
export function stringEnd(body: Buffer, start: number): number {
  const n = body.length;
  const shortEnd = Math.min(n, start + SHORT_STRING);
  let i = start + 1;
  while (i < shortEnd) {
    const c = body[i];
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) return i + 1;
    else i++;
  }
  if (i >= n) return n;
  for (;;) {
    const q = body.indexOf(QUOTE, i);
    if (q < 0) return n;
    let b = q - 1;
    while (body[b] === BACKSLASH) b--;
    // q - 1 - b backslashes right before the quote; an odd count escapes it. b >= start always
    // holds: body[start] is the opening quote, not a backslash.
    if ((q - 1 - b) % 2 === 0) return q + 1;
    i = q + 1;
  }
}

function skipSpace(body: Buffer, i: number): number {
  while (i < body.length) {
    const c = body[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/**
 * Returns a body with the top-level `key` set to the string `value`. Splices the bytes when the key
 * occurs exactly once with a string value; otherwise re-serialises `parsed` (the result of parsing
 * `body`), which leaves exactly one `key`.
 */
export function replaceTopLevelString(body: Buffer, parsed: Readonly<Record<string, unknown>>, key: string, value: string): Buffer {
  const ranges = findTopLevelValues(body, key);
  const only = ranges.length === 1 ? ranges[0] : undefined;
  if (!only?.isString) return Buffer.from(JSON.stringify({ ...parsed, [key]: value }));
  return Buffer.concat([body.subarray(0, only.start), Buffer.from(JSON.stringify(value)), body.subarray(only.end)]);
}

/** Top-level edits of a JSON object body: members to drop, members to set (first in the object). */
export interface TopLevelEdits {
  readonly drop: readonly string[];
  /** Set to these values: an existing string member of the key is replaced in place, else the member is added first. */
  readonly set: readonly (readonly [string, unknown])[];
}

/** End of a literal value (true, false, null, a number) starting at `start`. */
function literalEnd(body: Buffer, start: number): number {
  let i = start;
  while (i < body.length) {
    const c = body[i];
    if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) break;
    i++;
  }
  return i;
}

/**
 * Returns `body` (a JSON object, `parsed` is its parse) with top-level members dropped and set,
 * spliced in the bytes (everything else byte for byte) when each key occurs at most once, a dropped
 * value is a string or a literal, and a set key is absent or a string replaced by a string. Anything
 * else is re-serialised from `parsed` (the same safety rule as replaceTopLevelString).
 */
export function editTopLevel(body: Buffer, parsed: Readonly<Record<string, unknown>>, edits: TopLevelEdits): Buffer {
  const cuts: { start: number; end: number; text: string }[] = [];
  const added: string[] = [];
  let removed = 0;
  for (const key of edits.drop) {
    const ranges = findTopLevelValues(body, key);
    if (ranges.length > 1) return reserialise(parsed, edits);
    const r = ranges[0];
    if (!r) continue;
    const c = body[r.start];
    const end = r.isString ? r.end : c === 0x7b || c === 0x5b ? -1 : literalEnd(body, r.start);
    if (end < 0) return reserialise(parsed, edits);
    cuts.push(memberCut(body, r.keyStart, end));
    removed++;
  }
  for (const [key, value] of edits.set) {
    const ranges = findTopLevelValues(body, key);
    if (ranges.length > 1) return reserialise(parsed, edits);
    const r = ranges[0];
    if (!r) {
      added.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
      continue;
    }
    if (!r.isString || typeof value !== 'string') return reserialise(parsed, edits);
    cuts.push({ start: r.start, end: r.end, text: JSON.stringify(value) });
  }
  const open = body.indexOf(0x7b);
  if (open < 0) return reserialise(parsed, edits);
  if (added.length > 0) {
    const rest = Object.keys(parsed).length - removed;
    cuts.push({ start: open + 1, end: open + 1, text: added.join(',') + (rest > 0 ? ',' : '') });
  }
  if (cuts.length === 0) return body;
  // An insertion at the same place as a removal goes first.
  cuts.sort((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 1; i < cuts.length; i++) {
    // Two dropped neighbours may both claim the comma between them: then splice no more.
    if ((cuts[i] as { start: number }).start < (cuts[i - 1] as { end: number }).end) return reserialise(parsed, edits);
  }
  const parts: Buffer[] = [];
  let at = 0;
  for (const cut of cuts) {
    parts.push(body.subarray(at, cut.start));
    if (cut.text !== '') parts.push(Buffer.from(cut.text));
    at = cut.end;
  }
  parts.push(body.subarray(at));
  return Buffer.concat(parts);
}

/** The bytes to cut to remove the member [keyStart, valueEnd) and one comma next to it. */
function memberCut(body: Buffer, keyStart: number, valueEnd: number): { start: number; end: number; text: string } {
  const after = skipSpace(body, valueEnd);
  if (body[after] === 0x2c) return { start: keyStart, end: skipSpace(body, after + 1), text: '' };
  // The last member: the comma before it goes.
  let before = keyStart - 1;
  while (before >= 0 && (body[before] === 0x20 || body[before] === 0x0a || body[before] === 0x0d || body[before] === 0x09)) before--;
  return body[before] === 0x2c ? { start: before, end: valueEnd, text: '' } : { start: keyStart, end: valueEnd, text: '' };
}

function reserialise(parsed: Readonly<Record<string, unknown>>, edits: TopLevelEdits): Buffer {
  const out: Record<string, unknown> = {};
  for (const [k, v] of edits.set) out[k] = v;
  for (const [k, v] of Object.entries(parsed)) if (!edits.drop.includes(k) && !(k in out)) out[k] = v;
  return Buffer.from(JSON.stringify(out));
}
