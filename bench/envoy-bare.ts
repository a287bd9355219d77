/**
 * The bare-Envoy baseline: Tollgate's own Envoy bootstrap (same listener, buffer limit, access log,
 * local replies, worker count) with the ext_proc and dynamic-forward-proxy filters removed and one
 * static route to the fake provider. Derived from the rendered template rather than written by hand,
 * so the baseline follows every change to envoy/envoy.yaml.
 */
import { parse } from 'yaml';
import { renderEnvoyConfig } from '../src/dev/envoy-config.js';

type Json = Record<string, unknown>;

function obj(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`envoy.yaml: ${what} is not an object`);
  return value as Json;
}

function arr(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`envoy.yaml: ${what} is not a list`);
  return value;
}

const NO_LIMITS = { thresholds: [{ max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 }] };

/**
 * What the do-nothing ext_proc (bench/echo-extproc.ts) is sent: the same messages a Tollgate request
 * with usage accounting exchanges (request headers, buffered request body, response headers, every
 * response body chunk), set statically since the echo never overrides modes.
 */
const ECHO_PROCESSING_MODE = {
  request_header_mode: 'SEND',
  request_body_mode: 'BUFFERED',
  request_trailer_mode: 'SKIP',
  response_header_mode: 'SEND',
  response_body_mode: 'STREAMED',
  response_trailer_mode: 'SKIP',
};

/**
 * Renders the bare-Envoy config routing everything to 127.0.0.1:`upstreamPort`. With
 * `echoExtprocSocket`, Tollgate's ext_proc filter and cluster stay, pointed at that socket (the
 * do-nothing ext_proc floor).
 */
export async function bareEnvoyConfig(listenPort: number, adminPort: number, upstreamPort: number, echoExtprocSocket?: string): Promise<string> {
  const rendered = await renderEnvoyConfig({ listenPort, adminPort, extprocSocket: echoExtprocSocket ?? '/nonexistent/bench.sock' });
  const config = obj(parse(rendered, { maxAliasCount: -1 }), 'root');
  const resources = obj(config['static_resources'], 'static_resources');
  // Internal listeners (the per-attempt stage) only serve Tollgate's routing: the baseline has none.
  resources['listeners'] = arr(resources['listeners'], 'listeners').filter((l) => !('internal_listener' in obj(l, 'listener')));
  for (const listener of arr(resources['listeners'], 'listeners')) {
    for (const chain of arr(obj(listener, 'listener')['filter_chains'], 'filter_chains')) {
      for (const filter of arr(obj(chain, 'filter_chain')['filters'], 'filters')) {
        const hcm = obj(obj(filter, 'filter')['typed_config'], 'typed_config');
        if (!Array.isArray(hcm['http_filters'])) continue;
        hcm['http_filters'] = arr(hcm['http_filters'], 'http_filters').filter((f) => {
          const filter = obj(f, 'http_filter');
          const name = String(filter['name']);
          if (name === 'envoy.filters.http.ext_proc' && echoExtprocSocket !== undefined) {
            obj(filter['typed_config'], 'ext_proc typed_config')['processing_mode'] = ECHO_PROCESSING_MODE;
            return true;
          }
          return name !== 'envoy.filters.http.ext_proc' && name !== 'envoy.filters.http.dynamic_forward_proxy';
        });
        const routeConfig = obj(hcm['route_config'], 'route_config');
        routeConfig['virtual_hosts'] = [
          { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'bench_upstream', timeout: '0s', idle_timeout: '300s' } }] },
        ];
      }
    }
  }
  // Only the upstream the baseline uses (and the ext_proc cluster for the echo): the DFP clusters
  // have no filter left to use them.
  const extprocCluster = arr(resources['clusters'], 'clusters').find((c) => obj(c, 'cluster')['name'] === 'tollgate_extproc');
  if (echoExtprocSocket !== undefined && !extprocCluster) throw new Error('envoy.yaml: no tollgate_extproc cluster');
  resources['clusters'] = [
    ...(echoExtprocSocket !== undefined ? [extprocCluster] : []),
    {
      name: 'bench_upstream',
      type: 'STATIC',
      connect_timeout: '10s',
      circuit_breakers: NO_LIMITS,
      load_assignment: {
        cluster_name: 'bench_upstream',
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: upstreamPort } } } }] }],
      },
    },
  ];
  // JSON is YAML: Envoy reads it from the .yaml file startEnvoy writes.
  return JSON.stringify(config, null, 1);
}
