/**
 * Graceful shutdown of a gateway pod (Envoy + Tollgate). On SIGTERM, or when Envoy's preStop hook
 * calls the admin action POST /drain (with the pod token, docs/security.md), Tollgate:
 *
 * 1. turns /readyz to 503 `draining`, so the Service stops sending new connections to this pod;
 * 2. asks Envoy to drain (admin `POST /drain_listeners?graceful`): Envoy closes idle connections and
 *    asks clients to reconnect elsewhere (Connection: close, HTTP/2 GOAWAY), never cutting streams;
 * 3. keeps serving (late requests still get a full answer) until no request has been in flight for
 *    a quiet period, or the grace period is over;
 * then the process exits (src/lifecycle/shutdown.ts). /drain answers only then, so Envoy's SIGTERM
 * (after its preStop) comes when nothing is open. The chart's terminationGracePeriodSeconds covers
 * the grace period.
 */
import type { Logger } from '../observability/logger.js';

export interface DrainOptions {
  readonly logger: Logger;
  /** Requests in flight (open request-stage ext_proc streams). */
  readonly inflight: () => number;
  /** Envoy admin base URL, for example http://127.0.0.1:9901; undefined = no Envoy to drain. */
  readonly envoyAdminUrl: string | undefined;
  readonly graceMs: number;
  /** Nothing in flight for this long = drained. */
  readonly quietMs?: number;
  readonly pollMs?: number;
}

export type DrainResult = { readonly drained: true; readonly waitedMs: number } | { readonly drained: false; readonly waitedMs: number; readonly left: number };

export class Drainer {
  private running: Promise<DrainResult> | undefined;

  constructor(private readonly options: DrainOptions) {}

  get draining(): boolean {
    return this.running !== undefined;
  }

  /** Starts draining (once; later calls share the same result). */
  drain(reason: string): Promise<DrainResult> {
    this.running ??= this.run(reason);
    return this.running;
  }

  private async run(reason: string): Promise<DrainResult> {
    const { logger, graceMs } = this.options;
    const quietMs = this.options.quietMs ?? 1000;
    const pollMs = this.options.pollMs ?? 100;
    const started = Date.now();
    logger.info({ reason, graceMs, inflight: this.options.inflight() }, 'draining: not ready, letting open streams finish');
    await this.drainEnvoy();
    let quietSince: number | undefined;
    for (;;) {
      const now = Date.now();
      const open = this.options.inflight();
      if (open === 0) {
        quietSince ??= now;
        if (now - quietSince >= quietMs) {
          logger.info({ waitedMs: now - started }, 'drained: no request in flight');
          return { drained: true, waitedMs: now - started };
        }
      } else quietSince = undefined;
      if (now - started >= graceMs) {
        logger.warn({ waitedMs: now - started, left: open }, 'grace period over with requests still open');
        return { drained: false, waitedMs: now - started, left: open };
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  private async drainEnvoy(): Promise<void> {
    const url = this.options.envoyAdminUrl;
    if (!url) return;
    try {
      const res = await fetch(`${url.replace(/\/+$/, '')}/drain_listeners?graceful`, { method: 'POST', signal: AbortSignal.timeout(2000) });
      await res.text();
      this.options.logger.info({ status: res.status }, 'asked Envoy to drain its listeners');
    } catch (err) {
      this.options.logger.warn({ err }, 'could not ask Envoy to drain (it may already be gone)');
    }
  }
}
