/**
 * What `GET /v1/models` can list, precomputed once per snapshot for the gateway-wide mapping and for
 * each tenant that has its own (GatewayConfig spec.tenants[].modelMappings). A request then only
 * filters a ready list by the key's allow-list; keys with their own mapping redo the resolution over
 * the same candidate names (their mapping comes first for every name).
 *
 * The rule is the chat rule (src/pipeline/model.ts): a name is listed on a host when it resolves,
 * through the mappings that apply there, to a served model the key may use. Candidates are the served
 * names and the exact aliases of the mappings that apply; names reached only through a wildcard
 * pattern are routable but cannot be enumerated, so they are not listed.
 */
import type { ModelMapping } from './mapping.js';

/** A name a client may send and the served model it resolves to. */
export interface ListedModel {
  readonly name: string;
  readonly target: string;
}

/** The list for one mapping context (the gateway-wide one, or a tenant's). */
export interface ModelCatalog {
  /** The mapping that applies after a key's own (the tenant's, or the global one). */
  readonly mapping: ModelMapping;
  /** Names that resolve to a served model through `mapping`, sorted by name. */
  readonly routable: readonly ListedModel[];
  /**
   * Every name worth trying for a key with its own mapping: served names and `mapping`'s exact
   * aliases, whether or not they resolve here (a key's mapping may send an alias elsewhere).
   */
  readonly candidates: readonly string[];
}

/** A tenant as far as the lists care (src/tenancy/hosts.ts Tenant). */
export interface MappedTenant {
  readonly mapping: ModelMapping | undefined;
}

/** Catalogs of one snapshot: the gateway-wide one and each tenant's. */
export interface ModelLists {
  readonly global: ModelCatalog;
  /** Tenant (the snapshot's own objects) -> catalog; tenants without their own mapping share `global`. */
  readonly byTenant: ReadonlyMap<MappedTenant, ModelCatalog>;
  /**
   * Served model -> when the gateway started serving it (epoch seconds): the earliest creation time of
   * the providers serving it (see {@link ProviderCreated}). OpenAI's `created` and Anthropic's
   * `created_at` of the model and of every name that resolves to it; stable across config reloads.
   */
  readonly createdSeconds: ReadonlyMap<string, number>;
}

/** The routes of served models, as far as the lists care (snapshot.ts RouteTier). */
export type ServedRoutes = ReadonlyMap<string, readonly { readonly routes: readonly { readonly provider: { readonly name: string } }[] }[]>;

/**
 * When a provider (`namespace/name`) came to be, in epoch seconds: its metadata.creationTimestamp,
 * else when the config source first saw it (the incremental builder keeps that across rebuilds).
 */
export type ProviderCreated = (provider: string) => number;

/** The catalog that applies on a host of this tenant (or outside every tenant). */
export function catalogFor(lists: ModelLists, tenant: MappedTenant | undefined): ModelCatalog {
  if (!tenant?.mapping) return lists.global;
  const catalog = lists.byTenant.get(tenant);
  // The tenant and the lists come from one snapshot; a miss is a bug, never a reason to list the global names.
  if (!catalog) throw new Error('tenant without a model list in its snapshot');
  return catalog;
}

/** Builds the catalog of one mapping over the served models. Pure. */
export function buildModelCatalog(mapping: ModelMapping, served: ReadonlyMap<string, unknown>): ModelCatalog {
  const candidates = new Set<string>(served.keys());
  for (const alias of mapping.exactEntries().keys()) candidates.add(alias);
  const names = [...candidates].sort();
  const routable: ListedModel[] = [];
  for (const name of names) {
    // The chat rule: mapped once, unmatched names pass unchanged; the result must be served.
    const target = mapping.lookup(name) ?? name;
    if (served.has(target)) routable.push({ name, target });
  }
  return { mapping, routable, candidates: names };
}

/** Builds every catalog of a snapshot from the served models (routesByModel), the global mapping and the tenants'. */
export function buildModelLists(
  served: ServedRoutes,
  globalMapping: ModelMapping,
  tenants: Iterable<MappedTenant>,
  providerCreated: ProviderCreated,
): ModelLists {
  const global = buildModelCatalog(globalMapping, served);
  const byTenant = new Map<MappedTenant, ModelCatalog>();
  for (const t of tenants) byTenant.set(t, t.mapping ? buildModelCatalog(t.mapping, served) : global);
  const createdSeconds = new Map<string, number>();
  for (const [model, tiers] of served) {
    let earliest = Infinity;
    for (const tier of tiers) for (const r of tier.routes) earliest = Math.min(earliest, providerCreated(r.provider.name));
    if (Number.isFinite(earliest)) createdSeconds.set(model, earliest);
  }
  return { global, byTenant, createdSeconds };
}

/** A creationTimestamp (RFC 3339) in epoch seconds, or undefined when absent or unreadable. */
export function creationSeconds(timestamp: string | undefined): number | undefined {
  if (timestamp === undefined) return undefined;
  const ms = Date.parse(timestamp);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}
