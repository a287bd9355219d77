/**
 * List+watch of one config resource type whose cache keeps only what the controller reads after
 * an event: per object a small frozen entry (resourceVersion, generation, a hash of the uid and
 * the status, shared between objects with equal status), never the object itself. The spec goes to
 * the snapshot builder with the event and is held there once. With 100k ApiKeys this is the
 * difference between ~1.4 KB and well under 1 KB of heap per key (docs/scale.md).
 *
 * Listing (docs/scale.md, "Kubernetes mode"):
 *   - the first list asks for `resourceVersion=0`: the API server answers from its watch cache (no
 *     etcd read, several times faster at 30k objects) with the whole collection in one response;
 *     like client-go's reflector, any recent state is fine for a start, the watch that follows
 *     brings everything after it;
 *   - a relist after `410 Gone` asks for the latest state (no resourceVersion), in pages;
 *   - the body is split into items as it arrives (list-stream.ts): no 80 MB string, no parsed list.
 * Watching resumes from the last resourceVersion after a normal close or an error (with the same
 * capped backoff as before: ResilientInformer), and relists only after 410 Gone.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import { errorStatus, planWatchRetry } from './watch-retry.js';
import { ListSplitter } from './list-stream.js';

/** What the cache keeps of one object. */
export class CacheEntry {
  constructor(
    /** A number when the resourceVersion is a small integer (etcd's), else the string. */
    readonly resourceVersion: number | string,
    readonly generation: number | undefined,
    /** Two 31-bit hashes of metadata.uid: a recreated object (new uid) is told apart without the 36-char string. */
    readonly uidHi: number,
    readonly uidLo: number,
    /** The object's status, one shared copy per distinct value. */
    readonly status: unknown,
  ) {}

  /** Same object (uid) at the same generation: an update that touched only status or metadata. */
  sameSpec(other: CacheEntry): boolean {
    return this.uidHi === other.uidHi && this.uidLo === other.uidLo && this.generation === other.generation && this.generation !== undefined;
  }
}

export type InformerVerb = 'add' | 'update' | 'delete';

export interface SlimInformerOptions<T extends KubernetesObject> {
  readonly name: string;
  readonly kubeConfig: KubeConfig;
  /** API path of the collection, e.g. `/apis/tollgate.dev/v1alpha1/namespaces/ns/apikeys`. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly logger: Logger;
  /**
   * Called for every change with the cache key (`namespace/name`), the object (transformed; absent
   * for a delete found by a relist), its new cache entry and the one it replaces.
   */
  readonly onEvent: (verb: InformerVerb, key: string, obj: T | undefined, entry: CacheEntry, previous: CacheEntry | undefined) => void;
  /** Called after any add/update/delete (the caller debounces) and after every (re)connect. */
  readonly onChange: () => void;
  /** Applied to every object handed to onEvent (client-go's transform functions). */
  readonly transform: (obj: T) => T;
  readonly pageSize?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** A list that sends no byte for this long is abandoned (and retried). */
  readonly listTimeoutMs?: number;
}

/** Objects per LIST page when the API server paginates (relists, or no watch cache). */
export const LIST_PAGE = 1000;

const BASE_RECONNECT_DELAY_MS = 1000;
const MAX_RECONNECT_DELAY_MS = 30_000;

/** 31-bit FNV-1a of a string, with a seed. */
function hash31(s: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 1;
}

function versionOf(rv: unknown): number | string {
  if (typeof rv !== 'string') return '';
  return /^[1-9]\d{0,8}$/.test(rv) ? Number(rv) : rv;
}

const statuses = new Map<string, unknown>();
const STATUS_LIMIT = 10_000;

/** One shared copy of equal statuses (bounded; past the limit it starts over). */
function shareStatus(status: unknown): unknown {
  if (status === undefined || status === null) return undefined;
  const text = JSON.stringify(status);
  if (text.length > 2048) return status;
  const hit = statuses.get(text);
  if (hit !== undefined) return hit;
  if (statuses.size >= STATUS_LIMIT) statuses.clear();
  statuses.set(text, status);
  return status;
}

/** The cache entry of a raw object from the API server. */
export function entryOf(obj: KubernetesObject & { status?: unknown }): CacheEntry {
  const meta = (obj.metadata ?? {}) as { resourceVersion?: unknown; generation?: unknown; uid?: unknown };
  const uid = typeof meta.uid === 'string' ? meta.uid : '';
  return new CacheEntry(versionOf(meta.resourceVersion), typeof meta.generation === 'number' ? meta.generation : undefined, hash31(uid, 0x811c9dc5), hash31(uid, 0x050c5d1f), shareStatus(obj.status));
}

export function keyOf(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

class HttpError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
  }
}

export class SlimInformer<T extends KubernetesObject> {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly watcher: Watch;
  /** Where the watch resumes; '' = list first. */
  private resourceVersion = '';
  /** After the first successful list, relists read the latest state (they follow a 410). */
  private listedOnce = false;
  private watchAbort: AbortController | undefined;
  private listRequest: ClientRequest | undefined;
  /** Bumped on every new watch: callbacks of an older one are ignored. */
  private watchSeq = 0;
  private reconnectDelayMs = 0;
  private stopped = false;
  private failedSinceStart = false;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private everSynced = false;
  private healthy = false;
  private readonly firstSync: { resolve: () => void; promise: Promise<void> };
  /** Restarts after errors so far (for tests and logs). */
  restarts = 0;
  /** Full lists so far: 1 + relists after 410 Gone. */
  lists = 0;

  constructor(private readonly options: SlimInformerOptions<T>) {
    this.backoffMs = options.minBackoffMs ?? 500;
    this.watcher = new Watch(options.kubeConfig);
    let resolve: () => void = () => undefined;
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstSync = { resolve, promise };
  }

  /** Starts list+watch; resolves once the first list has succeeded (retrying until then). */
  async start(): Promise<void> {
    void this.run();
    await this.firstSync.promise;
  }

  get synced(): boolean {
    return this.everSynced;
  }

  get watching(): boolean {
    return this.healthy;
  }

  get size(): number {
    return this.cache.size;
  }

  /** The cache entry of `namespace/name`, if the object exists. */
  get(key: string): CacheEntry | undefined {
    return this.cache.get(key);
  }

  /** Live iteration over `namespace/name` -> entry. */
  entries(): IterableIterator<[string, CacheEntry]> {
    return this.cache.entries();
  }

  keys(): IterableIterator<string> {
    return this.cache.keys();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.watchSeq += 1;
    this.watchAbort?.abort();
    this.listRequest?.destroy();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    this.failedSinceStart = false;
    try {
      await this.connect();
    } catch (err) {
      this.onError(err);
      return;
    }
    if (this.failedSinceStart || this.stopped) return;
    // connect() resolves after the list (if one was needed) and once the watch is open.
    this.healthy = true;
    this.backoffMs = this.options.minBackoffMs ?? 500;
    if (!this.everSynced) {
      this.everSynced = true;
      this.firstSync.resolve();
    }
    if (this.restarts > 0) this.options.logger.info({ informer: this.options.name, restarts: this.restarts }, 'watch re-established');
    // Objects may have changed while we were away (replayed as events), but a rebuild costs
    // little: make sure one happens after every (re)connect.
    this.options.onChange();
  }

  /** Lists when there is no resourceVersion to resume from, then opens the watch. */
  private async connect(): Promise<void> {
    if (!this.resourceVersion) await this.list();
    if (this.stopped) return;
    await this.openWatch();
  }

  private onError(err: unknown): void {
    this.failedSinceStart = true;
    this.healthy = false;
    if (this.stopped || this.restartTimer) return;
    const { delayMs: delay, nextBackoffMs } = planWatchRetry(err, this.backoffMs, this.options.maxBackoffMs ?? 30_000, this.options.logger, this.options.name);
    this.backoffMs = nextBackoffMs;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarts += 1;
      void this.run();
    }, delay);
    this.restartTimer.unref();
  }

  // ---- watch ------------------------------------------------------------------------------------

  private async openWatch(): Promise<void> {
    const seq = ++this.watchSeq;
    const params: Record<string, string | boolean> = { resourceVersion: this.resourceVersion, allowWatchBookmarks: true };
    if (this.options.labelSelector !== undefined) params['labelSelector'] = this.options.labelSelector;
    const abort = await this.watcher.watch(
      this.options.path,
      params,
      (phase, obj) => {
        if (seq === this.watchSeq) this.onWatchEvent(phase, obj as T & { code?: unknown });
      },
      (err) => {
        if (seq === this.watchSeq) void this.onWatchDone(err);
      },
    );
    if (seq === this.watchSeq) this.watchAbort = abort;
  }

  private onWatchEvent(phase: string, obj: (T & { code?: unknown }) | undefined): void {
    switch (phase) {
      case 'ERROR':
        // 410 Gone: our resourceVersion is older than the API server keeps; the server closes the
        // watch next, and the reconnect relists.
        if (obj?.code === 410) this.resourceVersion = '';
        return;
      case 'ADDED':
      case 'MODIFIED':
        if (obj) this.upsert(obj);
        break;
      case 'DELETED':
        if (obj) this.remove(obj);
        break;
      case 'BOOKMARK':
        break;
      default:
        return;
    }
    this.reconnectDelayMs = 0;
    const rv = obj?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
  }

  private async onWatchDone(err: unknown): Promise<void> {
    this.watchAbort = undefined;
    if (this.stopped) return;
    if (err && errorStatus(err) === 410) {
      this.resourceVersion = '';
    } else if (err && (err as { name?: unknown }).name === 'TimeoutError') {
      // Nothing arrived for a while: resume at once (the timeout already spaced the requests).
      this.reconnectDelayMs = 0;
    } else if (err) {
      this.onError(err);
      return;
    }
    // A normal close (server-side timeout), an inactivity timeout or 410: resume, spacing
    // reconnects that bring no event.
    if (this.reconnectDelayMs > 0) await sleep(this.reconnectDelayMs);
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs > 0 ? this.reconnectDelayMs * 2 : BASE_RECONNECT_DELAY_MS, MAX_RECONNECT_DELAY_MS);
    if (this.stopped) return;
    try {
      await this.connect();
    } catch (e) {
      this.onError(e);
    }
  }

  // ---- cache ------------------------------------------------------------------------------------

  private upsert(obj: T): string {
    const key = keyOf(obj);
    const previous = this.cache.get(key);
    const entry = entryOf(obj);
    // A relist brings every object again: unchanged ones (same resourceVersion) are no event.
    if (previous !== undefined && previous.resourceVersion === entry.resourceVersion && entry.resourceVersion !== '') return key;
    this.cache.set(key, entry);
    this.options.onEvent(previous ? 'update' : 'add', key, this.options.transform(obj), entry, previous);
    this.options.onChange();
    return key;
  }

  private remove(obj: T): void {
    const key = keyOf(obj);
    const previous = this.cache.get(key);
    if (previous === undefined) return;
    this.cache.delete(key);
    this.options.onEvent('delete', key, this.options.transform(obj), entryOf(obj), previous);
    this.options.onChange();
  }

  // ---- list -------------------------------------------------------------------------------------

  private async list(): Promise<void> {
    this.lists += 1;
    this.options.logger.debug({ informer: this.options.name, lists: this.lists }, 'listing');
    const latest = this.listedOnce;
    // Keys seen by a relist; the cached ones not seen were deleted meanwhile.
    const seen = this.cache.size > 0 ? new Set<string>() : undefined;
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const query = new URLSearchParams({ limit: String(this.options.pageSize ?? LIST_PAGE) });
      if (cont) query.set('continue', cont);
      else if (!latest) query.set('resourceVersion', '0');
      if (this.options.labelSelector !== undefined) query.set('labelSelector', this.options.labelSelector);
      const list = await this.listPage(query, (item) => {
        const key = this.upsert(item as T);
        seen?.add(key);
      });
      const meta = (typeof list['metadata'] === 'object' && list['metadata'] !== null ? list['metadata'] : {}) as { resourceVersion?: unknown; continue?: unknown };
      resourceVersion = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
      cont = typeof meta.continue === 'string' && meta.continue !== '' ? meta.continue : undefined;
      if (this.stopped) return;
    } while (cont);
    if (seen) {
      for (const [key, previous] of [...this.cache]) {
        if (seen.has(key)) continue;
        this.cache.delete(key);
        this.options.onEvent('delete', key, undefined, previous, previous);
        this.options.onChange();
      }
    }
    if (!resourceVersion) throw new Error(`list ${this.options.name}: the response has no resourceVersion to watch from`);
    this.listedOnce = true;
    this.resourceVersion = resourceVersion;
  }

  /** One LIST request; items are handed to onItem as they arrive. Resolves with the list without its items. */
  private async listPage(query: URLSearchParams, onItem: (item: unknown) => void): Promise<Record<string, unknown>> {
    const kc = this.options.kubeConfig;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('no current cluster in the kubeconfig');
    const url = new URL(`${cluster.server}${this.options.path}?${query.toString()}`);
    const opts: RequestOptions = {};
    await kc.applyToHTTPSOptions(opts as never);
    const headers = { ...(opts.headers as Record<string, string> | undefined), accept: 'application/json' };
    const timeoutMs = this.options.listTimeoutMs ?? 30_000;
    try {
      return await new Promise<Record<string, unknown>>((resolve, reject) => {
        const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
        const req = send(url, { ...opts, method: 'GET', headers }, (res: IncomingMessage) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const body = Buffer.concat(chunks).toString('utf8');
              let message = body.slice(0, 500);
              try {
                message = String((JSON.parse(body) as { message?: unknown }).message ?? message);
              } catch {
                // not a Status object
              }
              reject(new HttpError(`list ${this.options.name}: HTTP ${res.statusCode}: ${message}`, res.statusCode ?? 0));
            });
            res.on('error', reject);
            return;
          }
          const splitter = new ListSplitter(onItem);
          res.on('data', (c: Buffer) => {
            try {
              splitter.push(c);
            } catch (err) {
              req.destroy(err as Error);
            }
          });
          res.on('end', () => {
            try {
              resolve(splitter.end());
            } catch (err) {
              reject(err as Error);
            }
          });
          res.on('error', reject);
          res.on('aborted', () => reject(new Error(`list ${this.options.name}: connection closed mid-response`)));
        });
        this.listRequest = req;
        // A half-dead API server that stops sending would stall the informer with no error.
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`list ${this.options.name} timed out after ${timeoutMs} ms without data`)));
        req.on('error', reject);
        req.end();
      });
    } finally {
      // The agent is the kubeconfig's shared one (other informers' requests use it): keep it.
      this.listRequest = undefined;
    }
  }
}
