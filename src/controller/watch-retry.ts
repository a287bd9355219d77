/**
 * What both informers do when a list or watch fails: how long to wait, how the back-off grows, and
 * what to tell the operator. One policy, so the two kinds of watch behave alike.
 */
import type { Logger } from 'pino';

/** The HTTP status of a client-node error, when it carries one. */
export function errorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.code === 'number') return e.code;
  return undefined;
}

export interface RetryPlan {
  /** Wait this long before the next attempt. */
  readonly delayMs: number;
  /** The back-off to use after the next failure. */
  readonly nextBackoffMs: number;
}

/**
 * Plans the retry after `err` and logs it. A 429 means the API server is up but not ready for this
 * resource yet (just restarted): retry soon without growing the back-off.
 */
export function planWatchRetry(err: unknown, backoffMs: number, maxBackoffMs: number, logger: Logger, informer: string): RetryPlan {
  const status = errorStatus(err);
  const delayMs = status === 429 ? Math.min(backoffMs, 1000) : backoffMs;
  const nextBackoffMs = status === 429 ? backoffMs : Math.min(backoffMs * 2, maxBackoffMs);
  const level = status === 403 || status === 401 || status === 404 ? 'error' : 'warn';
  logger[level](
    { informer, status, err: err instanceof Error ? err.message : String(err), retryInMs: delayMs },
    status === 403
      ? 'watch forbidden by RBAC; retrying'
      : status === 404
        ? 'resource type not found (are the Tollgate CRDs installed?); retrying'
        : 'watch failed; keeping the last known objects and retrying',
  );
  return { delayMs, nextBackoffMs };
}
