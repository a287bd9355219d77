/**
 * Cooperative time slicing for long config work on the request thread: a loop calls `tick()` per
 * item and, when it returns true, awaits `pause()`, which lets pending I/O (requests) run before the
 * loop continues. No slice runs longer than the budget (plus one item), so a rebuild of 100,000 keys
 * delays no request by more than a few milliseconds.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

export class Slicer {
  private sliceStart = performance.now();
  private count = 0;
  /** Pauses so far (for logs and tests). */
  pauses = 0;

  /** `budgetMs` of 0 never pauses (tests, and work done before the gateway is ready). */
  constructor(private readonly budgetMs = 4) {}

  /** True when the current slice is used up (checked every 32 items: reading the clock costs too). */
  tick(): boolean {
    if (this.budgetMs <= 0 || (++this.count & 31) !== 0) return false;
    return performance.now() - this.sliceStart >= this.budgetMs;
  }

  /** Yields to the event loop, then starts a new slice. */
  async pause(): Promise<void> {
    this.pauses += 1;
    await nextTurn();
    this.sliceStart = performance.now();
  }

  /** Starts a new slice now (after an await that may already have yielded). */
  restart(): void {
    this.sliceStart = performance.now();
  }
}

/** A slicer that never pauses. */
export const NO_SLICING = new Slicer(0);
