/**
 * A provider credential that expires (AWS temporary credentials, Google OAuth2 access tokens), served
 * from a cache and refreshed in the background, so the request path never waits for a credential
 * endpoint while a valid credential exists:
 *   - valid and more than `refreshBeforeMs` left: returned synchronously;
 *   - valid but inside that window: returned synchronously, and one background refresh starts
 *     (single flight; after one fails, or returns a credential that expires no later than the one it
 *     replaces, as a metadata server that caches tokens does, the next background refresh waits RETRY_MS);
 *   - none, or expired: the request waits for the (single) pending fetch. Expired credentials are
 *     never used.
 */

/** Refresh this long before expiry (STS credentials and Google tokens live an hour by default). */
export const REFRESH_BEFORE_MS = 5 * 60_000;
/** Pause between background refreshes that failed or did not extend the expiry past the window. */
export const RETRY_MS = 10_000;

/**
 * Where refreshes are reported (main.ts logs them): the request path only learns that signing
 * failed, the operator needs why (STS's code, the metadata server's reason). Messages name the
 * source and the endpoint's answer, never a credential.
 */
export interface CredentialEvents {
  refreshed(source: string, expiresAt: number | undefined): void;
  failed(source: string, message: string): void;
}

let events: CredentialEvents | undefined;

/** Sets (or clears) the process's receiver of credential refresh events. */
export function reportCredentialEvents(receiver: CredentialEvents | undefined): void {
  events = receiver;
}

/**
 * Reports a credential source that cannot work at all (an environment that configures none, an
 * endpoint the SDK refuses), found when a configuration loads: the same log line as a failed fetch.
 */
export function reportCredentialProblem(source: string, message: string): void {
  events?.failed(source, message);
}

export interface Expiring<T> {
  readonly value: T;
  /** Epoch ms; undefined for a credential that does not expire (static keys). */
  readonly expiresAt: number | undefined;
}

export class Refreshing<T> {
  private current: Expiring<T> | undefined;
  private pending: Promise<T> | undefined;
  private notBefore = 0;
  /** When a failure was last reported: at most one report per RETRY_MS while requests keep failing. */
  private lastFailureReport = Number.NEGATIVE_INFINITY;

  constructor(
    /** What the source is, for error messages (never a secret). */
    readonly source: string,
    private readonly fetchValue: () => Promise<Expiring<T>>,
    private readonly now: () => number = Date.now,
    initial?: Expiring<T>,
    private readonly refreshBeforeMs: number = REFRESH_BEFORE_MS,
  ) {
    this.current = initial;
  }

  /** A valid credential now (synchronously) when cached; otherwise the pending fetch. */
  get(): T | Promise<T> {
    const current = this.current;
    if (current) {
      if (current.expiresAt === undefined) return current.value;
      const now = this.now();
      const left = current.expiresAt - now;
      if (left > 0) {
        if (left < this.refreshBeforeMs && this.pending === undefined && now >= this.notBefore) void this.refresh().catch(() => undefined);
        return current.value;
      }
    }
    return this.refresh();
  }

  private refresh(): Promise<T> {
    this.pending ??= this.fetchValue().then(
      (fresh) => {
        this.pending = undefined;
        const previous = this.current?.expiresAt;
        this.current = fresh;
        // A success ends the pause after failures (the source works again); one that did not extend the expiry starts one.
        this.notBefore = previous !== undefined && fresh.expiresAt !== undefined && fresh.expiresAt <= previous ? this.now() + RETRY_MS : 0;
        events?.refreshed(this.source, fresh.expiresAt);
        return fresh.value;
      },
      (err: unknown) => {
        this.pending = undefined;
        const now = this.now();
        this.notBefore = now + RETRY_MS;
        const message = err instanceof Error ? err.message : String(err);
        if (now - this.lastFailureReport >= RETRY_MS) {
          this.lastFailureReport = now;
          events?.failed(this.source, message);
        }
        throw new Error(`${this.source}: ${message}`);
      },
    );
    return this.pending;
  }
}
