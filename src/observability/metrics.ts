/**
 * The one metrics registry. Names are prefixed `tollgate_` and carry units; labels come only from
 * bounded sets (key name, provider, model names that exist in config), never from request ids.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'tollgate_process_' });

const requestLabels = ['consumer', 'provider', 'model', 'upstream_model', 'status'] as const;

export const requestsTotal = new Counter({
  name: 'tollgate_requests_total',
  help: 'Requests handled, by consumer (ApiKey), provider, requested model, upstream model and HTTP status.',
  labelNames: requestLabels,
  registers: [registry],
});

export const requestDurationSeconds = new Histogram({
  name: 'tollgate_request_duration_seconds',
  help: 'Time from request headers to the end of the response, by provider and model.',
  labelNames: ['provider', 'model'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers: [registry],
});

export const responseHeadersSeconds = new Histogram({
  name: 'tollgate_response_headers_seconds',
  help: 'Time from request headers to upstream response headers (time to first byte), by provider and model.',
  labelNames: ['provider', 'model'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const extprocErrorsTotal = new Counter({
  name: 'tollgate_extproc_errors_total',
  help: 'Unexpected errors in the ext_proc stream handler (bugs; the request failed closed).',
  registers: [registry],
});

export const configReloadsTotal = new Counter({
  name: 'tollgate_config_reloads_total',
  help: 'Config snapshots applied or rejected.',
  labelNames: ['result'] as const,
  registers: [registry],
});
