/**
 * An immutable string-keyed map that shares structure between versions: entries live in a fixed
 * number of shards, and an update copies only the shards it touches. Replacing one key of a
 * 100,000-entry map copies about 400 entries and an array of 256 shard pointers instead of the
 * whole map, so a snapshot can be replaced on every change without a stall, while every snapshot
 * a request holds stays exactly as it was.
 */

import type { Slicer } from './slicer.js';

const SHARD_BITS = 8;
const SHARDS = 1 << SHARD_BITS;
const EMPTY_SHARD: ReadonlyMap<string, never> = new Map<string, never>();

/** FNV-1a over at most the last 16 characters: keys are hashes or `namespace/name`, which vary at the end. */
function shardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = Math.max(0, key.length - 16); i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h ^ (h >>> 16)) & (SHARDS - 1);
}

export class PersistentMap<V> implements ReadonlyMap<string, V> {
  private constructor(
    private readonly shards: readonly ReadonlyMap<string, V>[],
    readonly size: number,
  ) {}

  static empty<V>(): PersistentMap<V> {
    return new PersistentMap<V>(new Array<ReadonlyMap<string, V>>(SHARDS).fill(EMPTY_SHARD), 0);
  }

  static from<V>(entries: Iterable<readonly [string, V]>): PersistentMap<V> {
    const changes = new Map<string, V>();
    for (const [k, v] of entries) changes.set(k, v);
    return PersistentMap.empty<V>().update(changes);
  }

  get(key: string): V | undefined {
    return (this.shards[shardOf(key)] as ReadonlyMap<string, V>).get(key);
  }

  has(key: string): boolean {
    return (this.shards[shardOf(key)] as ReadonlyMap<string, V>).has(key);
  }

  /**
   * A new map with `changes` applied (undefined deletes); this one is untouched. Costs the size of
   * the touched shards, not of the map. Returns `this` when nothing changed.
   */
  update(changes: ReadonlyMap<string, V | undefined>): PersistentMap<V> {
    if (changes.size === 0) return this;
    const byShard = new Map<number, [string, V | undefined][]>();
    for (const [k, v] of changes) {
      const s = shardOf(k);
      let list = byShard.get(s);
      if (!list) byShard.set(s, (list = []));
      list.push([k, v]);
    }
    const shards = this.shards.slice();
    let size = this.size;
    for (const [s, list] of byShard) {
      const old = shards[s] as ReadonlyMap<string, V>;
      const next = new Map<string, V>(old);
      for (const [k, v] of list) {
        if (v === undefined) next.delete(k);
        else next.set(k, v);
      }
      size += next.size - old.size;
      shards[s] = next.size === 0 ? (EMPTY_SHARD as ReadonlyMap<string, V>) : next;
    }
    return new PersistentMap(shards, size);
  }

  /** Like update, pausing between shards when the slicer says so (large change sets). */
  async updateSliced(changes: ReadonlyMap<string, V | undefined>, slicer: Slicer): Promise<PersistentMap<V>> {
    if (changes.size < 4096) return this.update(changes);
    const byShard = new Map<number, Map<string, V | undefined>>();
    for (const [k, v] of changes) {
      const s = shardOf(k);
      let part = byShard.get(s);
      if (!part) byShard.set(s, (part = new Map()));
      part.set(k, v);
      if (slicer.tick()) await slicer.pause();
    }
    let result: PersistentMap<V> = this;
    for (const part of byShard.values()) {
      // Each step copies one shard and the shard array: cheap, and every step is a valid map.
      result = result.update(part);
      if (slicer.tick()) await slicer.pause();
    }
    return result;
  }

  *entries(): MapIterator<[string, V]> {
    for (const shard of this.shards) yield* shard.entries();
  }

  *keys(): MapIterator<string> {
    for (const shard of this.shards) yield* shard.keys();
  }

  *values(): MapIterator<V> {
    for (const shard of this.shards) yield* shard.values();
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }
}
