/**
 * Month-to-date usage for ApiKey status (`kubectl get apikeys`): read on a slow timer by the
 * controller's status writer (leader only), never on the request path.
 */
import type { ConfigStore } from '../config/store.js';
import type { UsageStatus } from '../config/types.js';
import { DEFAULT_CURRENCY, formatPicos } from '../billing/money.js';
import { monthSpan } from '../ratelimit/calendar.js';
import type { UsageAccountant, UsageTotals } from './accountant.js';

/** What the status writer puts into ApiKey status besides conditions. */
export interface KeyStatusView {
  readonly lineage: string;
  readonly usage: UsageStatus;
}

/** The status usage block for totals of `month`. */
export function usageStatusOf(totals: UsageTotals, month: string, now: Date, currency = DEFAULT_CURRENCY): UsageStatus {
  return {
    month,
    requests: totals.requests,
    promptTokens: totals.promptTokens,
    completionTokens: totals.completionTokens,
    totalTokens: totals.promptTokens + totals.completionTokens,
    cost: formatPicos(totals.costPicos),
    currency,
    updatedAt: now.toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

/** True when `current` already shows the same numbers for the same month (updatedAt ignored). */
export function usageUpToDate(current: Partial<UsageStatus> | undefined, wanted: UsageStatus): boolean {
  return (
    current !== undefined &&
    current.month === wanted.month &&
    current.requests === wanted.requests &&
    current.promptTokens === wanted.promptTokens &&
    current.completionTokens === wanted.completionTokens &&
    current.cost === wanted.cost &&
    current.currency === wanted.currency
  );
}

/** A reader for the status writer: `namespace/name` -> lineage and month-to-date usage. */
export function keyStatusReader(store: ConfigStore, accountant: UsageAccountant): (name: string) => Promise<KeyStatusView | undefined> {
  return async (name) => {
    const snapshot = store.current();
    const key = snapshot?.keysByName.get(name);
    if (!snapshot || !key) return undefined; // accounts and keys not served carry no usage of their own
    const now = new Date();
    const month = monthSpan(now.getTime(), key.limitScopes[0]?.monthTimeZone ?? 'UTC').id;
    return { lineage: key.lineage, usage: usageStatusOf(await accountant.monthToDate(name, month), month, now, snapshot.currency) };
  };
}

/** An ApiKey as the usage writer sees it (from the informer cache). */
export interface KeyObjectView {
  readonly name: string;
  readonly status?: { readonly usage?: Partial<UsageStatus>; readonly lineage?: string };
}

export interface UsagePassOptions {
  readonly keys: Iterable<KeyObjectView>;
  readonly read: (name: string) => Promise<KeyStatusView | undefined>;
  readonly patch: (name: string, status: KeyStatusView) => Promise<void>;
  /** Taken before every write: the API server write limit. */
  readonly limiter: { take(): Promise<void> };
  /** Called when a read or write fails; a failed read ends the pass (the next one retries). */
  readonly onError: (name: string, err: unknown, during: 'read' | 'write') => void;
}

/**
 * One pass of the usage status writer: every key whose month-to-date usage or lineage differs from
 * what its status shows is patched, the rest are skipped; writes wait for the rate limit. With W
 * keys whose usage changed, a pass takes about W / qps seconds, so the worst-case staleness of a
 * key's status is the interval plus that (docs/scale.md). Returns the number of writes.
 */
export async function writeUsagePass(o: UsagePassOptions): Promise<number> {
  let writes = 0;
  for (const key of o.keys) {
    let view: KeyStatusView | undefined;
    try {
      view = await o.read(key.name);
    } catch (err) {
      o.onError(key.name, err, 'read');
      return writes;
    }
    if (!view || (usageUpToDate(key.status?.usage, view.usage) && key.status?.lineage === view.lineage)) continue;
    await o.limiter.take();
    try {
      await o.patch(key.name, view);
      writes += 1;
    } catch (err) {
      o.onError(key.name, err, 'write');
    }
  }
  return writes;
}
