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
