/**
 * The end of a Tollgate process. Whatever starts it (SIGTERM from the kubelet, Ctrl-C, or Envoy's
 * preStop hook calling POST /drain with the pod token), a drain always ends the process: drain,
 * stop the servers, flush, exit. A drained replica never lingers alive but unready (issue 19):
 * Kubernetes restarts or replaces it.
 */
import type { Logger } from '../observability/logger.js';
import type { DrainResult, Drainer } from './drain.js';

export interface ShutdownOptions {
  readonly logger: Logger;
  readonly drainer: Drainer;
  /** Runs as soon as shutdown begins (for example: stop watching config, hand over a Lease). */
  readonly onBegin?: () => void;
  /** Runs after the drain: closes servers and flushes buffers. Bounded by `stopTimeoutMs`. */
  readonly stop: () => Promise<void>;
  readonly stopTimeoutMs?: number;
  /** process.exit in production; a spy in tests. */
  readonly exit: (code: number) => void;
}

/** Begins once; every later call joins the same drain. */
export class Shutdown {
  private drained: Promise<DrainResult> | undefined;

  constructor(private readonly options: ShutdownOptions) {}

  get begun(): boolean {
    return this.drained !== undefined;
  }

  /** Starts the shutdown (once); resolves with the drain result, before the process exits. */
  begin(reason: string): Promise<DrainResult> {
    if (this.drained) return this.drained;
    const { logger, drainer } = this.options;
    logger.info({ reason }, 'shutting down: draining, then exiting');
    this.options.onBegin?.();
    const drained = drainer.drain(reason);
    this.drained = drained;
    // After the drain answer goes out (the preStop caller reads it), stop and exit.
    void drained.then(
      () => this.finish(),
      (err: unknown) => {
        logger.error({ err }, 'drain failed; exiting');
        return this.finish(1);
      },
    );
    return drained;
  }

  private async finish(code = 0): Promise<void> {
    const { logger, stop, exit } = this.options;
    const limitMs = this.options.stopTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), limitMs);
    });
    try {
      const outcome = await Promise.race([stop().then(() => 'stopped' as const), timedOut]);
      if (outcome === 'timeout') {
        logger.warn({ limitMs }, 'shutdown steps did not finish in time; exiting anyway');
        code = 1;
      }
    } catch (err) {
      logger.error({ err }, 'shutdown step failed');
      code = 1;
    } finally {
      clearTimeout(timer);
    }
    logger.info({ code }, 'stopped');
    logger.flush();
    exit(code);
  }
}
