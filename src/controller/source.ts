/**
 * Kubernetes config source: informers on ModelProvider, ApiKey and the labelled Secrets of one
 * namespace feed the incremental snapshot builder (config/incremental.ts): each informer event is
 * one change (parseDocument -> builder.apply), status-only updates are skipped, and bursts are
 * debounced into one build that recomputes only what the changes affect. The informer caches keep
 * one small entry per object, not the object (slim-informer.ts); the builder gets each object with
 * what it never reads dropped (compact.ts). Status writes cover only objects that changed and go
 * through one client-side rate limit (50 QPS, burst 100). Readiness comes only after
 * every informer's first full list. Resources that are wrong in meaning are left out of the
 * snapshot and get a Ready=False condition (written by the Lease holder only); everything else
 * keeps serving. While the API server is unreachable the last snapshot stays in force.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { CoordinationV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Secret } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { IncrementalSnapshotBuilder, type ResourceChange } from '../config/incremental.js';
import { parseDocument, parseResources } from '../config/parse.js';
import { Slicer } from '../config/slicer.js';
import type { ConfigStore } from '../config/store.js';
import { API_GROUP, type Condition, type GatewayConfigSpec } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { LeaderElector } from './leader.js';
import { SlimInformer, type CacheEntry, type InformerVerb } from './slim-informer.js';
import { writeUsagePass, type KeyObjectView, type KeyStatusView } from '../usage/status.js';
import { compactObject } from './compact.js';
import { TokenBucket } from './write-limit.js';
import { discoveryPatch, discoveryUpToDate, toolsCondition, type DiscoveryView } from './mcp-status.js';
import { readyCondition, statusPatch, statusUpToDate, type StatusView, type Verdict } from './status.js';

const VERSION = 'v1alpha1';

/** Label a Secret needs so the controller sees it (only labelled Secrets are listed). */
export const DEFAULT_SECRET_SELECTOR = 'tollgate.dev/secret=true';

export interface KubernetesSourceOptions {
  readonly store: ConfigStore;
  readonly logger: Logger;
  readonly namespace: string;
  /** Label selector for the Secrets Tollgate reads. */
  readonly secretSelector?: string;
  /** GatewayConfig YAML file (a mounted ConfigMap), re-read when it changes. */
  readonly gatewayConfigFile?: string;
  /** Lease used to pick the one replica that writes status; undefined disables status writing. */
  readonly leaseName?: string;
  readonly identity?: string;
  readonly debounceMs?: number;
  /** Loaded from KUBECONFIG or the in-cluster service account when omitted. */
  readonly kubeConfig?: KubeConfig;
  /** Month-to-date usage and lineage for ApiKey status, written on a slow timer by the leader. */
  readonly usageStatus?: { readonly read: (name: string) => Promise<KeyStatusView | undefined>; readonly intervalMs: number };
  /** MCPServer discovery (tools published, upstream reachable) for MCPServer status, by `namespace/name`. */
  readonly mcpStatus?: { readonly probe: (name: string) => Promise<DiscoveryView | undefined>; readonly intervalMs: number };
}

type CustomObject = KubernetesObject & StatusView & { spec?: unknown };
type Kind = 'ModelProvider' | 'ApiKey' | 'MCPServer' | 'PromptTemplate';
const PLURAL: Readonly<Record<Kind, string>> = { ModelProvider: 'modelproviders', ApiKey: 'apikeys', MCPServer: 'mcpservers', PromptTemplate: 'prompttemplates' };

export class KubernetesConfigSource {
  private readonly kc: KubeConfig;
  private readonly custom: CustomObjectsApi;
  private readonly providers: SlimInformer<CustomObject>;
  private readonly keys: SlimInformer<CustomObject>;
  private readonly mcpServers: SlimInformer<CustomObject>;
  private readonly promptTemplates: SlimInformer<CustomObject>;
  private readonly secrets: SlimInformer<V1Secret>;
  private readonly elector: LeaderElector | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private version = 0;
  private readonly builder = new IncrementalSnapshotBuilder();
  /**
   * Objects whose spec changed since the last build, by `Kind/namespace/name` (latest event wins).
   * `name` is the informer's cache key (`namespace/name`): the builder keeps that same string.
   */
  private readonly queued = new Map<string, { readonly kind: Kind | 'Secret'; readonly name: string; readonly obj: KubernetesObject | undefined }>();
  /** Objects left out because they are invalid in shape, with the reason for their status. */
  private readonly invalid = new Map<string, Verdict>();
  /** Objects whose Ready condition may be out of date (new events, problems that changed); leader only. */
  private readonly statusDirty = new Set<string>();
  /** Set when this replica becomes the leader: check the status of every object once. */
  private statusAll = false;
  private gatewayDirty = true;
  private building: Promise<void> | undefined;
  private buildAgain = false;
  /** API server write limit of this replica (client-go's defaults). */
  private readonly writes = new TokenBucket(50, 100);
  private gatewayConfig: GatewayConfigSpec | undefined;
  private gatewayWatcher: FSWatcher | undefined;
  private gatewayTimer: NodeJS.Timeout | undefined;
  private gatewayReads = 0;
  private writing: Promise<void> | undefined;
  private writeAgain = false;
  private usageTimer: NodeJS.Timeout | undefined;
  private usageWriting = false;
  private mcpTimer: NodeJS.Timeout | undefined;
  private mcpSoon: NodeJS.Timeout | undefined;
  private mcpWriting = false;

  constructor(private readonly options: KubernetesSourceOptions) {
    this.kc = options.kubeConfig ?? loadKubeConfig();
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
    const ns = options.namespace;
    const log = options.logger;
    const onChange = (): void => this.schedule();
    const customInformer = (kind: Kind): SlimInformer<CustomObject> =>
      new SlimInformer<CustomObject>({
        name: kind,
        kubeConfig: this.kc,
        path: `/apis/${API_GROUP}/${VERSION}/namespaces/${ns}/${PLURAL[kind]}`,
        logger: log,
        onChange,
        onEvent: (verb, key, obj, entry, previous) => this.enqueue(kind, verb, key, obj, entry, previous),
        transform: compactObject,
      });
    this.providers = customInformer('ModelProvider');
    this.keys = customInformer('ApiKey');
    this.mcpServers = customInformer('MCPServer');
    this.promptTemplates = customInformer('PromptTemplate');
    const selector = options.secretSelector ?? DEFAULT_SECRET_SELECTOR;
    this.secrets = new SlimInformer<V1Secret>({
      name: 'Secret',
      kubeConfig: this.kc,
      path: `/api/v1/namespaces/${ns}/secrets`,
      labelSelector: selector,
      logger: log,
      onChange,
      onEvent: (verb, key, obj, entry, previous) => this.enqueue('Secret', verb, key, obj, entry, previous),
      transform: compactObject,
    });
    if (options.leaseName) {
      this.elector = new LeaderElector({
        api: this.kc.makeApiClient(CoordinationV1Api),
        namespace: ns,
        leaseName: options.leaseName,
        identity: options.identity ?? `${hostname()}-${randomBytes(4).toString('hex')}`,
        logger: log,
        onChange: (leading) => {
          if (leading) {
            // A new leader checks every object once; afterwards only what changes.
            this.statusAll = true;
            this.writeStatuses();
            this.scheduleMcpStatus();
          }
        },
      });
    }
  }

  /** Resolves after the first full sync of every informer and the first snapshot swap. */
  async start(): Promise<void> {
    if (this.options.gatewayConfigFile) {
      this.gatewayConfig = await readGatewayConfig(this.options.gatewayConfigFile);
      // ConfigMap volumes update by swapping a symlinked directory: watch the directory.
      this.gatewayWatcher = watch(dirname(this.options.gatewayConfigFile), () => this.reloadGatewayConfig());
      this.gatewayWatcher.on('error', (err) => this.options.logger.warn({ err }, 'cannot watch the gateway config file'));
    }
    await Promise.all([this.providers.start(), this.keys.start(), this.mcpServers.start(), this.promptTemplates.start(), this.secrets.start()]);
    await this.rebuild();
    this.started = true;
    this.elector?.start();
    const mcp = this.options.mcpStatus;
    if (mcp && this.elector) {
      this.mcpTimer = setInterval(() => void this.writeMcpStatus(mcp.probe), mcp.intervalMs);
      this.mcpTimer.unref();
    }
    const usage = this.options.usageStatus;
    if (usage && this.elector) {
      this.usageTimer = setInterval(() => void this.writeUsage(usage.read), usage.intervalMs);
      this.usageTimer.unref();
    }
  }

  /** Stops watching; resolves once the status Lease (if held) is released. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.usageTimer) clearInterval(this.usageTimer);
    if (this.mcpTimer) clearInterval(this.mcpTimer);
    if (this.mcpSoon) clearTimeout(this.mcpSoon);
    this.gatewayWatcher?.close();
    if (this.gatewayTimer) clearTimeout(this.gatewayTimer);
    await this.elector?.stop();
    void this.providers.stop();
    void this.keys.stop();
    void this.mcpServers.stop();
    void this.promptTemplates.stop();
    void this.secrets.stop();
  }

  /** True while every watch is connected (the snapshot may be stale otherwise). */
  get watching(): boolean {
    return this.providers.watching && this.keys.watching && this.mcpServers.watching && this.promptTemplates.watching && this.secrets.watching;
  }

  get leading(): boolean {
    return this.elector?.leading ?? false;
  }

  /**
   * Re-reads the GatewayConfig file. A ConfigMap update fires several directory events (new data
   * dir, symlink swap, removal of the old one): reads are debounced, and only the latest read may
   * apply, so a slow read of the old content can never overwrite the new one.
   */
  private reloadGatewayConfig(): void {
    const file = this.options.gatewayConfigFile;
    if (!file) return;
    if (this.gatewayTimer) clearTimeout(this.gatewayTimer);
    this.gatewayTimer = setTimeout(() => {
      this.gatewayTimer = undefined;
      const seq = ++this.gatewayReads;
      readGatewayConfig(file).then(
        (config) => {
          if (seq !== this.gatewayReads) return;
          this.gatewayConfig = config;
          this.gatewayDirty = true;
          this.schedule();
        },
        (err: unknown) => {
          if (seq !== this.gatewayReads) return;
          this.options.logger.error({ err: String(err) }, 'gateway config rejected; keeping the one in force');
        },
      );
    }, this.options.debounceMs ?? 50);
  }

  private schedule(): void {
    if (!this.started) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.rebuild();
    }, this.options.debounceMs ?? 50);
  }

  private customInformers(): readonly (readonly [Kind, SlimInformer<CustomObject>])[] {
    return [['ModelProvider', this.providers], ['ApiKey', this.keys], ['MCPServer', this.mcpServers], ['PromptTemplate', this.promptTemplates]];
  }

  /**
   * Queues one informer event for the debounced rebuild. Updates that leave the spec alone (the
   * same uid and generation; for Secrets the same resourceVersion), such as our own status writes,
   * are not queued: a spec change queued earlier stays queued.
   */
  private enqueue(kind: Kind | 'Secret', verb: InformerVerb, key: string, obj: KubernetesObject | undefined, entry: CacheEntry, previous: CacheEntry | undefined): void {
    const id = `${kind}/${key}`;
    if (kind !== 'Secret' && this.elector?.leading) this.statusDirty.add(id);
    if (verb === 'update' && previous && (kind === 'Secret' ? previous.resourceVersion === entry.resourceVersion : entry.sameSpec(previous))) return;
    this.queued.set(id, { kind, name: key, obj: verb === 'delete' ? undefined : obj });
  }

  /** Why a resource is not served, or undefined when it is. */
  private verdictOf(id: string): Verdict | undefined {
    const invalid = this.invalid.get(id);
    if (invalid) return invalid;
    const problem = this.builder.problemOf(id);
    return problem ? { reason: problem.reason, message: problem.message } : undefined;
  }

  /** Applies queued changes to the incremental builder and swaps the new snapshot. Serialised. */
  private async rebuild(): Promise<void> {
    if (this.building) {
      this.buildAgain = true;
      return this.building;
    }
    this.building = this.rebuildOnce().finally(() => {
      this.building = undefined;
      if (this.buildAgain) {
        this.buildAgain = false;
        void this.rebuild();
      }
    });
    return this.building;
  }

  private async rebuildOnce(): Promise<void> {
    const { logger, store } = this.options;
    // Before the first snapshot nothing is served: the first build runs flat out.
    const slicer = new Slicer(this.started ? 4 : 0);
    const startedAt = performance.now();
    const batch = [...this.queued.entries()];
    this.queued.clear();
    let changes = 0;
    for (const [id, q] of batch) {
      const name = q.name;
      if (q.obj === undefined) {
        this.invalid.delete(id);
        this.builder.apply({ kind: q.kind, name, value: undefined } as ResourceChange);
        changes += 1;
        continue;
      }
      const meta = q.obj.metadata;
      const doc = q.kind === 'Secret' ? { kind: 'Secret', metadata: meta, data: (q.obj as V1Secret).data ?? {} } : { ...q.obj, kind: q.kind };
      const parsed = parseDocument('kubernetes', doc, 1);
      const last = parsed?.issues.at(-1);
      if (last && q.kind !== 'Secret') this.invalid.set(id, { reason: 'Invalid', message: `${last.field ? last.field + ': ' : ''}${last.message}` });
      else this.invalid.delete(id);
      const r = parsed && parsed.issues.length === 0 ? parsed.resource : undefined;
      this.builder.apply((r ? { kind: r.kind, name, value: r.value } : { kind: q.kind, name, value: undefined }) as ResourceChange);
      changes += 1;
      if (slicer.tick()) await slicer.pause();
    }
    if (this.gatewayDirty) {
      this.builder.apply({ kind: 'GatewayConfig', name: 'gateway', value: this.gatewayConfig });
      this.gatewayDirty = false;
      changes += 1;
    }
    if (changes > 0) {
      const built = await this.builder.build(this.version + 1, slicer);
      if (this.elector?.leading) for (const id of built.changedProblems) this.statusDirty.add(id);
      this.version += 1;
      store.swap(built.snapshot);
      const notServed = [...this.invalid.entries()].map(([k, v]) => `${k}: ${v.reason}: ${v.message}`);
      for (const p of built.problems) notServed.push(`${p.kind}/${p.name}: ${p.reason}: ${p.message}`);
      logger.info(
        {
          version: built.snapshot.version,
          keys: built.snapshot.keysByHash.size,
          models: built.snapshot.servedModels.length,
          changes,
          recomputedKeys: built.recomputedKeys,
          ms: Math.round(performance.now() - startedAt),
          notServedCount: notServed.length,
          notServed: notServed.slice(0, 20),
        },
        'config applied',
      );
    }
    this.writeStatuses();
    this.scheduleMcpStatus();
  }

  /** Soon after a config change: discovery status of new or changed MCPServers (leader only). */
  private scheduleMcpStatus(): void {
    const mcp = this.options.mcpStatus;
    if (!mcp || !this.elector || this.mcpSoon) return;
    this.mcpSoon = setTimeout(() => {
      this.mcpSoon = undefined;
      void this.writeMcpStatus(mcp.probe);
    }, 1000);
    this.mcpSoon.unref();
  }

  /** Writes status.tools and the ToolsDiscovered condition of every served MCPServer where they changed. */
  private async writeMcpStatus(probe: (name: string) => Promise<DiscoveryView | undefined>): Promise<void> {
    if (!this.elector?.leading || this.mcpWriting) return;
    this.mcpWriting = true;
    try {
      await Promise.all(
        [...this.mcpServers.entries()].map(async ([name, entry]) => {
          const obj = statusView(entry) as StatusView & { status?: { tools?: number } };
          const view = await probe(name).catch(() => undefined);
          if (!view) return; // not served (its Ready condition says why)
          const wanted = toolsCondition(obj, view, new Date());
          const tools = view.state === 'up' ? view.tools : undefined;
          if (discoveryUpToDate(obj, wanted, tools)) return;
          await this.writes.take();
          try {
            await this.custom.patchNamespacedCustomObjectStatus(
              {
                group: API_GROUP,
                version: VERSION,
                namespace: name.slice(0, name.indexOf('/')),
                plural: PLURAL.MCPServer,
                name: name.slice(name.indexOf('/') + 1),
                body: discoveryPatch(obj, wanted, tools),
              },
              setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
            );
          } catch (err) {
            this.options.logger.warn({ resource: name, err: err instanceof Error ? err.message : String(err) }, 'MCPServer status update failed; will retry');
          }
        }),
      );
    } finally {
      this.mcpWriting = false;
    }
  }

  /** Writes month-to-date usage and lineage into ApiKey status where they changed (leader only). */
  private async writeUsage(read: (name: string) => Promise<KeyStatusView | undefined>): Promise<void> {
    if (!this.elector?.leading || this.usageWriting) return;
    this.usageWriting = true;
    const { logger } = this.options;
    try {
      const keys = function* (entries: Iterable<[string, CacheEntry]>): Generator<KeyObjectView> {
        for (const [name, entry] of entries) {
          const status = entry.status as KeyObjectView['status'] | undefined;
          yield { name, ...(status ? { status } : {}) };
        }
      };
      await writeUsagePass({
        keys: keys(this.keys.entries()),
        read,
        limiter: this.writes,
        patch: async (name, view) => {
          const slash = name.indexOf('/');
          await this.custom.patchNamespacedCustomObjectStatus(
            {
              group: API_GROUP,
              version: VERSION,
              namespace: name.slice(0, slash),
              plural: PLURAL.ApiKey,
              name: name.slice(slash + 1),
              body: { status: { lineage: view.lineage, usage: view.usage } },
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
        },
        onError: (name, err, during) =>
          during === 'read'
            ? logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'usage status: cannot read usage; will retry')
            : logger.warn({ resource: name, err: err instanceof Error ? err.message : String(err) }, 'usage status update failed; will retry'),
      });
    } finally {
      this.usageWriting = false;
    }
  }

  /** Patches the status of every resource whose Ready condition is out of date (leader only). */
  private writeStatuses(): void {
    if (!this.elector?.leading) return;
    if (this.writing) {
      this.writeAgain = true;
      return;
    }
    this.writing = this.writeStatusesOnce().finally(() => {
      this.writing = undefined;
      if (this.writeAgain) {
        this.writeAgain = false;
        this.writeStatuses();
      }
    });
  }

  /** Writes the Ready condition of the objects marked dirty, where it differs (rate limited). */
  private async writeStatusesOnce(): Promise<void> {
    const now = new Date();
    const retry: string[] = [];
    const all = this.statusAll;
    this.statusAll = false;
    const dirty = [...this.statusDirty];
    this.statusDirty.clear();
    const informers = new Map(this.customInformers());
    // Every object once (a new leader: the cache is walked live, not copied), or those marked.
    const work = function* (): Generator<string> {
      if (all) for (const [kind, informer] of informers) for (const k of informer.keys()) yield `${kind}/${k}`;
      else yield* dirty;
    };
    for (const key of work()) {
      const [kind, namespace, name] = key.split('/') as [Kind, string, string];
      const entry = informers.get(kind)?.get(`${namespace}/${name}`);
      if (!entry) continue; // deleted
      const obj = statusView(entry);
      if (this.queued.has(key)) {
        retry.push(key); // not applied yet: the next build marks it again
        continue;
      }
      const wanted: Condition = readyCondition(obj, this.verdictOf(key), now);
      if (statusUpToDate(obj, wanted)) continue;
      await this.writes.take();
      try {
        await this.custom.patchNamespacedCustomObjectStatus(
          { group: API_GROUP, version: VERSION, namespace, plural: PLURAL[kind], name, body: statusPatch(obj, wanted) },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        this.options.logger.debug({ resource: key, ready: wanted.status, reason: wanted.reason }, 'status written');
      } catch (err) {
        retry.push(key);
        this.options.logger.warn({ resource: key, err: err instanceof Error ? err.message : String(err) }, 'status update failed; will retry');
      }
    }
    if (retry.length > 0) {
      for (const key of retry) this.statusDirty.add(key);
      const timer = setTimeout(() => this.writeStatuses(), 2000);
      timer.unref();
    }
  }
}

/** What the status helpers read, from a cache entry. */
function statusView(entry: CacheEntry): StatusView {
  const metadata = entry.generation === undefined ? {} : { generation: entry.generation };
  const status = entry.status as StatusView['status'] | undefined;
  return status === undefined ? { metadata } : { metadata, status };
}

async function readGatewayConfig(file: string): Promise<GatewayConfigSpec | undefined> {
  const text = await readFile(file, 'utf8');
  const documents = parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return { source: file, doc: d.toJS() as unknown };
  });
  const parsed = parseResources(documents);
  if (parsed.issues.length > 0) {
    throw new Error(parsed.issues.map((i) => `${i.source}: ${i.resource}: ${i.field}: ${i.message}`).join('\n'));
  }
  return parsed.resources.gatewayConfig;
}

function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
