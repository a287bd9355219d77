/**
 * Self-hosted endpoints: the ready endpoints of Services, from their EndpointSlices. A ModelProvider
 * with `spec.service: {name, port}` is served by those endpoints, each a separate target for
 * balancing and circuit breaking (src/routing/router.ts reads them through `EndpointSource`).
 *
 * One list+watch of EndpointSlices in the gateway's namespace (ResilientInformer: restarts with
 * backoff, keeps the last known slices while the API server is away). Lookups are served from a
 * cache rebuilt lazily after a change, so the hot path does a map lookup.
 */
import { DiscoveryV1Api, type KubeConfig, type V1EndpointSlice } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { EndpointSource } from '../routing/router.js';
import { ResilientInformer } from './informer.js';

/** Label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * `ip:port` of the ready endpoints of `service` that expose `port`, sorted and without duplicates.
 * An endpoint counts when `conditions.ready` is not false (unset means ready, as in Kubernetes) and
 * it is not terminating. IPv6 addresses are bracketed for use as an authority.
 */
export function readyEndpoints(slices: readonly V1EndpointSlice[], service: string, port: number): string[] {
  const out = new Set<string>();
  for (const slice of slices) {
    if (slice.metadata?.labels?.[SERVICE_NAME_LABEL] !== service) continue;
    if (!(slice.ports ?? []).some((p) => p.port === port)) continue;
    const v6 = slice.addressType === 'IPv6';
    if (slice.addressType === 'FQDN') continue; // not an address Envoy can dial as ip:port
    for (const ep of slice.endpoints ?? []) {
      if (ep.conditions?.ready === false || ep.conditions?.terminating === true) continue;
      const address = ep.addresses[0];
      if (!address) continue;
      out.add(v6 ? `[${address}]:${port}` : `${address}:${port}`);
    }
  }
  return [...out].sort();
}

export interface EndpointSliceDiscoveryOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly logger: Logger;
}

export class EndpointSliceDiscovery implements EndpointSource {
  private readonly informer: ResilientInformer<V1EndpointSlice>;
  /** `service/port` -> endpoints; cleared on every change. */
  private cache = new Map<string, readonly string[]>();
  private readonly logger: Logger;

  constructor(private readonly options: EndpointSliceDiscoveryOptions) {
    const api = options.kubeConfig.makeApiClient(DiscoveryV1Api);
    this.logger = options.logger;
    this.informer = new ResilientInformer<V1EndpointSlice>({
      name: 'EndpointSlice',
      kubeConfig: options.kubeConfig,
      path: `/apis/discovery.k8s.io/v1/namespaces/${options.namespace}/endpointslices`,
      list: () => api.listNamespacedEndpointSlice({ namespace: options.namespace }),
      logger: options.logger,
      onChange: () => {
        this.cache = new Map();
      },
    });
  }

  /** Resolves after the first list. */
  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  endpoints(namespace: string, service: string, port: number): readonly string[] {
    if (namespace !== this.options.namespace) return NONE;
    const key = `${service}/${port}`;
    let found = this.cache.get(key);
    if (!found) {
      found = readyEndpoints(this.informer.list(), service, port);
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(key, found);
      this.logger.debug({ service, port, endpoints: found.length }, 'service endpoints');
    }
    return found;
  }
}

const NONE: readonly string[] = Object.freeze([]);
