/**
 * Lease-based leader election (coordination.k8s.io/v1 Lease), used so that only one replica writes
 * resource status while every replica serves traffic. Optimistic concurrency on the Lease's
 * resourceVersion makes takeover safe: two replicas can never both succeed in updating it.
 * Uses exactly the verbs get, create and update on leases (the chart's Role grants no more).
 */
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import { errorStatus } from './watch-retry.js';

export interface LeaderElectorOptions {
  readonly api: CoordinationV1Api;
  readonly namespace: string;
  readonly leaseName: string;
  readonly identity: string;
  readonly logger: Logger;
  readonly leaseDurationSeconds?: number;
  /** How often the leader renews and candidates retry. */
  readonly renewIntervalMs?: number;
  readonly onChange: (leading: boolean) => void;
}

/**
 * Lease times are MicroTime: the API server wants exactly six fractional digits, but client-node
 * serialises Date with milliseconds (rejected with 400). Strings pass through its serialiser as is.
 */
function microTime(value: Date | string): Date {
  const iso = new Date(value).toISOString(); // 2026-01-02T03:04:05.678Z
  return iso.replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

export class LeaderElector {
  private timer: NodeJS.Timeout | undefined;
  private leadingNow = false;
  private stopped = false;
  /** When we last renewed successfully (ms); leadership lapses if renewals fail for a lease duration. */
  private lastRenewMs = 0;

  constructor(private readonly options: LeaderElectorOptions) {}

  get leading(): boolean {
    return this.leadingNow;
  }

  start(): void {
    void this.tick();
  }

  /**
   * Stops campaigning. A leader also releases the Lease (empty holder, 1 s duration, as client-go's
   * ReleaseOnCancel does) so another replica takes over at its next try instead of after expiry.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const wasLeading = this.leadingNow;
    this.setLeading(false);
    if (!wasLeading) return;
    const { api, namespace, leaseName: name, identity } = this.options;
    try {
      const lease = await api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      const spec = lease.spec;
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: {
            ...spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            acquireTime: microTime(spec.acquireTime ?? new Date()),
            renewTime: microTime(new Date()),
          },
        },
      });
    } catch (err) {
      this.options.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not release the lease; it expires by itself');
    }
  }

  private get durationS(): number {
    return this.options.leaseDurationSeconds ?? 15;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.options.renewIntervalMs ?? 5000);
    this.timer.unref();
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leadingNow) return;
    this.leadingNow = leading;
    this.options.logger.info({ lease: this.options.leaseName, identity: this.options.identity, leading }, leading ? 'became status writer' : 'stopped being status writer');
    this.options.onChange(leading);
  }

  private async tick(): Promise<void> {
    try {
      const acquired = await this.tryAcquireOrRenew();
      if (acquired) this.lastRenewMs = Date.now();
      this.setLeading(acquired);
    } catch (err) {
      // Could not reach the API server: keep leading only while our lease is surely still valid.
      if (this.leadingNow && Date.now() - this.lastRenewMs > (this.durationS * 1000 * 2) / 3) this.setLeading(false);
      this.options.logger.warn({ err: err instanceof Error ? err.message : String(err), status: errorStatus(err) }, 'lease renewal failed');
    } finally {
      this.schedule();
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, leaseName: name, identity } = this.options;
    const now = new Date();
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (errorStatus(err) !== 404) throw err;
      try {
        await api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: this.durationS, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
          },
        });
        return true;
      } catch (createErr) {
        if (errorStatus(createErr) === 409) return false; // someone else created it first
        throw createErr;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? this.durationS) * 1000 < now.getTime();
    if (holder && holder !== identity && !expired) return false;
    const takeover = holder !== identity;
    try {
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: {
            ...spec,
            holderIdentity: identity,
            leaseDurationSeconds: this.durationS,
            acquireTime: microTime(takeover || !spec.acquireTime ? now : spec.acquireTime),
            renewTime: microTime(now),
            ...(takeover ? { leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
          },
        },
      });
      return true;
    } catch (err) {
      if (errorStatus(err) === 409) return false; // lost the race for this resourceVersion
      throw err;
    }
  }
}
