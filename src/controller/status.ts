/**
 * Status conditions for ModelProvider and ApiKey: pure functions that say what a resource's Ready
 * condition should be (from the snapshot build's problems), and whether the API object already says
 * so. The writer (controller/source.ts) only patches what differs, and only on the leader.
 */
import type { Condition } from '../config/types.js';

/** Condition type every Tollgate resource carries. */
export const READY = 'Ready';

/** A problem found for a resource, or undefined when it is served. */
export interface Verdict {
  readonly reason: string;
  readonly message: string;
}

/** The part of an API object the status logic reads. */
export interface StatusView {
  readonly metadata?: { readonly generation?: number };
  readonly status?: { readonly observedGeneration?: number; readonly conditions?: readonly Condition[] };
}

/** The Ready condition a resource should carry. Keeps lastTransitionTime when status is unchanged. */
export function readyCondition(obj: StatusView, verdict: Verdict | undefined, now: Date): Condition {
  const generation = obj.metadata?.generation;
  const status = verdict ? 'False' : 'True';
  const previous = obj.status?.conditions?.find((c) => c.type === READY);
  const base = {
    type: READY,
    status,
    reason: verdict ? verdict.reason : 'Accepted',
    message: verdict ? verdict.message : 'served by the gateway',
    lastTransitionTime: previous && previous.status === status ? previous.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z'),
  } as const;
  return generation === undefined ? base : { ...base, observedGeneration: generation };
}

/** True when the object's status already shows `wanted` for its current generation. */
export function statusUpToDate(obj: StatusView, wanted: Condition): boolean {
  const current = obj.status?.conditions?.find((c) => c.type === READY);
  return (
    current !== undefined &&
    current.status === wanted.status &&
    current.reason === wanted.reason &&
    current.message === wanted.message &&
    current.observedGeneration === wanted.observedGeneration &&
    obj.status?.observedGeneration === obj.metadata?.generation
  );
}

/**
 * The JSON merge patch for the status subresource: observedGeneration and the conditions list with
 * Ready replaced and other condition types kept (merge patch replaces lists whole). Other status
 * fields (usage, lineage) are untouched.
 */
export function statusPatch(obj: StatusView, wanted: Condition): { status: { observedGeneration?: number; conditions: Condition[] } } {
  const others = (obj.status?.conditions ?? []).filter((c) => c.type !== READY);
  const conditions = [...others, wanted];
  const generation = obj.metadata?.generation;
  return { status: generation === undefined ? { conditions } : { observedGeneration: generation, conditions } };
}
