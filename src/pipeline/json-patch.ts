/**
 * Byte-level helpers for a JSON request body that has already been parsed once (so it is valid):
 * find a top-level string field's value and splice a replacement in, instead of re-serialising the
 * whole (possibly multi-MiB) body.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

/** Byte range [start, end) of the last top-level string value of `key`, quotes included. */
export function findTopLevelString(body: Buffer, key: string): { start: number; end: number } | undefined {
  const keyBytes = Buffer.from(JSON.stringify(key));
  let depth = 0;
  let found: { start: number; end: number } | undefined;
  let i = 0;
  const n = body.length;
  while (i < n) {
    const c = body[i] as number;
    if (c === QUOTE) {
      const end = stringEnd(body, i);
      if (depth === 1 && end - i === keyBytes.length && body.compare(keyBytes, 0, keyBytes.length, i, end) === 0) {
        let j = skipSpace(body, end);
        if (body[j] === COLON) {
          j = skipSpace(body, j + 1);
          if (body[j] === QUOTE) {
            const valueEnd = stringEnd(body, j);
            found = { start: j, end: valueEnd };
            i = valueEnd;
            continue;
          }
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

/** Index just past the closing quote of the string starting at `start`. */
function stringEnd(body: Buffer, start: number): number {
  let i = start + 1;
  while (i < body.length) {
    const c = body[i];
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) return i + 1;
    else i++;
  }
  return body.length;
}

function skipSpace(body: Buffer, i: number): number {
  while (i < body.length) {
    const c = body[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** Returns a body with the top-level `key` string set to `value`; re-serialises only as a fallback. */
export function replaceTopLevelString(body: Buffer, parsed: Record<string, unknown>, key: string, value: string): Buffer {
  const range = findTopLevelString(body, key);
  if (!range) return Buffer.from(JSON.stringify({ ...parsed, [key]: value }));
  return Buffer.concat([body.subarray(0, range.start), Buffer.from(JSON.stringify(value)), body.subarray(range.end)]);
}
