/**
 * `GET /mcp/catalog`: the MCP servers the calling key may use, with what a person or an agent needs to
 * choose one: description, owner, tags, endpoint, health and the tools the key may call (name,
 * prefixed name on the aggregated endpoint, description, input schema).
 */
import { toolAllowed, TOOL_SEPARATOR } from '../config/mcp.js';
import type { KeyEntry, Snapshot } from '../config/snapshot.js';
import { allowedServers } from './gateway.js';
import type { UpstreamHealth, UpstreamPool } from './upstreams.js';

export interface CatalogTool {
  readonly name: string;
  /** The name on the aggregated endpoint /mcp. */
  readonly aggregatedName: string;
  readonly description: string;
  readonly inputSchema: unknown;
}

export interface CatalogServer {
  readonly name: string;
  readonly namespace: string;
  /** Path of the server's own endpoint. */
  readonly endpoint: string;
  readonly description: string;
  readonly owner: string;
  readonly tags: readonly string[];
  readonly transport: string;
  readonly health: UpstreamHealth;
  readonly tools: readonly CatalogTool[];
}

export interface Catalog {
  readonly aggregatedEndpoint: '/mcp';
  readonly servers: readonly CatalogServer[];
}

/** Builds the catalogue for `key` (discovers tools of servers not yet cached; failures show as health). */
export async function buildCatalog(upstreams: UpstreamPool, snapshot: Snapshot, key: KeyEntry): Promise<Catalog> {
  const servers = allowedServers(snapshot, key);
  const lists = await Promise.allSettled(servers.map((s) => upstreams.tools(s)));
  return {
    aggregatedEndpoint: '/mcp',
    servers: servers.map((s, i) => {
      const r = lists[i];
      const tools = r?.status === 'fulfilled' ? r.value : [];
      return {
        name: s.name,
        namespace: s.namespace,
        endpoint: `/mcp/${s.namespace}/${s.name}`,
        description: s.description,
        owner: s.owner,
        tags: s.tags,
        transport: s.upstream ? s.upstream.transport : 'http-tools',
        health: upstreams.health(s),
        tools: tools
          .filter((t) => toolAllowed(key.mcp, s.name, t.name))
          .map((t) => ({ name: t.name, aggregatedName: s.name + TOOL_SEPARATOR + t.name, description: t.description ?? '', inputSchema: t.inputSchema })),
      };
    }),
  };
}
