/**
 * A minimal protobuf wire format reader and writer for the ext_proc hot path (proto3, no groups).
 * Only what the static codecs in this folder need: varints up to 32 bits (tags, lengths, enums,
 * uint32), bools, length-delimited fields (strings, bytes, nested messages), doubles, and skipping
 * unknown fields of every proto3 wire type. Every read is bounds-checked: a truncated or corrupt
 * buffer throws a CodecError, never loops or returns garbage.
 */

/** Wire types of proto3 (3 and 4, groups, do not exist in proto3 and are rejected). */
export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;
export const FIXED32 = 5;

/** Malformed protobuf input, or a message the encoder cannot represent. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}

const EMPTY: Buffer = Buffer.alloc(0);

/** Node's Buffer has had these since v0.x (Buffer#toString calls them); @types/node omits them. */
interface SliceMethods {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}
const hasSlices = typeof (Buffer.prototype as Partial<SliceMethods>).utf8Slice === 'function' && typeof (Buffer.prototype as Partial<SliceMethods>).latin1Slice === 'function';

/** UTF-8 text of buf[start, end) without Buffer#toString's argument handling. */
export function utf8Text(buf: Buffer, start: number, end: number): string {
  return hasSlices ? (buf as Buffer & SliceMethods).utf8Slice(start, end) : buf.toString('utf8', start, end);
}

/** Latin-1 text of buf[start, end) (one byte per character). */
export function latin1Text(buf: Buffer, start: number, end: number): string {
  return hasSlices ? (buf as Buffer & SliceMethods).latin1Slice(start, end) : buf.toString('latin1', start, end);
}

/**
 * Reads one protobuf message (or a nested message between `pos` and `end`). Holds a cursor into
 * the caller's buffer; never copies except where a method says so.
 */
export class WireReader {
  pos: number;
  end: number;

  constructor(
    readonly buf: Buffer,
    pos = 0,
    end = buf.length,
  ) {
    this.pos = pos;
    this.end = end;
  }

  /** Reads a varint that must fit in 32 bits (tags, lengths, enums, uint32), as an unsigned number. */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    const end = this.end;
    if (pos < end) {
      // Fast path: tags and most lengths fit in one or two bytes.
      const b0 = buf[pos] as number;
      if (b0 < 0x80) {
        this.pos = pos + 1;
        return b0;
      }
      if (pos + 1 < end) {
        const b1 = buf[pos + 1] as number;
        if (b1 < 0x80) {
          this.pos = pos + 2;
          return (b0 & 0x7f) | (b1 << 7);
        }
      }
    }
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= end) throw new CodecError('truncated varint');
      const byte = buf[pos++] as number;
      // The 5th byte carries bits 28..34; bits above 31 must be zero for a 32-bit value.
      if (shift === 28 && byte > 0x0f) throw new CodecError('varint does not fit in 32 bits');
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) {
        this.pos = pos;
        return result;
      }
    }
    throw new CodecError('varint does not fit in 32 bits');
  }

  /** Reads a varint of up to 64 bits as a bool (any non-zero value is true). */
  bool(): boolean {
    const buf = this.buf;
    let pos = this.pos;
    const end = this.end;
    let nonZero = false;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new CodecError('truncated varint');
      const byte = buf[pos++] as number;
      if ((byte & 0x7f) !== 0) nonZero = true;
      if (byte < 0x80) {
        this.pos = pos;
        return nonZero;
      }
    }
    throw new CodecError('varint longer than 10 bytes');
  }

  /** Reads a length prefix and returns the end offset of the field's payload (bounds-checked). */
  lengthEnd(): number {
    const len = this.uint32();
    const end = this.pos + len;
    if (end > this.end) throw new CodecError(`length-delimited field of ${len} bytes runs past the end of its message`);
    return end;
  }

  /**
   * A bytes field as a view of the input buffer (no copy). Only safe when the input buffer is never
   * reused or written afterwards; see decode-request.ts for why that holds for grpc-js.
   */
  bytesView(): Buffer {
    const end = this.lengthEnd();
    const start = this.pos;
    this.pos = end;
    return start === end ? EMPTY : this.buf.subarray(start, end);
  }

  /** A string field, decoded as UTF-8 (invalid sequences become U+FFFD, like protobufjs). */
  string(): string {
    const end = this.lengthEnd();
    const start = this.pos;
    this.pos = end;
    return start === end ? '' : utf8Text(this.buf, start, end);
  }

  /** Skips the payload of a field whose tag has just been read. */
  skipField(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.bool();
        return;
      case FIXED64:
        this.advance(8);
        return;
      case LEN:
        this.pos = this.lengthEnd();
        return;
      case FIXED32:
        this.advance(4);
        return;
      default:
        throw new CodecError(`invalid wire type ${wireType} (proto3 has no groups)`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new CodecError('truncated fixed-width field');
    this.pos += n;
  }
}

/**
 * Reads the next tag; returns it (field number << 3 | wire type). Field number 0 is invalid.
 * Callers loop `while (r.pos < r.end)`.
 */
export function readTag(r: WireReader): number {
  const tag = r.uint32();
  if (tag >>> 3 === 0) throw new CodecError('field number 0 is invalid');
  return tag;
}

/** Throws unless a known field arrived with the wire type its declaration implies. */
export function expectWireType(tag: number, wireType: number, field: string): void {
  if ((tag & 7) !== wireType) throw new CodecError(`field ${field} has wire type ${tag & 7}, expected ${wireType}`);
}

/** The tag of field `field` with wire type `wireType`, as one number (all our tags fit in one byte). */
export function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

/** Bytes a 32-bit unsigned varint takes. */
export function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

/** Bytes of `s` in UTF-8, as Buffer.write encodes it (a lone surrogate becomes 3 bytes of U+FFFD). */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > 64) return Buffer.byteLength(s, 'utf8');
  let len = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) len += 1;
    else if (c < 0x800) len += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      len += 4;
      i++;
    } else len += 3;
  }
  return len;
}

/** Writes into a buffer allocated at the exact final size (sizes are computed first). */
export class WireWriter {
  buf: Buffer = EMPTY;
  pos = 0;

  reset(size: number): void {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = 0;
  }

  uint32(value: number): void {
    const buf = this.buf;
    let v = value;
    while (v > 0x7f) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v = v >>> 7;
    }
    buf[this.pos++] = v;
  }

  double(value: number): void {
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** Writes a string of known UTF-8 length `len` (without its length prefix). */
  string(s: string, len: number): void {
    if (len === s.length && len < 32) {
      // ASCII: a byte loop beats a call into C++ for short strings (header names, enum-ish values).
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < len; i++) buf[pos++] = s.charCodeAt(i);
      this.pos = pos;
      return;
    }
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    if (n < 64) {
      // Header values: a byte loop beats TypedArray#set's setup cost for short copies.
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < n; i++) buf[pos++] = b[i] as number;
      this.pos = pos;
      return;
    }
    this.buf.set(b, this.pos);
    this.pos += n;
  }

  /** Returns the finished buffer; throws if the sizing pass and the write pass disagree (a codec bug). */
  finish(): Buffer {
    if (this.pos !== this.buf.length) throw new CodecError(`encoder size mismatch: wrote ${this.pos} of ${this.buf.length} bytes`);
    const out = this.buf;
    this.buf = EMPTY;
    return out;
  }
}
