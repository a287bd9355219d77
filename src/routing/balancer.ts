/**
 * Balancing strategies among targets of the same priority. Pure apart from the round-robin counter
 * the caller owns; randomness is injected so tests are deterministic.
 *
 * - weighted: random, proportional to weight.
 * - round-robin: in turn, one counter per model (weights ignored).
 * - least-outstanding: fewest attempts in flight per unit of weight; ties broken at random.
 * - latency: random, proportional to weight / cost, with
 *       cost = (EWMA_TTFB_ms + TOKENS_REF * 1000 / EWMA_tokens_per_second) * (1 + outstanding)
 *   The throughput term is left out while a target has no throughput sample. A target with no TTFB
 *   sample yet is given the lowest cost among the others (optimistic), so new endpoints are tried.
 *   Slow or saturated targets get proportionally less traffic but never none, so they keep being
 *   measured and win traffic back when they recover.
 */
import type { BalancingStrategy } from '../config/types.js';
import type { TargetView } from './health.js';

/** Reference answer length for the throughput term of the latency cost. */
export const TOKENS_REF = 256;
/** Floor of the TTFB term, so a 0 ms sample cannot take all traffic. */
const MIN_TTFB_MS = 1;

export interface Weighted {
  readonly id: string;
  readonly weight: number;
}

export interface BalanceInput<T extends Weighted> {
  readonly candidates: readonly T[];
  readonly strategy: BalancingStrategy;
  readonly view: (id: string) => TargetView;
  /** Monotonic counter for round robin (the caller increments it per choice). */
  readonly turn: number;
  readonly random: () => number;
}

/** Picks one candidate; `candidates` must not be empty. */
export function pickTarget<T extends Weighted>(input: BalanceInput<T>): T {
  const { candidates } = input;
  if (candidates.length === 1) return candidates[0] as T;
  switch (input.strategy) {
    case 'round-robin':
      return candidates[input.turn % candidates.length] as T;
    case 'least-outstanding':
      return leastOutstanding(input);
    case 'latency':
      return weightedBy(candidates, latencyShares(input), input.random);
    case 'weighted':
    default:
      return weightedBy(candidates, candidates.map((c) => c.weight), input.random);
  }
}

/** The latency cost of a target (lower is better); undefined while it has no TTFB sample. */
export function latencyCost(view: TargetView): number | undefined {
  if (view.ewmaTtfbMs === undefined) return undefined;
  let perRequestMs = Math.max(MIN_TTFB_MS, view.ewmaTtfbMs);
  if (view.ewmaTokensPerSecond !== undefined && view.ewmaTokensPerSecond > 0) perRequestMs += (TOKENS_REF * 1000) / view.ewmaTokensPerSecond;
  return perRequestMs * (1 + view.outstanding);
}

function latencyShares<T extends Weighted>(input: BalanceInput<T>): number[] {
  const costs = input.candidates.map((c) => latencyCost(input.view(c.id)));
  let best = Number.POSITIVE_INFINITY;
  for (const cost of costs) if (cost !== undefined && cost < best) best = cost;
  if (!Number.isFinite(best)) best = 1;
  return input.candidates.map((c, i) => c.weight / (costs[i] ?? best));
}

function leastOutstanding<T extends Weighted>(input: BalanceInput<T>): T {
  let best: T[] = [];
  let bestLoad = Number.POSITIVE_INFINITY;
  for (const c of input.candidates) {
    const load = (input.view(c.id).outstanding + 1) / c.weight;
    if (load < bestLoad) {
      bestLoad = load;
      best = [c];
    } else if (load === bestLoad) best.push(c);
  }
  return best[Math.floor(input.random() * best.length)] ?? (input.candidates[0] as T);
}

function weightedBy<T>(candidates: readonly T[], shares: readonly number[], random: () => number): T {
  let total = 0;
  for (const s of shares) total += s;
  let point = random() * total;
  for (let i = 0; i < candidates.length; i++) {
    point -= shares[i] as number;
    if (point < 0) return candidates[i] as T;
  }
  return candidates[candidates.length - 1] as T;
}

/**
 * Exponential backoff with full jitter before the `retryNumber`-th retry (1-based) of the same
 * target: uniform in [0, min(max, base * 2^(retryNumber-1))].
 */
export function backoffMs(retryNumber: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retryNumber - 1));
  return Math.floor(random() * ceiling);
}
