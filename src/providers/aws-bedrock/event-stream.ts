/**
 * AWS event-stream frames out of network chunks, for every Bedrock stream the gateway reads
 * (ConverseStream, InvokeModelWithResponseStream): a frame split anywhere across chunks is
 * reassembled, holding at most one incomplete frame of MAX_FRAME_BYTES, and decoded with
 * @smithy/eventstream-codec. What each frame means is the caller's business.
 */
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

/** Largest event-stream frame accepted (AWS caps frames at 16 MiB; Bedrock events are small). */
export const MAX_FRAME_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
const codec = new EventStreamCodec(toUtf8, fromUtf8);

export type EventStreamMessage = ReturnType<EventStreamCodec['decode']>;

/** Why reading stopped: a length prefix out of bounds, or a frame the codec rejects (bad CRC...). */
export type FrameProblem = 'unreadable' | 'corrupt';

export class EventStreamFrames {
  private pending: Buffer = EMPTY;

  /**
   * Hands each whole frame received so far, decoded, to `onMessage` in order, and keeps the
   * incomplete rest for the next chunk. Stops at the first problem (returned; the rest is dropped)
   * or when `onMessage` returns false (the caller wants no more).
   */
  push(chunk: Buffer, onMessage: (message: EventStreamMessage) => boolean): FrameProblem | undefined {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = EMPTY;
    while (buf.length >= 4) {
      const total = buf.readUInt32BE(0);
      if (total < 16 || total > MAX_FRAME_BYTES) return 'unreadable';
      if (buf.length < total) break;
      let message: EventStreamMessage;
      try {
        message = codec.decode(buf.subarray(0, total));
      } catch {
        return 'corrupt';
      }
      buf = buf.subarray(total);
      if (!onMessage(message)) return undefined;
    }
    // Copied: the chunk's memory belongs to the caller.
    if (buf.length > 0) this.pending = Buffer.from(buf);
    return undefined;
  }
}
