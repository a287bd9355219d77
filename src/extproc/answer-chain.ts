/**
 * Keeps ext_proc answers in the order Envoy's messages arrived, even when some answers are computed
 * asynchronously (Redis, an endpoint picker). Synchronous answers take no promise at all.
 */
export class AnswerChain {
  /** Tail of the chain while an asynchronous step is running. */
  private pending: Promise<void> | undefined;

  /** Runs `step` now if nothing is pending, else after everything queued before it. */
  run(step: () => Promise<void> | undefined): void {
    if (this.pending) {
      this.track(this.pending.then(step));
      return;
    }
    const result = step();
    if (result) this.track(result);
  }

  /** Makes `work` the tail; the chain clears only when its last link settles. */
  private track(work: Promise<void>): void {
    const tail: Promise<void> = work.finally(() => {
      if (this.pending === tail) this.pending = undefined;
    });
    this.pending = tail;
  }
}

/** The side of a gRPC duplex call the responder writes to. */
export interface AnswerSink<R> {
  readonly writable: boolean;
  readonly destroyed: boolean;
  write(answer: R): unknown;
  /** Ends the call with an OK status (grpc-js: `call.end()`). */
  end(): unknown;
}

/**
 * Answers each message of one ext_proc stream in arrival order: `dispatch` computes the answer
 * (synchronously or not); an exception or rejection becomes `failClosed`'s answer.
 */
export class OrderedResponder<M, R> {
  private readonly chain = new AnswerChain();
  /** The next answer written is the last: the call ends right after it. */
  private endAfterNext = false;
  /** The call was ended from our side: later messages are not answered. */
  private ended = false;

  constructor(
    private readonly sink: AnswerSink<R>,
    private readonly dispatch: (msg: M) => R | Promise<R>,
    private readonly failClosed: (err: unknown) => R,
  ) {}

  receive(msg: M): void {
    if (this.ended) return;
    this.chain.run(() => this.answer(msg));
  }

  /**
   * Ends the call (OK status) right after the answer being computed now is written; messages already
   * queued behind it, or arriving later, get no answer. Envoy takes an OK close of the ext_proc stream
   * as "no more processing for this request": body chunks it sent and we did not answer go on to the
   * client unchanged, and so does the rest of the body.
   */
  endAfterThisAnswer(): void {
    this.endAfterNext = true;
  }

  /** Handles one message; returns a promise only when the answer is asynchronous. */
  private answer(msg: M): Promise<void> | undefined {
    if (this.ended) return undefined;
    let answer: R | Promise<R>;
    try {
      answer = this.dispatch(msg);
    } catch (err) {
      answer = this.failClosed(err);
    }
    if (answer instanceof Promise) {
      return answer.then(
        (a) => this.write(a),
        (err: unknown) => this.write(this.failClosed(err)),
      );
    }
    this.write(answer);
    return undefined;
  }

  private write(answer: R): void {
    if (this.ended || !this.sink.writable || this.sink.destroyed) return;
    this.sink.write(answer);
    if (!this.endAfterNext) return;
    this.ended = true;
    this.sink.end();
  }
}
