/**
 * The runtime form of MCPServer resources and of ApiKey.spec.mcp: built once per snapshot by pure
 * functions, so the MCP listener only does map lookups and precompiled matches per request.
 */
import { createHash } from 'node:crypto';
import {
  qualifiedName,
  type ApiKey,
  type HttpToolMethod,
  type MCPServer,
  type McpTransport,
  type ObjectMeta,
  type SecretKeyRef,
} from './types.js';
import { ModelMatcher } from './wildcard.js';

/** Absolute cap on one tool call when the MCPServer sets none (timeoutSeconds when that is larger). */
export const DEFAULT_MAX_TOTAL_TIMEOUT_SECONDS = 600;

/** Separator between server and tool names on the aggregated endpoint (`search__web_search`). */
export const TOOL_SEPARATOR = '__';

/** Compiled include/exclude filter of one server (exclude wins). */
export interface ToolFilter {
  readonly include: ReadonlySet<string> | undefined;
  readonly includeRegex: readonly RegExp[];
  readonly exclude: ReadonlySet<string>;
  readonly excludeRegex: readonly RegExp[];
}

/** True when the server publishes `tool` under its filter. */
export function toolPublished(filter: ToolFilter, tool: string): boolean {
  if (filter.exclude.has(tool) || filter.excludeRegex.some((r) => r.test(tool))) return false;
  if (filter.include === undefined && filter.includeRegex.length === 0) return true;
  return (filter.include?.has(tool) ?? false) || filter.includeRegex.some((r) => r.test(tool));
}

/** One httpTools entry as the listener runs it. */
export interface HttpToolEntry {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: Readonly<Record<string, unknown>>;
  readonly method: HttpToolMethod;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  readonly format: 'text' | 'json';
}

/** An MCPServer as the MCP listener sees it. */
export interface McpServerEntry {
  /** `namespace/name`. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  /** The upstream MCP endpoint, or undefined for a server made only of httpTools. */
  readonly upstream: { readonly url: string; readonly transport: McpTransport } | undefined;
  /** Headers sent to the upstream and to httpTools (the credential); never logged. */
  readonly headers: Readonly<Record<string, string>>;
  /** How long one upstream call may stay silent (a tool call's progress restarts it). */
  readonly timeoutMs: number;
  /** Absolute cap on one tool call, progress or not (>= timeoutMs). */
  readonly maxTotalTimeoutMs: number;
  readonly filter: ToolFilter;
  readonly httpTools: readonly HttpToolEntry[];
  readonly description: string;
  readonly owner: string;
  readonly tags: readonly string[];
  /** Changes when anything the upstream connection depends on changes (URL, transport, credential). */
  readonly connectionFingerprint: string;
}

/** Every MCP server of a snapshot. */
export interface McpConfig {
  /** `namespace/name` -> server. */
  readonly servers: ReadonlyMap<string, McpServerEntry>;
  /** Namespace -> its servers, sorted by name. */
  readonly byNamespace: ReadonlyMap<string, readonly McpServerEntry[]>;
}

/** What one key may do on MCP servers (ApiKey.spec.mcp; tool-call limits are in the key's limitScopes). */
export interface McpKeyPolicy {
  /** Server names (in the key's namespace) the key may use. */
  readonly servers: ModelMatcher;
  /** `server__tool` patterns; undefined = every tool of the allowed servers. */
  readonly tools: ModelMatcher | undefined;
}

/** The policy of a key, or undefined when the key has no `mcp` section (no MCP access). */
export function mcpKeyPolicy(key: ApiKey): McpKeyPolicy | undefined {
  const mcp = key.spec.mcp;
  if (!mcp) return undefined;
  return {
    servers: new ModelMatcher(mcp.servers),
    tools: mcp.tools === undefined ? undefined : new ModelMatcher(mcp.tools),
  };
}

/** True when the policy lets the key use `server` at all. */
export function serverAllowed(policy: McpKeyPolicy | undefined, server: string): boolean {
  return policy !== undefined && policy.servers.matches(server);
}

/** True when the policy lets the key call `tool` of `server`. */
export function toolAllowed(policy: McpKeyPolicy | undefined, server: string, tool: string): boolean {
  if (!serverAllowed(policy, server)) return false;
  return policy?.tools === undefined || policy.tools.matches(server + TOOL_SEPARATOR + tool);
}

/** Why an MCPServer is not served (same shape as the snapshot's problems). */
export interface McpProblem {
  readonly kind: 'MCPServer';
  readonly name: string;
  readonly reason: 'Invalid' | 'SecretNotFound';
  readonly field?: string;
  readonly message: string;
}

export type SecretLookup = (meta: ObjectMeta, ref: SecretKeyRef) => string | undefined;

export const EMPTY_MCP_CONFIG: McpConfig = { servers: new Map(), byNamespace: new Map() };

/** Builds the runtime MCP config; servers with problems are left out and reported. Pure. */
export function buildMcpConfig(servers: readonly MCPServer[], readSecret: SecretLookup, problems: McpProblem[]): McpConfig {
  if (servers.length === 0) return EMPTY_MCP_CONFIG;
  const out = new Map<string, McpServerEntry>();
  for (const s of servers) {
    const entry = buildServer(s, readSecret);
    if ('reason' in entry) problems.push(entry);
    else out.set(entry.id, entry);
  }
  const byNamespace = new Map<string, McpServerEntry[]>();
  for (const e of [...out.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const list = byNamespace.get(e.namespace) ?? [];
    list.push(e);
    byNamespace.set(e.namespace, list);
  }
  return { servers: out, byNamespace };
}

function compileRegexes(sources: readonly string[] | undefined, field: string): RegExp[] | string {
  const out: RegExp[] = [];
  for (const [i, src] of (sources ?? []).entries()) {
    try {
      out.push(new RegExp(src));
    } catch (err) {
      return `${field}[${i}]: invalid regular expression: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return out;
}

function buildServer(s: MCPServer, readSecret: SecretLookup): McpServerEntry | McpProblem {
  const id = qualifiedName(s.metadata);
  const namespace = s.metadata.namespace ?? 'default';
  const spec = s.spec;
  const invalid = (field: string, message: string): McpProblem => ({ kind: 'MCPServer', name: id, reason: 'Invalid', field, message });
  if (s.metadata.name.includes(TOOL_SEPARATOR)) return invalid('metadata.name', 'MCPServer names must not contain "__"');
  const includeRegex = compileRegexes(spec.tools?.includeRegex, 'spec.tools.includeRegex');
  if (typeof includeRegex === 'string') return invalid('spec.tools.includeRegex', includeRegex);
  const excludeRegex = compileRegexes(spec.tools?.excludeRegex, 'spec.tools.excludeRegex');
  if (typeof excludeRegex === 'string') return invalid('spec.tools.excludeRegex', excludeRegex);
  const headers: Record<string, string> = {};
  let secretValue = '';
  if (spec.credential) {
    const value = readSecret(s.metadata, spec.credential.secretRef)?.trim();
    if (!value) {
      const ref = spec.credential.secretRef;
      return { kind: 'MCPServer', name: id, reason: 'SecretNotFound', field: 'spec.credential.secretRef', message: `Secret ${ref.name} (key ${ref.key}) not found or empty` };
    }
    secretValue = value;
    if (spec.credential.header) headers[spec.credential.header.toLowerCase()] = value;
    else headers['authorization'] = `Bearer ${value}`;
  }
  let upstream: McpServerEntry['upstream'];
  if (spec.url) upstream = { url: spec.url, transport: spec.transport ?? 'streamable-http' };
  else if (spec.service) {
    upstream = {
      url: `http://${spec.service.name}.${namespace}.svc:${spec.service.port}${spec.service.path ?? '/mcp'}`,
      transport: spec.transport ?? 'streamable-http',
    };
  }
  const httpTools: HttpToolEntry[] = (spec.httpTools ?? []).map((t) => ({
    name: t.name,
    description: t.description ?? '',
    inputSchema: t.inputSchema && t.inputSchema['type'] === 'object' ? t.inputSchema : { type: 'object', ...(t.inputSchema ?? {}) },
    method: t.method ?? 'GET',
    url: t.url,
    headers: Object.fromEntries(Object.entries(t.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    body: t.body,
    format: t.response?.format ?? 'json',
  }));
  const connectionFingerprint = createHash('sha256')
    .update(JSON.stringify([upstream?.url ?? '', upstream?.transport ?? '', spec.credential?.header ?? '', secretValue]))
    .digest('hex')
    .slice(0, 16);
  const timeoutMs = 1000 * (spec.timeoutSeconds ?? 30);
  if (spec.maxTotalTimeoutSeconds !== undefined && spec.maxTotalTimeoutSeconds * 1000 < timeoutMs) {
    return invalid('spec.maxTotalTimeoutSeconds', 'maxTotalTimeoutSeconds must be at least timeoutSeconds');
  }
  return {
    id,
    namespace,
    name: s.metadata.name,
    upstream,
    headers,
    timeoutMs,
    maxTotalTimeoutMs: 1000 * (spec.maxTotalTimeoutSeconds ?? Math.max(DEFAULT_MAX_TOTAL_TIMEOUT_SECONDS, timeoutMs / 1000)),
    filter: {
      include: spec.tools?.include === undefined ? undefined : new Set(spec.tools.include),
      includeRegex,
      exclude: new Set(spec.tools?.exclude ?? []),
      excludeRegex,
    },
    httpTools,
    description: spec.description ?? '',
    owner: spec.owner ?? '',
    tags: spec.tags ?? [],
    connectionFingerprint,
  };
}
