/**
 * Incremental snapshot building: config sources hand over the one resource that changed (an informer
 * event, a changed YAML document), and the builder recomputes only what depends on it: the key
 * itself, its descendants in the account hierarchy, the keys that reference a changed Secret, and
 * the other claimants of a key hash. Key indexes are PersistentMaps, so the new Snapshot shares every
 * unchanged entry with the previous one and building it costs the size of the change, not of the
 * config. Every Snapshot handed out stays immutable; requests in flight keep theirs.
 *
 * Equal parts of key entries (allow-lists, mappings, compiled limit rules) are interned: 100,000
 * keys with the same `models` share one matcher.
 *
 * The result equals buildSnapshot (snapshot.ts, the reference definition) of the same resources;
 * incremental.test.ts checks that for random change sequences.
 */
import type { CompiledPrice } from '../billing/pricing.js';
import { compileRules, compileToolRules, compileWildcardRules, type LimitRule, type LimitScope, type ModelScopeRules } from './limits.js';
import { ModelMapping } from './mapping.js';
import { buildModelLists, creationSeconds, type ModelLists } from './model-lists.js';
import { compileGuardrails, EMPTY_GUARDRAILS, type GuardrailIndex } from '../guardrails/compile.js';
import { NO_TENANTS, TenantIndex } from '../tenancy/hosts.js';
import { PersistentMap } from './persistent-map.js';
import { NO_SLICING, type Slicer } from './slicer.js';
import {
  admissionPrices,
  buildRoutes,
  compileDefaultPrices,
  type DefaultPrices,
  duplicateKeyProblem,
  keyEntryOf,
  keyHashOf,
  olderFirst,
  resilienceConfig,
  resolveLineage,
  type BuildResult,
  type EntryCompiler,
  type KeyEntry,
  type ResilienceConfig,
  type ResourceProblem,
  type RouteTier,
  type SecretReader,
  type Snapshot,
} from './snapshot.js';
import { EMPTY_TEMPLATES, TemplateCompiler, type TemplateIndex, type TemplateProblem } from '../templates/compile.js';
import { buildMcpConfig, EMPTY_MCP_CONFIG, type McpConfig, type McpProblem } from './mcp.js';
import { qualifiedName, type ApiKey, type GatewayConfigSpec, type KeyLimits, type MCPServer, type ModelProvider, type PromptTemplate, type SecretData } from './types.js';
import { ModelMatcher } from './wildcard.js';

/** One resource that changed; `value` undefined means deleted (or no longer valid). */
export type ResourceChange =
  | { readonly kind: 'ApiKey'; readonly name: string; readonly value: ApiKey | undefined }
  | { readonly kind: 'ModelProvider'; readonly name: string; readonly value: ModelProvider | undefined }
  | { readonly kind: 'Secret'; readonly name: string; readonly value: SecretData | undefined }
  | { readonly kind: 'GatewayConfig'; readonly name: string; readonly value: GatewayConfigSpec | undefined }
  | { readonly kind: 'MCPServer'; readonly name: string; readonly value: MCPServer | undefined }
  | { readonly kind: 'PromptTemplate'; readonly name: string; readonly value: PromptTemplate | undefined };

export type ChangeKind = ResourceChange['kind'];

/** What one build produced, beyond the snapshot. */
export interface IncrementalBuildResult extends BuildResult {
  /** `Kind/namespace/name` of resources whose problem appeared, changed or went away. */
  readonly changedProblems: ReadonlySet<string>;
  /** Keys recomputed (for logs). */
  readonly recomputedKeys: number;
}

/** A key that claims a hash (it has no other problem); served if it is the oldest claimant. */
interface Claim extends KeyEntry {
  readonly claim: string;
}

/** Bounded intern table: equal values share one object; past `limit` entries it starts over. */
class Interner<V> {
  private readonly table = new Map<string, V>();
  constructor(private readonly limit = 20_000) {}
  get(id: string, make: () => V): V {
    let v = this.table.get(id);
    if (v === undefined) {
      if (this.table.size >= this.limit) this.table.clear();
      v = make();
      this.table.set(id, v);
    }
    return v;
  }
}

const problemId = (kind: string, name: string): string => `${kind}/${name}`;

export class IncrementalSnapshotBuilder {
  private readonly keys = new Map<string, ApiKey>();
  private readonly providers = new Map<string, ModelProvider>();
  private readonly secrets = new Map<string, SecretData>();
  /** MCP servers are few: any change to one (or to a Secret one uses) rebuilds the MCP part whole. */
  private readonly mcpServers = new Map<string, MCPServer>();
  private mcpSecrets = new Set<string>();
  private mcpDirty = false;
  private mcp: McpConfig = EMPTY_MCP_CONFIG;
  /** Prompt templates are few: any change to one recompiles them all (no Secrets involved). */
  private readonly promptTemplates = new Map<string, PromptTemplate>();
  private templatesDirty = false;
  private templates: TemplateIndex = EMPTY_TEMPLATES;
  private readonly templateCompiler = new TemplateCompiler();
  private gatewayConfig: GatewayConfigSpec | undefined;
  private pricing: DefaultPrices = compileDefaultPrices(undefined);
  private admissionPrice: ReadonlyMap<string, CompiledPrice> = new Map();

  /** `namespace/parent` -> keys naming it as parent (whether or not it exists). */
  private readonly children = new Map<string, Set<string>>();
  /** `namespace/secret` -> keys whose secretRef names it. */
  private readonly secretUsers = new Map<string, Set<string>>();
  /** Secrets some provider references (a change rebuilds routes). */
  private providerSecrets = new Set<string>();
  /** Hash -> key claiming it, or the keys when several do (rare: a duplicated key). */
  private readonly claims = new Map<string, string | Set<string>>();
  /** Keys that claim a hash, with their entry (one object: the entry carries the hash it claims). */
  private readonly results = new Map<string, Claim>();
  private readonly scopes = new Map<string, LimitScope>();
  private readonly problems = new Map<string, ResourceProblem>();

  private readonly dirtyKeys = new Set<string>();
  private routesDirty = true;
  private globalDirty = true;
  private readonly changedProblems = new Set<string>();

  private keysByHash = PersistentMap.empty<KeyEntry>();
  private keysByName = PersistentMap.empty<KeyEntry>();
  private routesByModel: ReadonlyMap<string, readonly RouteTier[]> = new Map();
  private servedModels: readonly string[] = [];
  private modelLists: ModelLists = buildModelLists(new Map(), new ModelMapping(undefined), [], () => 0);
  /**
   * `namespace/name` -> when this builder first saw the provider (epoch seconds), for providers
   * without a creationTimestamp (file configs): the model lists' creation times stay put across reloads.
   */
  private readonly providerFirstSeen = new Map<string, number>();
  private globalMapping = new ModelMapping(undefined);
  private resilience: ResilienceConfig = resilienceConfig(undefined);
  private guardrails: GuardrailIndex = EMPTY_GUARDRAILS;
  private tenants: TenantIndex = NO_TENANTS;

  private readonly matchers = new Interner<ModelMatcher>();
  private readonly mappings = new Interner<ModelMapping>();
  private readonly rules = new Interner<readonly LimitRule[]>();
  private readonly perModel = new Interner<readonly ModelScopeRules[]>();
  private readonly compiler: EntryCompiler = {
    matcher: (models) => this.matchers.get(models === undefined ? '\u0001' : models.join('\u0000'), () => new ModelMatcher(models)),
    mapping: (entries) => this.mappings.get(JSON.stringify(entries ?? null), () => new ModelMapping(entries)),
  };
  private readonly readSecret: SecretReader = (meta, ref) => this.secrets.get(`${meta.namespace ?? 'default'}/${ref.name}`)?.data.get(ref.key);

  /** The resource currently held under (kind, name), to undo a change. */
  get(kind: ChangeKind, name: string): ResourceChange['value'] {
    switch (kind) {
      case 'ApiKey':
        return this.keys.get(name);
      case 'ModelProvider':
        return this.providers.get(name);
      case 'Secret':
        return this.secrets.get(name);
      case 'GatewayConfig':
        return this.gatewayConfig;
      case 'MCPServer':
        return this.mcpServers.get(name);
      case 'PromptTemplate':
        return this.promptTemplates.get(name);
    }
  }

  /** Number of resources currently not served (file mode refuses a config with any). */
  get problemCount(): number {
    return this.problems.size;
  }

  /** Problems as of the last build. */
  currentProblems(): ResourceProblem[] {
    return [...this.problems.values()];
  }

  /** The problem of a resource by `Kind/namespace/name`, or undefined when it is served. */
  problemOf(id: string): ResourceProblem | undefined {
    return this.problems.get(id);
  }

  /** Records one change; the work happens in build(). Cheap: O(1) plus the key's descendants. */
  apply(change: ResourceChange): void {
    switch (change.kind) {
      case 'ApiKey':
        return this.applyKey(change.name, change.value);
      case 'ModelProvider':
        if (change.value) this.providers.set(change.name, change.value);
        else this.providers.delete(change.name);
        this.routesDirty = true;
        return;
      case 'Secret': {
        if (change.value) this.secrets.set(change.name, change.value);
        else this.secrets.delete(change.name);
        for (const user of this.secretUsers.get(change.name) ?? []) this.dirtyKeys.add(user);
        if (this.providerSecrets.has(change.name)) this.routesDirty = true;
        if (this.mcpSecrets.has(change.name)) this.mcpDirty = true;
        return;
      }
      case 'MCPServer':
        if (change.value) this.mcpServers.set(change.name, change.value);
        else this.mcpServers.delete(change.name);
        this.mcpDirty = true;
        return;
      case 'PromptTemplate':
        if (change.value) this.promptTemplates.set(change.name, change.value);
        else this.promptTemplates.delete(change.name);
        this.templatesDirty = true;
        return;
      case 'GatewayConfig':
        this.gatewayConfig = change.value;
        this.globalDirty = true;
        return;
    }
  }

  private applyKey(name: string, value: ApiKey | undefined): void {
    const old = this.keys.get(name);
    if (old) {
      const ns = old.metadata.namespace ?? 'default';
      if (old.spec.parent !== undefined) removeFrom(this.children, `${ns}/${old.spec.parent}`, name);
      if (old.spec.secretRef) removeFrom(this.secretUsers, `${ns}/${old.spec.secretRef.name}`, name);
    }
    if (value) {
      const ns = value.metadata.namespace ?? 'default';
      if (value.spec.parent !== undefined) addTo(this.children, `${ns}/${value.spec.parent}`, name);
      if (value.spec.secretRef) addTo(this.secretUsers, `${ns}/${value.spec.secretRef.name}`, name);
      this.keys.set(name, value);
    } else {
      this.keys.delete(name);
    }
    if (value) this.scopes.set(name, this.compileScope(name, value.spec.limits));
    else this.scopes.delete(name);
    // The key and everything below it in the hierarchy (their lineage and limit scopes include it).
    // (A local visited set: a key may already be dirty for another reason, a Secret say, without
    // its descendants being marked.)
    const seen = new Set<string>([name]);
    const queue = [name];
    while (queue.length > 0) {
      const n = queue.pop() as string;
      this.dirtyKeys.add(n);
      for (const child of this.children.get(n) ?? []) {
        if (!seen.has(child)) {
          seen.add(child);
          queue.push(child);
        }
      }
    }
  }

  /** Recomputes what the recorded changes affect and returns the new snapshot. */
  async build(version: number, slicer: Slicer = NO_SLICING, now: Date = new Date()): Promise<IncrementalBuildResult> {
    if (this.globalDirty) {
      this.globalMapping = new ModelMapping(this.gatewayConfig?.modelMappings);
      this.resilience = resilienceConfig(this.gatewayConfig?.resilience);
      this.guardrails = compileGuardrails(this.gatewayConfig?.guardrails);
      this.tenants = new TenantIndex(this.gatewayConfig?.tenants);
      // Route prices fall back to the default table: a GatewayConfig change re-prices every route.
      this.pricing = compileDefaultPrices(this.gatewayConfig?.pricing);
      this.routesDirty = true;
      this.globalDirty = false;
    }
    if (this.routesDirty) this.rebuildRoutes(now);
    if (this.mcpDirty) this.rebuildMcp();
    if (this.templatesDirty) this.rebuildTemplates();

    const affectedHashes = new Set<string>();
    const touched = new Set<string>();
    const recomputedKeys = this.dirtyKeys.size;
    for (const name of this.dirtyKeys) {
      this.recomputeKey(name, affectedHashes, touched);
      if (slicer.tick()) await slicer.pause();
    }
    this.dirtyKeys.clear();

    const hashChanges = new Map<string, KeyEntry | undefined>();
    for (const hash of affectedHashes) {
      const holder = this.holderOf(hash);
      hashChanges.set(hash, holder === undefined ? undefined : this.results.get(holder));
      for (const claimant of this.claimants(hash)) {
        touched.add(claimant);
        const id = problemId('ApiKey', claimant);
        const key = this.keys.get(claimant);
        if (claimant === holder || !key || holder === undefined) this.setProblem(id, undefined);
        else this.setProblem(id, duplicateKeyProblem(key, claimant, holder));
      }
      if (slicer.tick()) await slicer.pause();
    }
    const nameChanges = new Map<string, KeyEntry | undefined>();
    for (const name of touched) {
      const r = this.results.get(name);
      nameChanges.set(name, r !== undefined && this.holderOf(r.claim) === name ? r : undefined);
    }
    this.keysByHash = await this.keysByHash.updateSliced(hashChanges, slicer);
    this.keysByName = await this.keysByName.updateSliced(nameChanges, slicer);

    const snapshot: Snapshot = {
      version,
      builtAt: now.toISOString(),
      keysByHash: this.keysByHash,
      keysByName: this.keysByName,
      routesByModel: this.routesByModel,
      globalMapping: this.globalMapping,
      servedModels: this.servedModels,
      modelLists: this.modelLists,
      resilience: this.resilience,
      guardrails: this.guardrails,
      tenants: this.tenants,
      currency: this.pricing.currency,
      admissionPrice: this.admissionPrice,
      mcp: this.mcp,
      templates: this.templates,
    };
    const changedProblems = new Set(this.changedProblems);
    this.changedProblems.clear();
    return { snapshot, problems: this.currentProblems(), changedProblems, recomputedKeys };
  }

  private rebuildTemplates(): void {
    const problems: TemplateProblem[] = [];
    this.templates = this.templateCompiler.compile([...this.promptTemplates.values()], problems);
    for (const id of this.problems.keys()) if (id.startsWith('PromptTemplate/')) this.setProblem(id, undefined);
    for (const p of problems) this.setProblem(problemId(p.kind, p.name), p);
    this.templatesDirty = false;
  }

  private rebuildMcp(): void {
    const problems: McpProblem[] = [];
    this.mcp = buildMcpConfig([...this.mcpServers.values()], this.readSecret, problems);
    for (const id of this.problems.keys()) if (id.startsWith('MCPServer/')) this.setProblem(id, undefined);
    for (const p of problems) this.setProblem(problemId(p.kind, p.name), p);
    const secrets = new Set<string>();
    for (const m of this.mcpServers.values()) {
      if (m.spec.credential) secrets.add(`${m.metadata.namespace ?? 'default'}/${m.spec.credential.secretRef.name}`);
    }
    this.mcpSecrets = secrets;
    this.mcpDirty = false;
  }

  private rebuildRoutes(now: Date): void {
    const problems: ResourceProblem[] = [];
    const routes = buildRoutes(this.providers.values(), this.readSecret, problems, this.pricing);
    for (const id of this.problems.keys()) if (id.startsWith('ModelProvider/')) this.setProblem(id, undefined);
    for (const p of problems) this.setProblem(problemId(p.kind, p.name), p);
    const secrets = new Set<string>();
    for (const p of this.providers.values()) {
      if (p.spec.credentialSecretRef) secrets.add(`${p.metadata.namespace ?? 'default'}/${p.spec.credentialSecretRef.name}`);
    }
    this.providerSecrets = secrets;
    this.routesByModel = routes;
    this.admissionPrice = admissionPrices(routes);
    this.servedModels = [...routes.keys()].sort();
    // Depends on the routes and on the mappings (a GatewayConfig change marks the routes dirty too).
    this.modelLists = buildModelLists(routes, this.globalMapping, this.tenants.all, this.providerCreation(now));
    this.routesDirty = false;
  }

  /** Creation times of the current providers (creationTimestamp, else first seen); forgets removed ones. */
  private providerCreation(now: Date): (provider: string) => number {
    const nowSeconds = Math.floor(now.getTime() / 1000);
    const created = new Map<string, number>();
    for (const p of this.providers.values()) {
      const name = qualifiedName(p.metadata);
      let seconds = creationSeconds(p.metadata.creationTimestamp);
      if (seconds === undefined) {
        seconds = this.providerFirstSeen.get(name) ?? nowSeconds;
        this.providerFirstSeen.set(name, seconds);
      }
      created.set(name, seconds);
    }
    for (const name of this.providerFirstSeen.keys()) if (!created.has(name)) this.providerFirstSeen.delete(name);
    return (name) => created.get(name) ?? nowSeconds;
  }

  private recomputeKey(name: string, affectedHashes: Set<string>, touched: Set<string>): void {
    touched.add(name);
    const old = this.results.get(name);
    if (old !== undefined) {
      this.unclaim(old.claim, name);
      affectedHashes.add(old.claim);
    }
    const id = problemId('ApiKey', name);
    const key = this.keys.get(name);
    if (!key) {
      this.results.delete(name);
      this.setProblem(id, undefined);
      return;
    }
    const chain = resolveLineage(key, (n) => this.keys.get(n), (k) => this.scopeOf(k));
    if ('reason' in chain) {
      this.results.delete(name);
      this.setProblem(id, chain);
      return;
    }
    if (key.spec.accountOnly) {
      this.results.delete(name);
      this.setProblem(id, undefined);
      return;
    }
    const hash = keyHashOf(key, name, this.readSecret);
    if (typeof hash !== 'string') {
      this.results.delete(name);
      this.setProblem(id, hash);
      return;
    }
    this.setProblem(id, undefined); // a DuplicateKey problem, if any, is decided per hash
    this.results.set(name, keyEntryOf(key, name, chain, this.compiler, hash) as Claim);
    this.claim(hash, name);
    affectedHashes.add(hash);
  }

  private claimants(hash: string): Iterable<string> {
    const c = this.claims.get(hash);
    return c === undefined ? [] : typeof c === 'string' ? [c] : c;
  }

  private claim(hash: string, name: string): void {
    const c = this.claims.get(hash);
    if (c === undefined) this.claims.set(hash, name);
    else if (typeof c === 'string') this.claims.set(hash, new Set([c, name]));
    else c.add(name);
  }

  private unclaim(hash: string, name: string): void {
    const c = this.claims.get(hash);
    if (c === name) this.claims.delete(hash);
    else if (typeof c === 'object') {
      c.delete(name);
      if (c.size === 1) this.claims.set(hash, c.values().next().value as string);
    }
  }

  /** The oldest key claiming `hash` (the one served), or undefined when none does. */
  private holderOf(hash: string): string | undefined {
    const claimants = this.claims.get(hash);
    if (claimants === undefined) return undefined;
    if (typeof claimants === 'string') return claimants;
    let best: string | undefined;
    let bestKey: ApiKey | undefined;
    for (const c of claimants) {
      const k = this.keys.get(c);
      if (!k) continue;
      if (!bestKey || olderFirst(k, bestKey) < 0) {
        best = c;
        bestKey = k;
      }
    }
    return best;
  }

  /** Compiled in applyKey, under the key's own name string (shared by the entry and the maps). */
  private scopeOf(key: ApiKey): LimitScope {
    const id = qualifiedName(key.metadata);
    return this.scopes.get(id) ?? this.compileScope(id, key.spec.limits);
  }

  private compileScope(id: string, limits: KeyLimits | undefined): LimitScope {
    const rules = this.rules.get(
      // Every rule field is part of the cache key (a field left out would share another key's rules).
      limits ? `${limits.requestsPerMinute},${limits.requestsPerDay},${limits.tokensPerMinute},${limits.tokensPerDay},${limits.tokensPerMonth},${limits.costPerMonth},${limits.costPerDay}` : '',
      () => compileRules(limits),
    );
    const perModel = limits?.perModel?.length
      ? this.perModel.get(JSON.stringify(limits.perModel), () => compileWildcardRules(limits.perModel ?? []))
      : NO_PER_MODEL;
    return { id, rules, perModel, toolRules: compileToolRules(limits), monthTimeZone: limits?.monthTimeZone ?? 'UTC' };
  }

  private setProblem(id: string, problem: ResourceProblem | undefined): void {
    const old = this.problems.get(id);
    if (problem === undefined) {
      if (old === undefined) return;
      this.problems.delete(id);
    } else {
      if (old && old.reason === problem.reason && old.message === problem.message && old.field === problem.field) return;
      this.problems.set(id, problem);
    }
    this.changedProblems.add(id);
  }
}

const NO_PER_MODEL: readonly ModelScopeRules[] = [];

function addTo(index: Map<string, Set<string>>, key: string, value: string): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom(index: Map<string, Set<string>>, key: string, value: string): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}
