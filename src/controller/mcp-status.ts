/**
 * MCPServer discovery status (Kubernetes mode, the status Lease holder only): how many tools each
 * served MCPServer publishes and whether its upstream answered, as `status.tools` and a
 * `ToolsDiscovered` condition (`kubectl get mcpservers` shows both). The probe is the MCP listener's
 * own discovery (cached upstream tool lists), run shortly after each config change and on a slow timer.
 * Pure helpers decide the condition; the writer patches only what differs.
 */
import type { Condition } from '../config/types.js';
import type { StatusView } from './status.js';

export const TOOLS_DISCOVERED = 'ToolsDiscovered';

/** What the last discovery of one server found. */
export interface DiscoveryView {
  readonly state: 'up' | 'down' | 'unknown';
  readonly tools?: number;
  readonly message?: string;
}

/** The ToolsDiscovered condition for a discovery result. Keeps lastTransitionTime when status is unchanged. */
export function toolsCondition(obj: StatusView, view: DiscoveryView, now: Date): Condition {
  const status = view.state === 'up' ? 'True' : view.state === 'down' ? 'False' : 'Unknown';
  const previous = obj.status?.conditions?.find((c) => c.type === TOOLS_DISCOVERED);
  const base = {
    type: TOOLS_DISCOVERED,
    status,
    reason: view.state === 'up' ? 'Discovered' : view.state === 'down' ? 'UpstreamUnavailable' : 'Pending',
    message: view.state === 'up' ? `${view.tools ?? 0} tools published` : (view.message ?? 'not discovered yet').slice(0, 1024),
    lastTransitionTime: previous && previous.status === status ? previous.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z'),
  } as const;
  const generation = obj.metadata?.generation;
  return generation === undefined ? base : { ...base, observedGeneration: generation };
}

/** True when the object already shows `wanted` and `tools`. */
export function discoveryUpToDate(obj: StatusView & { status?: { tools?: number } }, wanted: Condition, tools: number | undefined): boolean {
  const current = obj.status?.conditions?.find((c) => c.type === TOOLS_DISCOVERED);
  return (
    current !== undefined &&
    current.status === wanted.status &&
    current.reason === wanted.reason &&
    current.message === wanted.message &&
    current.observedGeneration === wanted.observedGeneration &&
    (tools === undefined || obj.status?.tools === tools)
  );
}

/** Merge patch: the conditions list with ToolsDiscovered replaced (others kept), and the tool count when known. */
export function discoveryPatch(obj: StatusView, wanted: Condition, tools: number | undefined): { status: { tools?: number; conditions: Condition[] } } {
  const conditions = [...(obj.status?.conditions ?? []).filter((c) => c.type !== TOOLS_DISCOVERED), wanted];
  return { status: tools === undefined ? { conditions } : { tools, conditions } };
}
