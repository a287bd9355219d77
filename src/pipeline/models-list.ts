/**
 * GET /v1/models and GET /v1/models/{model}: the models this key may use on this host. The candidates
 * and their resolution through the host's mapping (its tenant's, else the global one) are precomputed
 * per snapshot (src/config/model-lists.ts); here only the key's allow-list filters them, and a key's
 * own mapping (which comes first for every name, as in chat) re-resolves the same candidates.
 *
 * One list, two shapes: OpenAI's (`{object: "list", data: [{id, object, created, owned_by}]}`, the
 * whole list at once) and Anthropic's Models API (`{data: [{type, id, display_name, created_at}],
 * has_more, first_id, last_id}`, paged with `limit`, `after_id`, `before_id`), chosen by the client's
 * API (Anthropic's clients send `anthropic-version`). Pure: everything comes from the snapshot.
 */
import type { ListedModel } from '../config/model-lists.js';
import { catalogFor } from '../config/model-lists.js';
import type { KeyEntry, Snapshot } from '../config/snapshot.js';
import { gatewayError, isGatewayError, type ClientApi, type GatewayError } from '../errors.js';
import type { Tenant } from '../tenancy/hosts.js';

/**
 * The names a chat request by this key on this host would accept, sorted by name, each with the
 * served model it resolves to (key mapping, then the tenant's or global mapping) that the key's
 * allow-list admits, exactly as resolveForKey decides (src/pipeline/model.ts). Names reachable only
 * through wildcard patterns are not enumerable and not listed.
 */
export function listedModelsForKey(key: KeyEntry, snapshot: Snapshot, tenant?: Tenant): ListedModel[] {
  const catalog = catalogFor(snapshot.modelLists, tenant);
  if (key.mapping.isEmpty) return catalog.routable.filter((m) => key.allowedModels.matches(m.target));
  const out: ListedModel[] = [];
  const names = new Set(catalog.candidates);
  for (const alias of key.mapping.exactEntries().keys()) names.add(alias);
  for (const name of names) {
    const target = key.mapping.lookup(name) ?? catalog.mapping.lookup(name) ?? name;
    if (snapshot.routesByModel.has(target) && key.allowedModels.matches(target)) out.push({ name, target });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The names of {@link listedModelsForKey}, sorted. */
export function listModelsForKey(key: KeyEntry, snapshot: Snapshot, tenant?: Tenant): string[] {
  return listedModelsForKey(key, snapshot, tenant).map((m) => m.name);
}

/** What a models request asks: the list (with the client's query string) or one model. */
export type ModelsRequest = { readonly kind: 'list-models'; readonly query: string } | { readonly kind: 'retrieve-model'; readonly model: string };

/** A 200 answer's JSON body, or the refusal (rendered in the client's API by the caller). */
export type ModelsAnswer = { readonly kind: 'ok'; readonly body: string } | GatewayError;

/** Answers GET /v1/models or /v1/models/{model} for this key on this host, in the client's API's shape. */
export function answerModels(request: ModelsRequest, api: ClientApi, key: KeyEntry, snapshot: Snapshot, tenant?: Tenant): ModelsAnswer {
  const listed = listedModelsForKey(key, snapshot, tenant);
  const created = createdOf(snapshot);
  if (request.kind === 'retrieve-model') {
    const model = listed.find((m) => m.name === request.model);
    if (!model) return modelNotFound(request.model);
    return { kind: 'ok', body: JSON.stringify(api === 'anthropic' ? anthropicModel(model, created) : openAIModel(model, created)) };
  }
  if (api === 'openai') return { kind: 'ok', body: JSON.stringify({ object: 'list', data: listed.map((m) => openAIModel(m, created)) }) };
  const page = parsePageQuery(request.query);
  if (isGatewayError(page)) return page;
  const { items, hasMore } = pageOf(listed, page);
  return {
    kind: 'ok',
    body: JSON.stringify({
      data: items.map((m) => anthropicModel(m, created)),
      has_more: hasMore,
      first_id: items[0]?.name ?? null,
      last_id: items[items.length - 1]?.name ?? null,
    }),
  };
}

/** Served model -> epoch seconds; a model the snapshot has no time for (none in practice) gets the build time. */
function createdOf(snapshot: Snapshot): (target: string) => number {
  const built = Math.floor(Date.parse(snapshot.builtAt) / 1000);
  return (target) => snapshot.modelLists.createdSeconds.get(target) ?? built;
}

/** OpenAI's model object. */
function openAIModel(m: ListedModel, created: (target: string) => number): object {
  return { id: m.name, object: 'model', created: created(m.target), owned_by: 'tollgate' };
}

/** Anthropic's model object (ModelInfo); `created_at` is RFC 3339 in UTC. */
function anthropicModel(m: ListedModel, created: (target: string) => number): object {
  return { type: 'model', id: m.name, display_name: m.name, created_at: rfc3339(created(m.target)) };
}

function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

function modelNotFound(model: string): GatewayError {
  const shown = model.length > 256 ? `${model.slice(0, 256)}...` : model;
  return gatewayError('model_not_found', `The model '${shown}' does not exist or you do not have access to it.`);
}

/** Anthropic's paging parameters, checked. */
export interface PageQuery {
  /** 1..1000, default 20. */
  readonly limit: number;
  readonly afterId?: string;
  readonly beforeId?: string;
}

export const DEFAULT_PAGE_LIMIT = 20;
export const MAX_PAGE_LIMIT = 1000;

/** Reads `limit`, `after_id` and `before_id` of a query string (with or without its `?`); other parameters are ignored. */
export function parsePageQuery(query: string): PageQuery | GatewayError {
  const params = new URLSearchParams(query);
  const rawLimit = params.get('limit');
  let limit = DEFAULT_PAGE_LIMIT;
  if (rawLimit !== null) {
    if (!/^\d{1,9}$/.test(rawLimit)) return gatewayError('invalid_value', `limit: Input should be a valid integer, got '${rawLimit.slice(0, 32)}'.`);
    limit = Number(rawLimit);
    if (limit < 1) return gatewayError('invalid_value', 'limit: Input should be greater than or equal to 1.');
    if (limit > MAX_PAGE_LIMIT) return gatewayError('invalid_value', `limit: Input should be less than or equal to ${MAX_PAGE_LIMIT}.`);
  }
  const afterId = params.get('after_id') || undefined;
  const beforeId = params.get('before_id') || undefined;
  if (afterId !== undefined && beforeId !== undefined) return gatewayError('invalid_value', 'Only one of after_id and before_id may be given.');
  return { limit, ...(afterId === undefined ? {} : { afterId }), ...(beforeId === undefined ? {} : { beforeId }) };
}

/**
 * One page of a list sorted by name. The cursors are positions in that order, not indexes: a page
 * after `after_id` starts at the first name above it even when that model left the list between two
 * pages (a config change), so paging never fails or repeats a name. `hasMore` looks in the page's
 * direction: after the page for `after_id` (and for the first page), before it for `before_id`.
 */
export function pageOf<T extends { readonly name: string }>(sorted: readonly T[], page: PageQuery): { items: readonly T[]; hasMore: boolean } {
  if (page.beforeId !== undefined) {
    const end = firstAtOrAbove(sorted, page.beforeId, false);
    const start = Math.max(0, end - page.limit);
    return { items: sorted.slice(start, end), hasMore: start > 0 };
  }
  const start = page.afterId === undefined ? 0 : firstAtOrAbove(sorted, page.afterId, true);
  const end = Math.min(sorted.length, start + page.limit);
  return { items: sorted.slice(start, end), hasMore: end < sorted.length };
}

/** Index of the first name above `id` (strictly when `strict`, else at or above); binary search. */
function firstAtOrAbove(sorted: readonly { readonly name: string }[], id: string, strict: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const name = (sorted[mid] as { readonly name: string }).name;
    if (name < id || (strict && name === id)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
