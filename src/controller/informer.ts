/**
 * A list+watch cache of one resource type that survives API server trouble. client-node's informer
 * relists by itself after 410 Gone but *stops* on any other error (connection reset, 5xx, 403);
 * this wrapper restarts it with capped exponential backoff and keeps the last known objects
 * meanwhile, so the gateway keeps serving its last snapshot while the API server is away.
 */
import { ListWatch, Watch, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import { planWatchRetry } from './watch-retry.js';

export interface ResilientInformerOptions<T extends KubernetesObject> {
  readonly name: string;
  readonly kubeConfig: KubeConfig;
  /** API path of the collection, e.g. `/apis/tollgate.dev/v1alpha1/namespaces/ns/apikeys`. */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  readonly logger: Logger;
  /** Called after any add/update/delete (the caller debounces). */
  readonly onChange: () => void;
  /** Called with each object that was added, updated or deleted (after `transform`). */
  readonly onEvent?: (verb: 'add' | 'update' | 'delete', obj: T) => void;
  /**
   * Applied to every object before the cache stores it, as client-go's transform functions: drop
   * what is never read (managedFields, the last-applied annotation) so 100k cached objects stay small.
   */
  readonly transform?: (obj: T) => T;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly listTimeoutMs?: number;
}

function withTimeout<V>(promise: Promise<V>, ms: number, what: string): Promise<V> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class ResilientInformer<T extends KubernetesObject> {
  private readonly informer: Informer<T> & ObjectCache<T>;
  private stopped = false;
  private failedSinceStart = false;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  /** True once a list succeeded; stays true (the cache keeps the last known objects). */
  private everSynced = false;
  /** True while the watch is believed healthy. */
  private healthy = false;
  private firstSync: { resolve: () => void; promise: Promise<void> };
  /** Restarts so far (for tests and logs). */
  restarts = 0;
  /** Full lists so far: 1 + relists after 410 Gone. */
  lists = 0;

  constructor(private readonly options: ResilientInformerOptions<T>) {
    this.backoffMs = options.minBackoffMs ?? 500;
    // A list that never answers (half-dead API server) would stall the informer with no error to
    // restart on: bound it.
    const list = (): Promise<KubernetesListObject<T>> => {
      // First list, or a relist after 410 Gone (the informer's resourceVersion was too old).
      this.lists += 1;
      options.logger.debug({ informer: options.name, lists: this.lists }, 'listing');
      return withTimeout(options.list(), options.listTimeoutMs ?? 30_000, `list ${options.name}`);
    };
    const transform = options.transform;
    const watch = new Watch(options.kubeConfig);
    const transformingWatch = transform
      ? ({
          watch: (path: string, params: Record<string, string | number | boolean | undefined>, callback: (phase: string, obj: unknown, w?: unknown) => void, done: (err: unknown) => void) =>
            watch.watch(
              path,
              params,
              (phase, obj: unknown, w) => callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? transform(obj as T) : obj, w),
              done,
            ),
        } as Watch)
      : watch;
    const listTransformed = transform
      ? async (): Promise<KubernetesListObject<T>> => {
          const l = await list();
          return { ...l, items: l.items.map(transform) };
        }
      : list;
    this.informer = new ListWatch<T>(options.path, transformingWatch, listTransformed, false, options.labelSelector);
    for (const verb of ['add', 'update', 'delete'] as const) {
      this.informer.on(verb, (obj: T) => {
        options.onEvent?.(verb, obj);
        options.onChange();
      });
    }
    this.informer.on('error', (err: unknown) => this.onError(err));
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

  list(): readonly T[] {
    return this.informer.list();
  }

  /** The cached object, if any. */
  get(namespace: string, name: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.informer.stop();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    this.failedSinceStart = false;
    try {
      await this.informer.start();
    } catch (err) {
      this.onError(err);
      return;
    }
    if (this.failedSinceStart || this.stopped) return;
    // start() resolves after the list (if one was needed) and once the watch is open.
    this.healthy = true;
    this.backoffMs = this.options.minBackoffMs ?? 500;
    if (!this.everSynced) {
      this.everSynced = true;
      this.firstSync.resolve();
    }
    if (this.restarts > 0) this.options.logger.info({ informer: this.options.name, restarts: this.restarts }, 'watch re-established');
    // Objects may have changed while we were away (the informer replays them as events), but a
    // rebuild costs little: make sure one happens after every (re)connect.
    this.options.onChange();
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
}
