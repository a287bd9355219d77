/**
 * Kubernetes config source: informers on ModelProvider, ApiKey and the labelled Secrets of one
 * namespace feed the same pure pipeline as file mode (parseResources -> buildSnapshot ->
 * ConfigStore.swap). Bursts of events are debounced into one rebuild. Readiness comes only after
 * every informer's first full list. Resources that are wrong in meaning are left out of the
 * snapshot and get a Ready=False condition (written by the Lease holder only); everything else
 * keeps serving. While the API server is unreachable the last snapshot stays in force.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Secret,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { parseResources, type SourcedDocument } from '../config/parse.js';
import { buildSnapshot } from '../config/snapshot.js';
import type { ConfigStore } from '../config/store.js';
import { API_GROUP, type Condition, type GatewayConfigSpec } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { LeaderElector } from './leader.js';
import { ResilientInformer } from './informer.js';
import type { UsageStatus } from '../config/types.js';
import { usageUpToDate, type KeyStatusView } from '../usage/status.js';
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
type Kind = 'ModelProvider' | 'ApiKey' | 'MCPServer';
const PLURAL: Readonly<Record<Kind, string>> = { ModelProvider: 'modelproviders', ApiKey: 'apikeys', MCPServer: 'mcpservers' };

export class KubernetesConfigSource {
  private readonly kc: KubeConfig;
  private readonly custom: CustomObjectsApi;
  private readonly providers: ResilientInformer<CustomObject>;
  private readonly keys: ResilientInformer<CustomObject>;
  private readonly mcpServers: ResilientInformer<CustomObject>;
  private readonly secrets: ResilientInformer<V1Secret>;
  private readonly elector: LeaderElector | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private version = 0;
  private fingerprint = '';
  private gatewayConfig: GatewayConfigSpec | undefined;
  private gatewayWatcher: FSWatcher | undefined;
  private gatewayTimer: NodeJS.Timeout | undefined;
  private gatewayReads = 0;
  /** Latest verdict per `Kind/ns/name`, for the status writer. */
  private verdicts = new Map<string, Verdict | undefined>();
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
    const core = this.kc.makeApiClient(CoreV1Api);
    const ns = options.namespace;
    const log = options.logger;
    const onChange = (): void => this.schedule();
    const customInformer = (kind: Kind): ResilientInformer<CustomObject> =>
      new ResilientInformer<CustomObject>({
        name: kind,
        kubeConfig: this.kc,
        path: `/apis/${API_GROUP}/${VERSION}/namespaces/${ns}/${PLURAL[kind]}`,
        list: () =>
          this.custom.listNamespacedCustomObject({ group: API_GROUP, version: VERSION, namespace: ns, plural: PLURAL[kind] }) as Promise<
            KubernetesListObject<CustomObject>
          >,
        logger: log,
        onChange,
      });
    this.providers = customInformer('ModelProvider');
    this.keys = customInformer('ApiKey');
    this.mcpServers = customInformer('MCPServer');
    const selector = options.secretSelector ?? DEFAULT_SECRET_SELECTOR;
    this.secrets = new ResilientInformer<V1Secret>({
      name: 'Secret',
      kubeConfig: this.kc,
      path: `/api/v1/namespaces/${ns}/secrets`,
      list: () => core.listNamespacedSecret({ namespace: ns, labelSelector: selector }),
      labelSelector: selector,
      logger: log,
      onChange,
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
    await Promise.all([this.providers.start(), this.keys.start(), this.mcpServers.start(), this.secrets.start()]);
    this.started = true;
    this.rebuild();
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
    void this.secrets.stop();
  }

  /** True while every watch is connected (the snapshot may be stale otherwise). */
  get watching(): boolean {
    return this.providers.watching && this.keys.watching && this.mcpServers.watching && this.secrets.watching;
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
      this.rebuild();
    }, this.options.debounceMs ?? 50);
  }

  /** Builds and swaps a snapshot from the informer caches (if anything that matters changed). */
  private rebuild(): void {
    const { logger, store } = this.options;
    const providers = this.providers.list();
    const keys = this.keys.list();
    const mcpServers = this.mcpServers.list();
    const secrets = this.secrets.list();
    const fingerprint = fingerprintOf(providers, [...keys, ...mcpServers], secrets, this.gatewayConfig);
    if (fingerprint !== this.fingerprint) {
      const documents: SourcedDocument[] = [
        ...providers.map((o) => ({ source: 'kubernetes', doc: { ...o, kind: 'ModelProvider' } })),
        ...keys.map((o) => ({ source: 'kubernetes', doc: { ...o, kind: 'ApiKey' } })),
        ...mcpServers.map((o) => ({ source: 'kubernetes', doc: { ...o, kind: 'MCPServer' } })),
        ...secrets.map((s) => ({ source: 'kubernetes', doc: { kind: 'Secret', metadata: s.metadata, data: s.data ?? {} } })),
      ];
      const parsed = parseResources(documents);
      const resources = this.gatewayConfig ? { ...parsed.resources, gatewayConfig: this.gatewayConfig } : parsed.resources;
      const { snapshot, problems } = buildSnapshot(resources, this.version + 1);
      const verdicts = new Map<string, Verdict | undefined>();
      for (const o of providers) verdicts.set(keyOf('ModelProvider', o), undefined);
      for (const o of keys) verdicts.set(keyOf('ApiKey', o), undefined);
      for (const o of mcpServers) verdicts.set(keyOf('MCPServer', o), undefined);
      for (const issue of parsed.issues) {
        // resource is `Kind ns/name`; Secrets with bad data only affect who references them.
        const [kind, name] = issue.resource.split(' ');
        if (kind === 'ModelProvider' || kind === 'ApiKey' || kind === 'MCPServer') {
          verdicts.set(`${kind}/${name}`, { reason: 'Invalid', message: `${issue.field ? issue.field + ': ' : ''}${issue.message}` });
        }
      }
      for (const p of problems) verdicts.set(`${p.kind}/${p.name}`, { reason: p.reason, message: p.message });
      this.fingerprint = fingerprint;
      this.version += 1;
      this.verdicts = verdicts;
      store.swap(snapshot);
      const notServed = [...verdicts.entries()].filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v?.reason}: ${v?.message}`);
      logger.info(
        { version: snapshot.version, keys: snapshot.keysByHash.size, models: snapshot.servedModels.length, notServed },
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
        this.mcpServers.list().map(async (obj) => {
          const name = `${obj.metadata?.namespace ?? this.options.namespace}/${obj.metadata?.name ?? ''}`;
          const view = await probe(name).catch(() => undefined);
          if (!view) return; // not served (its Ready condition says why)
          const wanted = toolsCondition(obj, view, new Date());
          const tools = view.state === 'up' ? view.tools : undefined;
          if (discoveryUpToDate(obj, wanted, tools)) return;
          try {
            await this.custom.patchNamespacedCustomObjectStatus(
              {
                group: API_GROUP,
                version: VERSION,
                namespace: obj.metadata?.namespace ?? this.options.namespace,
                plural: PLURAL.MCPServer,
                name: obj.metadata?.name ?? '',
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
    try {
      for (const obj of this.keys.list()) {
        const name = `${obj.metadata?.namespace ?? this.options.namespace}/${obj.metadata?.name ?? ''}`;
        let view: KeyStatusView | undefined;
        try {
          view = await read(name);
        } catch (err) {
          this.options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'usage status: cannot read usage; will retry');
          return;
        }
        const current = (obj as { status?: { usage?: Partial<UsageStatus>; lineage?: string } }).status;
        if (!view || (usageUpToDate(current?.usage, view.usage) && current?.lineage === view.lineage)) continue;
        try {
          await this.custom.patchNamespacedCustomObjectStatus(
            {
              group: API_GROUP,
              version: VERSION,
              namespace: obj.metadata?.namespace ?? this.options.namespace,
              plural: PLURAL.ApiKey,
              name: obj.metadata?.name ?? '',
              body: { status: { lineage: view.lineage, usage: view.usage } },
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
        } catch (err) {
          this.options.logger.warn({ resource: name, err: err instanceof Error ? err.message : String(err) }, 'usage status update failed; will retry');
        }
      }
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

  private async writeStatusesOnce(): Promise<void> {
    const now = new Date();
    let failed = false;
    for (const [kind, informer] of [['ModelProvider', this.providers], ['ApiKey', this.keys], ['MCPServer', this.mcpServers]] as const) {
      for (const obj of informer.list()) {
        const key = keyOf(kind, obj);
        if (!this.verdicts.has(key)) continue; // created after the last rebuild; the next one covers it
        const wanted: Condition = readyCondition(obj, this.verdicts.get(key), now);
        if (statusUpToDate(obj, wanted)) continue;
        try {
          await this.custom.patchNamespacedCustomObjectStatus(
            {
              group: API_GROUP,
              version: VERSION,
              namespace: obj.metadata?.namespace ?? this.options.namespace,
              plural: PLURAL[kind],
              name: obj.metadata?.name ?? '',
              body: statusPatch(obj, wanted),
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
          this.options.logger.debug({ resource: key, ready: wanted.status, reason: wanted.reason }, 'status written');
        } catch (err) {
          failed = true;
          this.options.logger.warn({ resource: key, err: err instanceof Error ? err.message : String(err) }, 'status update failed; will retry');
        }
      }
    }
    if (failed) {
      const retry = setTimeout(() => this.writeStatuses(), 2000);
      retry.unref();
    }
  }
}

function keyOf(kind: Kind, obj: KubernetesObject): string {
  return `${kind}/${obj.metadata?.namespace ?? 'default'}/${obj.metadata?.name ?? ''}`;
}

/**
 * What a snapshot depends on: spec generations of our resources and Secret versions. Status-only
 * updates (our own condition writes, usage) do not change it, so they cause no rebuild loop.
 */
function fingerprintOf(
  providers: readonly CustomObject[],
  keys: readonly CustomObject[],
  secrets: readonly V1Secret[],
  gatewayConfig: GatewayConfigSpec | undefined,
): string {
  const parts: string[] = [];
  for (const o of providers) parts.push(`p:${o.metadata?.uid}:${o.metadata?.generation}`);
  for (const o of keys) parts.push(`k:${o.metadata?.uid}:${o.metadata?.generation}`);
  for (const s of secrets) parts.push(`s:${s.metadata?.uid}:${s.metadata?.resourceVersion}`);
  parts.sort();
  parts.push(JSON.stringify(gatewayConfig ?? null));
  return createHash('sha256').update(parts.join('\n')).digest('hex');
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
