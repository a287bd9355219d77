/**
 * Holds the current Snapshot and swaps it whole. A request takes `current()` once and uses only
 * that object, so a swap never changes config under a request in flight.
 */
import type { Snapshot } from './snapshot.js';

export type SnapshotListener = (snapshot: Snapshot) => void;

export class ConfigStore {
  private snapshot: Snapshot | undefined;
  private readonly listeners = new Set<SnapshotListener>();

  /** The snapshot in force, or undefined before the first successful load. */
  current(): Snapshot | undefined {
    return this.snapshot;
  }

  /** True once a first snapshot has been installed (readiness). */
  get ready(): boolean {
    return this.snapshot !== undefined;
  }

  /** Installs a new snapshot atomically. */
  swap(next: Snapshot): void {
    this.snapshot = next;
    for (const listener of this.listeners) listener(next);
  }

  onSwap(listener: SnapshotListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
