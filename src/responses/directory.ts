/**
 * Where each stored OpenAI Responses API response lives. A response created through the gateway
 * (`POST /v1/responses` with `store` not false) is kept by the provider that answered it, under the
 * upstream model it ran on; retrieving, deleting, cancelling it, listing its input items or
 * continuing it (`previous_response_id`) must reach that same provider, which failover may not have
 * made the first choice. The directory maps response id -> (provider, upstream model, owner) so
 * those requests are routed there, and only for the consumer (or an ancestor account) that created it.
 *
 * Two implementations: Redis (shared by every replica, one key per response with a TTL) when the
 * gateway has `--redis-url`, else a bounded in-process LRU. The Redis one keeps a local LRU copy of
 * what this replica wrote, read only when Redis cannot be reached.
 */
import type { KeyEntry } from '../config/snapshot.js';
import type { RedisClient } from '../ratelimit/redis.js';

/** What the gateway remembers of one stored response. */
export interface StoredResponse {
  /** ModelProvider `namespace/name` that created it. */
  readonly provider: string;
  /** The provider's model name it ran on. */
  readonly upstreamModel: string;
  /** The served model name (after mapping) the client asked for. */
  readonly model: string;
  /** The creating key's `namespace/name`. */
  readonly consumer: string;
  /** The creating key's lineage (`.root.child.self.`, names in its namespace). */
  readonly lineage: string;
}

/** The directory's answer when its backing store failed and no local copy exists. */
export const DIRECTORY_UNAVAILABLE = Symbol('directory-unavailable');

export interface ResponseDirectory {
  /** The entry of `id`; undefined when unknown or expired; DIRECTORY_UNAVAILABLE when it cannot tell. */
  get(id: string): Promise<StoredResponse | undefined | typeof DIRECTORY_UNAVAILABLE>;
  /** Records a created response (fire and forget: failures are reported through `onError`). */
  put(id: string, entry: StoredResponse): void;
  /** Forgets a deleted response. */
  delete(id: string): void;
  close?(): Promise<void>;
}

/** Response ids the gateway accepts in a path or `previous_response_id` (OpenAI's are `resp_` + hex). */
export const RESPONSE_ID = /^[A-Za-z0-9_-]{1,128}$/;

function namespaceOf(qualified: string): string {
  const slash = qualified.indexOf('/');
  return slash < 0 ? '' : qualified.slice(0, slash);
}

/**
 * Whether `key` may touch `entry`: it created it, or it is an ancestor account of the key that did
 * (the entry's lineage lies under the key's, in the same namespace). Sibling keys may not.
 */
export function mayAccess(key: KeyEntry, entry: StoredResponse): boolean {
  if (entry.consumer === key.name) return true;
  return namespaceOf(entry.consumer) === namespaceOf(key.name) && entry.lineage.startsWith(key.lineage);
}

interface Slot {
  readonly entry: StoredResponse;
  readonly expiresMs: number;
}

/** A bounded LRU with a TTL: the least recently used entry goes when full. */
export class MemoryResponseDirectory implements ResponseDirectory {
  private readonly slots = new Map<string, Slot>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.slots.size;
  }

  lookup(id: string): StoredResponse | undefined {
    const slot = this.slots.get(id);
    if (!slot) return undefined;
    if (slot.expiresMs <= this.now()) {
      this.slots.delete(id);
      return undefined;
    }
    // Most recently used last (Map keeps insertion order).
    this.slots.delete(id);
    this.slots.set(id, slot);
    return slot.entry;
  }

  get(id: string): Promise<StoredResponse | undefined> {
    return Promise.resolve(this.lookup(id));
  }

  put(id: string, entry: StoredResponse): void {
    this.slots.delete(id);
    while (this.slots.size >= this.maxEntries) {
      const oldest = this.slots.keys().next().value;
      if (oldest === undefined) break;
      this.slots.delete(oldest);
    }
    this.slots.set(id, { entry, expiresMs: this.now() + this.ttlMs });
  }

  delete(id: string): void {
    this.slots.delete(id);
  }
}

/** The JSON stored in Redis (short field names: one value per stored response, for 30 days). */
interface Wire {
  p: string;
  m: string;
  u: string;
  c: string;
  l: string;
}

function decode(text: string): StoredResponse | undefined {
  try {
    const w = JSON.parse(text) as Partial<Wire>;
    if (typeof w.p !== 'string' || typeof w.m !== 'string' || typeof w.u !== 'string' || typeof w.c !== 'string' || typeof w.l !== 'string') return undefined;
    return { provider: w.p, upstreamModel: w.m, model: w.u, consumer: w.c, lineage: w.l };
  } catch {
    return undefined;
  }
}

/** Key of a response id: `<prefix>response:<id>`. */
export function responseKey(prefix: string, id: string): string {
  return `${prefix}response:${id}`;
}

/** Shared by every replica through Redis; see the file comment. */
export class RedisResponseDirectory implements ResponseDirectory {
  private readonly local: MemoryResponseDirectory;

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly ttlMs: number,
    localEntries: number,
    private readonly onError: (op: string, err: unknown) => void,
    now: () => number = Date.now,
  ) {
    this.local = new MemoryResponseDirectory(ttlMs, localEntries, now);
  }

  async get(id: string): Promise<StoredResponse | undefined | typeof DIRECTORY_UNAVAILABLE> {
    try {
      const text = await this.client.get(responseKey(this.prefix, id));
      return text === null ? undefined : decode(text);
    } catch (err) {
      this.onError('get', err);
      return this.local.lookup(id) ?? DIRECTORY_UNAVAILABLE;
    }
  }

  put(id: string, entry: StoredResponse): void {
    this.local.put(id, entry);
    const wire: Wire = { p: entry.provider, m: entry.upstreamModel, u: entry.model, c: entry.consumer, l: entry.lineage };
    this.client.set(responseKey(this.prefix, id), JSON.stringify(wire), 'PX', this.ttlMs).catch((err: unknown) => this.onError('put', err));
  }

  delete(id: string): void {
    this.local.delete(id);
    this.client.del(responseKey(this.prefix, id)).catch((err: unknown) => this.onError('delete', err));
  }
}
