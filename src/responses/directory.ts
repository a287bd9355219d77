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
  /**
   * Records a created response. A shared store returns a promise that settles once the write did
   * (or failed: failures are reported through `onError` and retried later, never thrown), so the
   * answer can wait for it and a retrieve sent to any replica right after finds the response.
   */
  put(id: string, entry: StoredResponse): Promise<void> | undefined;
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

  put(id: string, entry: StoredResponse): undefined {
    this.slots.delete(id);
    while (this.slots.size >= this.maxEntries) {
      const oldest = this.slots.keys().next().value;
      if (oldest === undefined) break;
      this.slots.delete(oldest);
    }
    this.slots.set(id, { entry, expiresMs: this.now() + this.ttlMs });
    return undefined;
  }

  /** The entries in least recently used order, with when each expires (for retries). */
  *entries(): IterableIterator<[string, StoredResponse, number]> {
    for (const [id, slot] of this.slots) yield [id, slot.entry, slot.expiresMs];
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

/** Writes that failed and wait for Redis to come back, at most this many (the oldest go first). */
const MAX_UNWRITTEN = 10_000;
const RETRY_EVERY_MS = 1000;

/** Shared by every replica through Redis; see the file comment. */
export class RedisResponseDirectory implements ResponseDirectory {
  private readonly local: MemoryResponseDirectory;
  /** Responses whose write to Redis failed: written again, with what is left of their TTL, once Redis answers. */
  private readonly unwritten: MemoryResponseDirectory;
  private retryTimer: NodeJS.Timeout | undefined;
  private retrying = false;

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly ttlMs: number,
    localEntries: number,
    private readonly onError: (op: string, err: unknown) => void,
    now: () => number = Date.now,
  ) {
    this.local = new MemoryResponseDirectory(ttlMs, localEntries, now);
    this.unwritten = new MemoryResponseDirectory(ttlMs, MAX_UNWRITTEN, now);
    this.now = now;
  }

  private readonly now: () => number;

  /** How many recorded responses wait to be written to Redis. */
  get pendingWrites(): number {
    return this.unwritten.size;
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

  put(id: string, entry: StoredResponse): Promise<void> {
    this.local.put(id, entry);
    return this.write(id, entry, this.ttlMs).then(
      () => undefined,
      (err: unknown) => {
        this.onError('put', err);
        this.unwritten.put(id, entry);
        this.scheduleRetry();
      },
    );
  }

  private write(id: string, entry: StoredResponse, ttlMs: number): Promise<unknown> {
    const wire: Wire = { p: entry.provider, m: entry.upstreamModel, u: entry.model, c: entry.consumer, l: entry.lineage };
    return this.client.set(responseKey(this.prefix, id), JSON.stringify(wire), 'PX', ttlMs);
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.retrying) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.retryUnwritten();
    }, RETRY_EVERY_MS);
    this.retryTimer.unref();
  }

  /** Writes the waiting entries, oldest first, until one fails (Redis still away: try again later). */
  private async retryUnwritten(): Promise<void> {
    this.retrying = true;
    try {
      for (const [id, entry, expiresMs] of [...this.unwritten.entries()]) {
        const ttlMs = expiresMs - this.now();
        if (ttlMs > 0) await this.write(id, entry, ttlMs);
        this.unwritten.delete(id);
      }
    } catch (err) {
      this.onError('put', err);
    } finally {
      this.retrying = false;
    }
    if (this.unwritten.size > 0) this.scheduleRetry();
  }

  async close(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  delete(id: string): void {
    this.local.delete(id);
    this.unwritten.delete(id);
    this.client.del(responseKey(this.prefix, id)).catch((err: unknown) => this.onError('delete', err));
  }
}
