/**
 * The deadline of one upstream tool call. Two clocks, as the SDK's `resetTimeoutOnProgress` and
 * `maxTotalTimeout` have them: the MCPServer's `timeoutSeconds` is how long the upstream may stay
 * silent (every progress notification starts it again), and `maxTotalTimeoutSeconds` caps the call
 * however much progress it reports. The gateway keeps its own clocks because it takes progress off
 * the upstream transport before the SDK Client sees it (upstreams.ts), so the SDK's would never be
 * reset. When a clock runs out, `signal` aborts with an UpstreamError naming which one: the SDK then
 * sends notifications/cancelled upstream and the call fails with that error.
 */
import { UpstreamError } from './upstream-error.js';

export class CallDeadline {
  private readonly controller = new AbortController();
  private idle: NodeJS.Timeout | undefined;
  private total: NodeJS.Timeout | undefined;
  private done = false;

  /**
   * @param idleMs  how long the upstream may stay silent (progress restarts it)
   * @param totalMs absolute cap from `start()`, progress or not
   * @param label   names the call in the error (`MCP server ns/name` ... `tools/call x`)
   */
  constructor(
    private readonly idleMs: number,
    private readonly totalMs: number,
    private readonly label: { readonly server: string; readonly what: string },
  ) {}

  /** Aborted when a clock runs out; the reason is the UpstreamError to report. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Starts both clocks (again, when the request is sent again on a reopened connection). */
  start(): void {
    if (this.done) return;
    clearTimeout(this.total);
    this.total = setTimeout(() => {
      this.expire(`MCP server ${this.label.server} did not finish ${this.label.what} within maxTotalTimeoutSeconds (${this.totalMs} ms), progress or not`);
    }, this.totalMs);
    this.touch();
  }

  /** The upstream reported progress: the silence clock starts again (the total one does not). */
  touch(): void {
    if (this.done || this.total === undefined) return;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      this.expire(`MCP server ${this.label.server} did not answer ${this.label.what} within ${this.idleMs} ms (timeoutSeconds; progress notifications restart it)`);
    }, this.idleMs);
  }

  /** Stops both clocks (the call ended). */
  dispose(): void {
    this.done = true;
    clearTimeout(this.idle);
    clearTimeout(this.total);
  }

  private expire(message: string): void {
    if (this.done) return;
    this.dispose();
    this.controller.abort(new UpstreamError('timeout', message));
  }
}
