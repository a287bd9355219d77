/**
 * Splits a Kubernetes LIST response body (`{"apiVersion":…,"items":[{…},{…}],"kind":…,"metadata":{…}}`)
 * into its items while the bytes arrive: each item is parsed and handed over as soon as its closing
 * brace is seen, so a list of 100k objects (one ~80 MB body when the API server answers from its
 * watch cache, which ignores `limit`) never exists at once as one string or one parsed array, and
 * decoding overlaps the transfer. Everything outside `items` (apiVersion, kind, metadata with
 * resourceVersion and continue) is kept and parsed at the end.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

export class ListSplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private inItems = false;
  /** Bytes of the top-level object outside `items` (which is kept as `[]`). */
  private readonly rest: Buffer[] = [];
  /** Bytes of an item that started in an earlier chunk. */
  private pending: Buffer[] = [];
  private itemOpen = false;
  items = 0;

  constructor(private readonly onItem: (item: unknown) => void) {}

  /** Feeds the next chunk of the body; calls onItem for every item completed in it. */
  push(chunk: Buffer): void {
    let restFrom = this.inItems ? -1 : 0;
    let itemFrom = this.itemOpen ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        continue;
      }
      if (c === QUOTE) {
        this.inString = true;
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (this.inItems && this.depth === 2 && c === OPEN_OBJECT) {
          itemFrom = i;
          this.itemOpen = true;
        } else if (!this.inItems && this.depth === 1 && c === OPEN_ARRAY && this.restEndsWithItemsKey(chunk.subarray(restFrom, i))) {
          this.rest.push(Buffer.from(chunk.subarray(restFrom, i + 1)));
          restFrom = -1;
          this.inItems = true;
        }
        this.depth += 1;
      } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        this.depth -= 1;
        if (this.inItems && this.depth === 2 && c === CLOSE_OBJECT && this.itemOpen) {
          this.emit(chunk.subarray(itemFrom, i + 1));
          itemFrom = -1;
          this.itemOpen = false;
        } else if (this.inItems && this.depth === 1 && c === CLOSE_ARRAY) {
          this.inItems = false;
          restFrom = i;
        }
      }
    }
    if (restFrom >= 0) this.rest.push(Buffer.from(chunk.subarray(restFrom)));
    // Copy: the caller may reuse the chunk's memory.
    if (this.itemOpen && itemFrom >= 0) this.pending.push(Buffer.from(chunk.subarray(itemFrom)));
  }

  /** The body outside `items`, parsed (`items` is `[]`); throws if the body was cut short. */
  end(): Record<string, unknown> {
    if (this.depth !== 0 || this.inString || this.itemOpen) throw new Error('list response ended in the middle of the JSON body');
    const text = Buffer.concat(this.rest).toString('utf8');
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('list response is not a JSON object');
    return parsed as Record<string, unknown>;
  }

  private emit(last: Buffer): void {
    const bytes = this.pending.length > 0 ? Buffer.concat([...this.pending, last]) : last;
    this.pending = [];
    this.items += 1;
    this.onItem(JSON.parse(withoutManagedFields(bytes).toString('utf8')));
  }

  /** True when the top-level bytes so far end with the `"items":` key (whitespace allowed). */
  private restEndsWithItemsKey(tail: Buffer): boolean {
    const parts = [...this.rest, tail];
    let text = '';
    for (let p = parts.length - 1; p >= 0 && text.length < 32; p--) text = (parts[p] as Buffer).toString('latin1') + text;
    return /"items"\s*:\s*$/.test(text);
  }
}

const MANAGED_FIELDS = Buffer.from('"managedFields":');

/**
 * The item's bytes without `metadata.managedFields` (often the larger part of a small object, and
 * a dozen objects to allocate), cut before parsing. The pattern cannot occur inside a JSON string
 * (its quotes would be escaped), and the CRDs are structural, so it only matches the real field.
 */
export function withoutManagedFields(item: Buffer): Buffer {
  const at = item.indexOf(MANAGED_FIELDS);
  if (at < 0) return item;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let end = -1;
  let start = at + MANAGED_FIELDS.length;
  while (start < item.length && isSpace(item[start] as number)) start++;
  if (item[start] !== OPEN_ARRAY) return item;
  for (let i = start; i < item.length; i++) {
    const c = item[i] as number;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === BACKSLASH) escaped = true;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) depth += 1;
    else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth -= 1;
      if (depth === 0) {
        end = i + 1;
        break;
      }
    }
  }
  if (end < 0) return item;
  // Remove the comma that separates it from its neighbour: the one after, or else the one before.
  let from = at;
  let to = end;
  while (to < item.length && isSpace(item[to] as number)) to++;
  if (item[to] === COMMA) to++;
  else {
    let b = at - 1;
    while (b >= 0 && isSpace(item[b] as number)) b--;
    if (item[b] === COMMA) from = b;
  }
  return Buffer.concat([item.subarray(0, from), item.subarray(to)]);
}

const COMMA = 0x2c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
