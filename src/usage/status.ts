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
