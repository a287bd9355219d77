/**
 * The runtime config the hot path reads: an immutable Snapshot built by a pure function from the
 * user's resources. Indexes are precomputed (key hash -> key, model -> provider tiers, compiled
 * mappings) so a request does only map lookups. Resources that are valid in shape but wrong in
 * meaning (missing Secret, duplicate key) are left out and reported as problems.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_CURRENCY } from '../billing/money.js';
import { compilePrice, maxPrice, type CompiledPrice } from '../billing/pricing.js';
import { chainHasRules, chainHasTokenRules, compileRules, compileScope, isValidTimeZone, type LimitRule, type LimitScope } from './limits.js';
import { ModelMapping } from './mapping.js';
import { buildModelLists, creationSeconds, type ModelLists } from './model-lists.js';
import { compileTemplates, type TemplateIndex, type TemplateProblem } from '../templates/compile.js';
import { buildMcpConfig, mcpKeyPolicy, type McpConfig, type McpKeyPolicy, type McpProblem } from './mcp.js';
import {
  qualifiedName,
  type BalancingStrategy,
  type ResilienceSpec,
  type ApiKey,
  type MidStreamPolicy,
  type ModelProvider,
  type ObjectMeta,
  type ModelPricing,
  type PricingSpec,
  type ParameterRules,
  type ProviderType,
  type ResourceSet,
  type SecretData,
  type SecretKeyRef,
} from './types.js';
import { compileWildcard, ModelMatcher, type WildcardPattern } from './wildcard.js';
import type { AllowList } from '../guardrails/cidr.js';
import { allowListOf, guardrailNamesOf } from '../guardrails/safety.js';
import { compileGuardrails, type GuardrailIndex } from '../guardrails/compile.js';
import { HostMatcher, TenantIndex } from '../tenancy/hosts.js';

/** A key as the hot path sees it. Never holds the clear key. */
export interface KeyEntry {
  /** `namespace/name`: the consumer label in logs and metrics. */
  readonly name: string;
  readonly disabled: boolean;
  /** Epoch ms after which the key is refused, or undefined for never. */
  readonly expiresAtMs: number | undefined;
  readonly allowedModels: ModelMatcher;
  readonly mapping: ModelMapping;
  /** `.root.child.self.` (names in the key's namespace): its place in the account hierarchy. */
  readonly lineage: string;
  /** The key itself first, then each ancestor up to the root. A request counts against all of them. */
  readonly limitScopes: readonly LimitScope[];
  /** Any rule at all in the chain (else the limits step is skipped). */
  readonly hasLimits: boolean;
  /** Any token rule in the chain (else no token estimate or usage reconciliation is needed). */
  readonly hasTokenLimits: boolean;
  readonly midStreamPolicy: MidStreamPolicy;
  /** Client address allow-lists of the key and its ancestors (all must allow); undefined = anywhere. */
  readonly allowList: AllowList | undefined;
  /** Guardrail names referenced by the key or an ancestor (GatewayConfig spec.guardrails). */
  readonly guardrails: readonly string[];
  /** Hostnames the key may be used on (ApiKey spec.hosts); undefined = any. */
  readonly hosts: HostMatcher | undefined;
  /** MCP servers and tools the key may use; undefined = none (ApiKey.spec.mcp absent). */
  readonly mcp: McpKeyPolicy | undefined;
}

/** Parsed provider endpoint. */
export interface Endpoint {
  readonly scheme: 'http' | 'https';
  /** host[:port] as sent in :authority. */
  readonly authority: string;
  /** Base path without trailing slash, for example `/v1` (may be empty). */
  readonly basePath: string;
}

/** A provider as the hot path sees it. */
export interface ProviderEntry {
  readonly name: string;
  readonly type: ProviderType;
  readonly endpoint: Endpoint;
  /** Credential from the referenced Secret; undefined when none is configured. */
  readonly credential: string | undefined;
  readonly apiVersion: string | undefined;
  /** AWS region (aws-bedrock), when the ModelProvider sets one. */
  readonly region?: string;
  readonly priority: number;
  readonly weight: number;
  /** Per-attempt time to first byte, or undefined for Envoy's default. */
  readonly firstByteTimeoutMs: number | undefined;
  /** Set when the provider is a Service whose endpoints are discovered (self-hosted engines). */
  readonly service: { readonly namespace: string; readonly name: string; readonly port: number } | undefined;
}

/** Resilience settings with defaults applied (GatewayConfig.spec.resilience). */
export interface ResilienceConfig {
  readonly strategy: BalancingStrategy;
  readonly maxAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly consecutiveFailures: number;
  /** 0 = the failure-rate rule is off. */
  readonly failureRatePercent: number;
  readonly failureWindow: number;
  readonly failureMinRequests: number;
  readonly cooldownMs: number;
  readonly maxCooldownMs: number;
  readonly maxRetryAfterMs: number;
  /** Last-resort requests per second per target that is out (0 = hard-open). */
  readonly probeBudgetPerSecond: number;
  readonly endpointPicker: { readonly address: string; readonly timeoutMs: number } | undefined;
}

/** Builds the runtime resilience settings from the user's spec. */
export function resilienceConfig(spec: ResilienceSpec | undefined): ResilienceConfig {
  const cb = spec?.circuitBreaker;
  const cooldownMs = 1000 * (cb?.cooldownSeconds ?? 30);
  return {
    strategy: spec?.strategy ?? 'weighted',
    maxAttempts: spec?.maxAttempts ?? 3,
    backoffBaseMs: spec?.backoff?.baseMs ?? 100,
    backoffMaxMs: spec?.backoff?.maxMs ?? 2000,
    consecutiveFailures: cb?.consecutiveFailures ?? 5,
    failureRatePercent: cb?.failureRatePercent ?? 0,
    failureWindow: cb?.window ?? 20,
    failureMinRequests: Math.min(cb?.minRequests ?? 10, cb?.window ?? 20),
    cooldownMs,
    maxCooldownMs: Math.max(cooldownMs, 1000 * (cb?.maxCooldownSeconds ?? 300)),
    maxRetryAfterMs: 1000 * (cb?.maxRetryAfterSeconds ?? 300),
    probeBudgetPerSecond: cb?.probeBudgetPerSecond ?? 5,
    endpointPicker: spec?.endpointPicker
      ? { address: spec.endpointPicker.address, timeoutMs: spec.endpointPicker.timeoutMs ?? 50 }
      : undefined,
  };
}

/** One way to serve a model: a provider and the name it knows the model by. */
export interface ModelRoute {
  readonly provider: ProviderEntry;
  readonly upstreamModel: string;
  /** Provider protection rules for this model at this provider (empty when none). */
  readonly limits: readonly LimitRule[];
  /** Scope id of those rules: `provider:<namespace/name>:<model>`. */
  readonly limitScopeId: string;
  /** What this provider charges for this model (its own pricing, else the default table); undefined = free. */
  readonly price?: CompiledPrice;
  /** max_tokens for translated APIs that require one, when the client gave none (ProviderModel.maxTokens). */
  readonly defaultMaxTokens?: number;
  /** `<think>` filter of OpenAI-style engines (ProviderModel.reasoningTags; `keep` = absent). */
  readonly reasoningTags?: 'extract' | 'strip';
  /** Request parameter rules (ProviderModel.parameters). */
  readonly parameters?: ParameterRules;
}

/** Routes of one priority, with their total weight precomputed for weighted choice. */
export interface RouteTier {
  readonly priority: number;
  readonly routes: readonly ModelRoute[];
  readonly totalWeight: number;
}

/** Why a resource is not served. */
export type ProblemReason = 'Invalid' | 'SecretNotFound' | 'DuplicateKey' | 'ParentNotFound' | 'ParentCycle';

export interface ResourceProblem {
  readonly kind: 'ModelProvider' | 'ApiKey' | 'MCPServer' | 'PromptTemplate';
  /** `namespace/name`. */
  readonly name: string;
  readonly reason: ProblemReason;
  /** The spec field at fault, for example `spec.credentialSecretRef`, when known. */
  readonly field?: string;
  readonly message: string;
}

/** The immutable runtime config. */
export interface Snapshot {
  readonly version: number;
  readonly builtAt: string;
  readonly keysByHash: ReadonlyMap<string, KeyEntry>;
  /** Served keys by `namespace/name` (status writers; never the request path). */
  readonly keysByName: ReadonlyMap<string, KeyEntry>;
  /** Model name (after mapping) -> tiers in ascending priority. */
  readonly routesByModel: ReadonlyMap<string, readonly RouteTier[]>;
  readonly globalMapping: ModelMapping;
  /** Served model names, sorted. */
  readonly servedModels: readonly string[];
  /** What GET /v1/models lists, gateway-wide and per tenant, before the key's filter (src/config/model-lists.ts). */
  readonly modelLists: ModelLists;
  readonly resilience: ResilienceConfig;
  /** Guardrails compiled from GatewayConfig spec.guardrails (src/guardrails/compile.ts). */
  readonly guardrails: GuardrailIndex;
  /** Tenants by domain (GatewayConfig spec.tenants, src/tenancy/hosts.ts). */
  readonly tenants: TenantIndex;
  /** Currency of every price and money budget (GatewayConfig pricing.currency, default USD). */
  readonly currency: string;
  /**
   * Per served model, the highest price among its routes, field by field: money budgets reserve at
   * admission with it (the provider that will answer is not known yet; failover may pick any).
   */
  readonly admissionPrice: ReadonlyMap<string, CompiledPrice>;
  /** MCP servers (src/config/mcp.ts). */
  readonly mcp: McpConfig;
  /** Prompt templates, compiled (src/templates/compile.ts). */
  readonly templates: TemplateIndex;
}

export interface BuildResult {
  readonly snapshot: Snapshot;
  readonly problems: readonly ResourceProblem[];
}

/** `sha256:<hex>` of a clear key, as stored in ApiKey.spec.keyHash and used as index. */
export function hashKey(clearKey: string): string {
  return 'sha256:' + createHash('sha256').update(clearKey).digest('hex');
}

/** Parses a provider endpoint URL (already checked against the schema pattern). */
export function parseEndpoint(url: string): Endpoint {
  const u = new URL(url);
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  return { scheme, authority: u.host, basePath: u.pathname.replace(/\/+$/, '') };
}

/** Builds a snapshot. Pure apart from reading `now` for `builtAt`. */
export function buildSnapshot(resources: ResourceSet, version: number, now: Date = new Date()): BuildResult {
  const problems: ResourceProblem[] = [];
  const secrets = indexSecrets(resources.secrets);
  const readSecret = (meta: ObjectMeta, ref: SecretKeyRef): string | undefined =>
    secrets.get(`${meta.namespace ?? 'default'}/${ref.name}`)?.get(ref.key);

  const keysByHash = buildKeys(resources.apiKeys, readSecret, problems);
  const pricing = compileDefaultPrices(resources.gatewayConfig?.pricing);
  const routesByModel = buildRoutes(resources.providers, readSecret, problems, pricing);
  const mcpProblems: McpProblem[] = [];
  const mcp = buildMcpConfig(resources.mcpServers ?? [], readSecret, mcpProblems);
  problems.push(...mcpProblems);
  const templateProblems: TemplateProblem[] = [];
  const templates = compileTemplates(resources.promptTemplates ?? [], templateProblems);
  problems.push(...templateProblems);
  const globalMapping = new ModelMapping(resources.gatewayConfig?.modelMappings);
  const tenants = new TenantIndex(resources.gatewayConfig?.tenants);
  // A provider without a creationTimestamp (a file config) is first seen now.
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const providerCreated = new Map<string, number>();
  for (const p of resources.providers) providerCreated.set(qualifiedName(p.metadata), creationSeconds(p.metadata.creationTimestamp) ?? nowSeconds);
  const snapshot: Snapshot = {
    version,
    builtAt: now.toISOString(),
    keysByHash,
    keysByName: new Map([...keysByHash.values()].map((k) => [k.name, k])),
    routesByModel,
    globalMapping,
    servedModels: [...routesByModel.keys()].sort(),
    modelLists: buildModelLists(routesByModel, globalMapping, tenants.all, (name) => providerCreated.get(name) ?? nowSeconds),
    resilience: resilienceConfig(resources.gatewayConfig?.resilience),
    guardrails: compileGuardrails(resources.gatewayConfig?.guardrails),
    tenants,
    currency: pricing.currency,
    admissionPrice: admissionPrices(routesByModel),
    mcp,
    templates,
  };
  return { snapshot, problems };
}

/** GatewayConfig's currency and default price table, compiled. */
export interface DefaultPrices {
  readonly currency: string;
  readonly table: readonly { readonly matcher: WildcardPattern; readonly price: CompiledPrice }[];
}

/** Compiles the default table; malformed entries cannot reach here (schema-validated) and are skipped. */
export function compileDefaultPrices(spec: PricingSpec | undefined): DefaultPrices {
  const currency = spec?.currency ?? DEFAULT_CURRENCY;
  const table: { matcher: WildcardPattern; price: CompiledPrice }[] = [];
  for (const entry of spec?.models ?? []) {
    const price = compilePrice(entry, currency);
    if ('error' in price || price.currency !== currency) continue;
    table.push({ matcher: compileWildcard(entry.model), price });
  }
  return { currency, table };
}

/** The default price of a model: the first entry matching its served name, else its upstream name. */
export function defaultPrice(prices: DefaultPrices, model: string, upstreamModel: string): CompiledPrice | undefined {
  for (const e of prices.table) if (e.matcher.test(model)) return e.price;
  for (const e of prices.table) if (e.matcher.test(upstreamModel)) return e.price;
  return undefined;
}

export function admissionPrices(routesByModel: ReadonlyMap<string, readonly RouteTier[]>): Map<string, CompiledPrice> {
  const out = new Map<string, CompiledPrice>();
  for (const [model, tiers] of routesByModel) {
    const prices = tiers.flatMap((t) => t.routes.map((r) => r.price)).filter((p): p is CompiledPrice => p !== undefined);
    const max = maxPrice(prices);
    if (max) out.set(model, max);
  }
  return out;
}

/**
 * A provider model's price. A price in another currency than the gateway's cannot be added to its
 * budgets: it is reported, and the default table's price (if any) applies instead.
 */
function routePrice(
  pricing: ModelPricing | undefined,
  defaults: DefaultPrices,
  model: string,
  upstreamModel: string,
  report: (field: string, message: string) => void,
): CompiledPrice | undefined {
  if (pricing) {
    const price = compilePrice(pricing, defaults.currency);
    if ('error' in price) report(`pricing.${price.error}`, `price of model ${model} is not a decimal string with at most 6 decimals`);
    else if (price.currency !== defaults.currency) {
      report('pricing.currency', `price of model ${model} is in ${price.currency} but the gateway currency is ${defaults.currency}; the default price applies`);
    } else return price;
  }
  return defaultPrice(defaults, model, upstreamModel);
}

function indexSecrets(secrets: readonly SecretData[]): Map<string, ReadonlyMap<string, string>> {
  const index = new Map<string, ReadonlyMap<string, string>>();
  for (const s of secrets) index.set(`${s.namespace}/${s.name}`, s.data);
  return index;
}

export type SecretReader = (meta: ObjectMeta, ref: SecretKeyRef) => string | undefined;

function buildKeys(apiKeys: readonly ApiKey[], readSecret: SecretReader, problems: ResourceProblem[]): Map<string, KeyEntry> {
  // Oldest first, so a newly created duplicate never takes over an existing key's identity.
  const ordered = [...apiKeys].sort(olderFirst);
  const byHash = new Map<string, KeyEntry>();
  const lineages = resolveLineages(apiKeys, problems);
  for (const key of ordered) {
    const name = qualifiedName(key.metadata);
    const chain = lineages.get(name);
    if (!chain || key.spec.accountOnly) continue; // problem reported, or an account (no key to serve)
    const hash = keyHashOf(key, name, readSecret);
    if (typeof hash !== 'string') {
      problems.push(hash);
      continue;
    }
    const holder = byHash.get(hash);
    if (holder) {
      problems.push(duplicateKeyProblem(key, name, holder.name));
      continue;
    }
    byHash.set(hash, keyEntryOf(key, name, chain, PLAIN_COMPILER));
  }
  return byHash;
}

/** Order in which keys claim a hash: oldest first, then by name. */
export function olderFirst(a: ApiKey, b: ApiKey): number {
  return (
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
    qualifiedName(a.metadata).localeCompare(qualifiedName(b.metadata))
  );
}

/** The key's hash (from keyHash, or by hashing the referenced Secret), or why there is none. */
export function keyHashOf(key: ApiKey, name: string, readSecret: SecretReader): string | ResourceProblem {
  if (key.spec.keyHash !== undefined) return key.spec.keyHash;
  if (key.spec.secretRef) {
    const clear = readSecret(key.metadata, key.spec.secretRef)?.trim();
    if (!clear) {
      return {
        kind: 'ApiKey',
        name,
        reason: 'SecretNotFound',
        field: 'spec.secretRef',
        message: `Secret ${key.spec.secretRef.name} (key ${key.spec.secretRef.key}) not found or empty`,
      };
    }
    return hashKey(clear);
  }
  return { kind: 'ApiKey', name, reason: 'Invalid', field: 'spec', message: 'exactly one of keyHash and secretRef must be set' };
}

/** The problem of a key that holds the same key as an older ApiKey. */
export function duplicateKeyProblem(key: ApiKey, name: string, holder: string): ResourceProblem {
  return {
    kind: 'ApiKey',
    name,
    reason: 'DuplicateKey',
    field: key.spec.keyHash === undefined ? 'spec.secretRef' : 'spec.keyHash',
    message: `same key as ApiKey ${holder}; the older ApiKey keeps it`,
  };
}

/** How key entries get their matcher and mapping objects (the incremental builder shares equal ones). */
export interface EntryCompiler {
  readonly matcher: (models: readonly string[] | undefined) => ModelMatcher;
  readonly mapping: (entries: Readonly<Record<string, string>> | undefined) => ModelMapping;
}

export const PLAIN_COMPILER: EntryCompiler = {
  matcher: (models) => new ModelMatcher(models),
  mapping: (entries) => new ModelMapping(entries),
};

/** The hot-path entry of a key whose lineage resolved. */
export function keyEntryOf(
  key: ApiKey,
  name: string,
  chain: ResolvedLineage,
  compiler: EntryCompiler,
  claim?: string,
): KeyEntry & { readonly claim: string | undefined } {
  // One literal with every field (claim included): objects of one shape, no out-of-object property store.
  return {
    name,
    disabled: key.spec.disabled ?? false,
    expiresAtMs: key.spec.expiresAt === undefined ? undefined : Date.parse(key.spec.expiresAt),
    allowedModels: compiler.matcher(key.spec.models),
    mapping: compiler.mapping(key.spec.modelMappings),
    lineage: chain.lineage,
    limitScopes: chain.scopes,
    hasLimits: chainHasRules(chain.scopes),
    hasTokenLimits: chainHasTokenRules(chain.scopes),
    midStreamPolicy: key.spec.limits?.midStreamPolicy ?? 'finish',
    allowList: chain.allowList,
    guardrails: chain.guardrails,
    hosts: key.spec.hosts ? new HostMatcher(key.spec.hosts) : undefined,
    mcp: mcpKeyPolicy(key),
    claim,
  };
}

/** A key's resolved place in the hierarchy. */
export interface ResolvedLineage {
  readonly lineage: string;
  /** Self first, then ancestors up to the root. */
  readonly scopes: readonly LimitScope[];
  /** allowedCidrs of the chain (src/guardrails/safety.ts). */
  readonly allowList: AllowList | undefined;
  /** Guardrail names referenced anywhere in the chain. */
  readonly guardrails: readonly string[];
}

/** Deepest hierarchy accepted; deeper chains are reported (they would make every request slower). */
export const MAX_LINEAGE_DEPTH = 16;

/**
 * Derives every key's lineage from `spec.parent` (same namespace). Keys whose chain is broken (a
 * missing parent, a cycle, an invalid time zone anywhere up the chain, or a chain deeper than
 * MAX_LINEAGE_DEPTH) are left out and reported: serving them without their parent's budget would let
 * them spend what the parent does not allow.
 */
export function resolveLineages(apiKeys: readonly ApiKey[], problems: ResourceProblem[]): Map<string, ResolvedLineage> {
  const byName = new Map<string, ApiKey>();
  for (const k of apiKeys) byName.set(qualifiedName(k.metadata), k);
  const out = new Map<string, ResolvedLineage>();
  const scopeOf = (k: ApiKey): LimitScope => compileScope(qualifiedName(k.metadata), k.spec.limits);
  for (const key of apiKeys) {
    const resolved = resolveLineage(key, (n) => byName.get(n), scopeOf);
    if ('reason' in resolved) problems.push(resolved);
    else out.set(qualifiedName(key.metadata), resolved);
  }
  return out;
}

/** One key's lineage (see resolveLineages), with ancestors looked up by `namespace/name`. */
export function resolveLineage(
  key: ApiKey,
  lookup: (qualified: string) => ApiKey | undefined,
  scopeOf: (key: ApiKey) => LimitScope,
): ResolvedLineage | ResourceProblem {
  const name = qualifiedName(key.metadata);
  const namespace = key.metadata.namespace ?? 'default';
  const chain: ApiKey[] = [key];
  const seen = new Set<string>([name]);
  for (let cur = key; cur.spec.parent !== undefined; ) {
    const parentName = `${namespace}/${cur.spec.parent}`;
    const parent = lookup(parentName);
    if (!parent) {
      return { kind: 'ApiKey', name, reason: 'ParentNotFound', message: `parent ${parentName} does not exist (needed by ${qualifiedName(cur.metadata)})` };
    }
    if (seen.has(parentName)) return { kind: 'ApiKey', name, reason: 'ParentCycle', message: `parent chain loops back to ${parentName}` };
    if (chain.length >= MAX_LINEAGE_DEPTH) {
      return { kind: 'ApiKey', name, reason: 'Invalid', message: `hierarchy deeper than ${MAX_LINEAGE_DEPTH} levels` };
    }
    seen.add(parentName);
    chain.push(parent);
    cur = parent;
  }
  const badZone = chain.find((k) => k.spec.limits?.monthTimeZone !== undefined && !isValidTimeZone(k.spec.limits.monthTimeZone));
  if (badZone) {
    return {
      kind: 'ApiKey',
      name,
      reason: 'Invalid',
      message: `unknown time zone "${badZone.spec.limits?.monthTimeZone ?? ''}" in ${qualifiedName(badZone.metadata)} (use an IANA name such as Europe/Berlin)`,
    };
  }
  // join, not +=: a flat string instead of a chain of cons strings kept per key.
  const names: string[] = [''];
  for (let i = chain.length - 1; i >= 0; i--) names.push((chain[i] as ApiKey).metadata.name);
  names.push('');
  return { lineage: names.join('.'), scopes: chain.map(scopeOf), allowList: allowListOf(chain), guardrails: guardrailNamesOf(chain) };
}

/** Model -> provider tiers for every provider whose credential resolves (others reported). */
export function buildRoutes(
  providers: Iterable<ModelProvider>,
  readSecret: SecretReader,
  problems: ResourceProblem[],
  defaults: DefaultPrices = compileDefaultPrices(undefined),
): Map<string, RouteTier[]> {
  const routes = new Map<string, ModelRoute[]>();
  for (const p of providers) {
    const name = qualifiedName(p.metadata);
    let credential: string | undefined;
    if (p.spec.credentialSecretRef) {
      credential = readSecret(p.metadata, p.spec.credentialSecretRef)?.trim();
      if (!credential) {
        problems.push({
          kind: 'ModelProvider',
          name,
          reason: 'SecretNotFound',
          field: 'spec.credentialSecretRef',
          message: `Secret ${p.spec.credentialSecretRef.name} (key ${p.spec.credentialSecretRef.key}) not found or empty`,
        });
        continue;
      }
    }
    const provider: ProviderEntry = {
      name,
      type: p.spec.type,
      endpoint: parseEndpoint(p.spec.endpoint),
      credential,
      apiVersion: p.spec.apiVersion,
      ...(p.spec.region === undefined ? {} : { region: p.spec.region }),
      priority: p.spec.priority ?? 0,
      weight: p.spec.weight ?? 1,
      firstByteTimeoutMs: p.spec.firstByteTimeoutSeconds === undefined ? undefined : 1000 * p.spec.firstByteTimeoutSeconds,
      service: p.spec.service
        ? { namespace: p.metadata.namespace ?? 'default', name: p.spec.service.name, port: p.spec.service.port }
        : undefined,
    };
    for (const [i, m] of p.spec.models.entries()) {
      const list = routes.get(m.name) ?? [];
      const upstreamModel = m.upstreamModel ?? m.name;
      // A price problem is reported but does not take the provider out of service.
      const price = routePrice(m.pricing, defaults, m.name, upstreamModel, (field, message) =>
        problems.push({ kind: 'ModelProvider', name, reason: 'Invalid', field: `spec.models[${i}].${field}`, message }),
      );
      list.push({
        provider,
        upstreamModel,
        limits: compileRules(m.limits),
        limitScopeId: `provider:${name}:${m.name}`,
        ...(price ? { price } : {}),
        ...(m.maxTokens === undefined ? {} : { defaultMaxTokens: m.maxTokens }),
        ...(m.reasoningTags === 'extract' || m.reasoningTags === 'strip' ? { reasoningTags: m.reasoningTags } : {}),
        ...(m.parameters && (m.parameters.drop?.length || Object.keys(m.parameters.rename ?? {}).length || Object.keys(m.parameters.defaults ?? {}).length) ? { parameters: m.parameters } : {}),
      });
      routes.set(m.name, list);
    }
  }
  const tiered = new Map<string, RouteTier[]>();
  for (const [model, list] of routes) tiered.set(model, toTiers(list));
  return tiered;
}

function toTiers(routes: readonly ModelRoute[]): RouteTier[] {
  const byPriority = new Map<number, ModelRoute[]>();
  for (const r of routes) {
    const list = byPriority.get(r.provider.priority) ?? [];
    list.push(r);
    byPriority.set(r.provider.priority, list);
  }
  return [...byPriority.entries()]
    .sort(([a], [b]) => a - b)
    .map(([priority, list]) => {
      const sorted = list.sort((a, b) => a.provider.name.localeCompare(b.provider.name));
      return { priority, routes: sorted, totalWeight: sorted.reduce((sum, r) => sum + r.provider.weight, 0) };
    });
}
