/**
 * The one metrics registry. Names are prefixed `tollgate_` and carry units; labels come only from
 * bounded sets (key name, provider, model names that exist in config), never from request ids.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'tollgate_process_' });

const requestLabels = ['consumer', 'provider', 'model', 'upstream_model', 'status', 'api'] as const;

export const requestsTotal = new Counter({
  name: 'tollgate_requests_total',
  help: 'Requests handled, by consumer (ApiKey), provider, model (after mapping), upstream model, HTTP status and API (chat, embeddings, messages, count_tokens, responses, models).',
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

export const timeToFirstTokenSeconds = new Histogram({
  name: 'tollgate_time_to_first_token_seconds',
  help: 'Streams: time from request headers to the first response body bytes, by provider and model (streams whose body is inspected, i.e. all with --stream-usage=all).',
  labelNames: ['provider', 'model'] as const,
  buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
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

// --- Resilience (issue 6): failover, circuit breaking, balancing. Labels: the target's provider and
// upstream model (both from config, so bounded); discovered endpoints are aggregated into their provider. ---

export const upstreamAttemptsTotal = new Counter({
  name: 'tollgate_upstream_attempts_total',
  help: 'Upstream attempts by target (provider, upstream model) and result (success, http_429, http_5xx, timeout, reset, retried: a try Envoy retried on the same target, broken_after_first_byte).',
  labelNames: ['provider', 'model', 'result'] as const,
  registers: [registry],
});

export const failoversTotal = new Counter({
  name: 'tollgate_failovers_total',
  help: 'Requests sent on to another attempt after a failed one, by the target (provider, upstream model) that failed and why.',
  labelNames: ['provider', 'model', 'reason'] as const,
  registers: [registry],
});

export const circuitTransitionsTotal = new Counter({
  name: 'tollgate_circuit_transitions_total',
  help: 'Circuit decisions by target (provider, upstream model): ejected, rested (429 Retry-After), probe, returned, reopened, last-resort (sent to a target that is out because nothing else could serve the model).',
  labelNames: ['provider', 'model', 'decision'] as const,
  registers: [registry],
});

export const circuitOpenTargets = new Gauge({
  name: 'tollgate_circuit_open_targets',
  help: 'Targets (a model at a provider, or at one discovered endpoint of it) currently out of rotation (open or resting).',
  labelNames: ['provider', 'model'] as const,
  registers: [registry],
});

export const upstreamOutstanding = new Gauge({
  name: 'tollgate_upstream_outstanding_requests',
  help: 'Attempts in flight per target (provider, upstream model), as seen by this replica.',
  labelNames: ['provider', 'model'] as const,
  registers: [registry],
});

export const endpointPickerTotal = new Counter({
  name: 'tollgate_endpoint_picker_total',
  help: 'External endpoint picker calls by result (picked, timeout, error, invalid).',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const routingPlans = new Gauge({
  name: 'tollgate_routing_plans',
  help: 'Request plans held in memory (requests between their request stage and their end); returns to 0 when idle.',
  registers: [registry],
});

// --- limits, quotas and usage (issue 5) ---

export const tokensTotal = new Counter({
  name: 'tollgate_tokens_total',
  help: 'Tokens used, by consumer (ApiKey), provider, model and kind (prompt or completion), from the upstream usage (or counted when none came).',
  labelNames: ['consumer', 'provider', 'model', 'kind'] as const,
  registers: [registry],
});

export const rateLimitRejectionsTotal = new Counter({
  name: 'tollgate_ratelimit_rejections_total',
  help: 'Requests refused by a limit, by limit (requestsPerMinute, tokensPerMonth, ...) and scope (key, ancestor, provider).',
  labelNames: ['limit', 'scope'] as const,
  registers: [registry],
});

export const midStreamExhaustedTotal = new Counter({
  name: 'tollgate_ratelimit_midstream_exhausted_total',
  help: 'Streams whose token budget ran out mid-stream, by policy applied (finish or error).',
  labelNames: ['policy'] as const,
  registers: [registry],
});

export const redisDurationSeconds = new Histogram({
  name: 'tollgate_redis_duration_seconds',
  help: 'Latency of Redis operations (admit, adjust, usage_flush, ping), failures included.',
  labelNames: ['op'] as const,
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [registry],
});

export const redisErrorsTotal = new Counter({
  name: 'tollgate_redis_errors_total',
  help: 'Failed Redis operations, by operation.',
  labelNames: ['op'] as const,
  registers: [registry],
});

export const limiterMode = new Gauge({
  name: 'tollgate_limiter_mode',
  help: 'Limiter mode: 1 for the current mode (normal or degraded), 0 for the other; backend is redis or local.',
  labelNames: ['mode', 'backend'] as const,
  registers: [registry],
});

export const limiterDurationSeconds = new Histogram({
  name: 'tollgate_limiter_admit_seconds',
  help: 'Time the limits step adds to a request (token estimate + admission), by backend.',
  labelNames: ['backend'] as const,
  buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
  registers: [registry],
});

export const usageFlushesTotal = new Counter({
  name: 'tollgate_usage_flushes_total',
  help: 'Usage batch flushes, by result (ok, error, duplicate).',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const usagePendingRecords = new Gauge({
  name: 'tollgate_usage_pending_records',
  help: 'Usage records held in memory, not yet flushed.',
  registers: [registry],
});

// --- Admin port (issue 19): actions need a token; refusals are counted, not logged at info. ---

export const adminDeniedTotal = new Counter({
  name: 'tollgate_admin_denied_total',
  help: 'Admin actions refused, by route and reason (missing or invalid token: 401; token without the scope: 403).',
  labelNames: ['path', 'reason'] as const,
  registers: [registry],
});

export const costTotal = new Counter({
  name: 'tollgate_cost_total',
  help: 'Cost of requests in MICRO-units of the gateway currency (1 USD = 1000000), by consumer (ApiKey), model and provider; exact: the sub-micro remainder is carried, never rounded away.',
  labelNames: ['consumer', 'model', 'provider'] as const,
  registers: [registry],
});

export const unpricedRequestsTotal = new Counter({
  name: 'tollgate_unpriced_requests_total',
  help: 'Requests answered by a model that has no price (neither on its ModelProvider nor in the GatewayConfig default table): they cost 0 and do not count against money budgets. By served model and provider.',
  labelNames: ['model', 'provider'] as const,
  registers: [registry],
});

export const unpricedModels = new Gauge({
  name: 'tollgate_unpriced_models',
  help: 'Served models of the configuration in force that have no price on any provider (1 per model): their requests cost 0 and do not count against money budgets.',
  labelNames: ['model'] as const,
  registers: [registry],
});

/** Sub-micro remainders per cost series (bounded like the series themselves: key x model x provider). */
const costRemainders = new Map<string, bigint>();

/**
 * Adds an exact cost in picos to tollgate_cost_total: the counter moves by whole micro-units and the
 * remainder waits for the next request of the same series, so the counter always equals
 * floor(exact total in micros) however many requests are added.
 */
export function addCost(consumer: string, model: string, provider: string, picos: bigint): void {
  if (picos <= 0n) return;
  const id = `${consumer}\u0000${model}\u0000${provider}`;
  const total = (costRemainders.get(id) ?? 0n) + picos;
  const micros = total / 1_000_000n;
  costRemainders.set(id, total - micros * 1_000_000n);
  if (micros > 0n) costTotal.inc({ consumer, model, provider }, Number(micros));
}
// --- MCP gateway (issue 16). Labels: ApiKey names, MCPServer names, tool names the servers publish. ---

export const mcpToolCallsTotal = new Counter({
  name: 'tollgate_mcp_tool_calls_total',
  help: 'MCP tool calls by consumer (ApiKey), server (MCPServer namespace/name), tool and outcome (ok, tool_error, denied, unknown_tool, rate_limited, timeout, unavailable, upstream_error, internal_error).',
  labelNames: ['consumer', 'server', 'tool', 'outcome'] as const,
  registers: [registry],
});

export const mcpToolCallDurationSeconds = new Histogram({
  name: 'tollgate_mcp_tool_call_duration_seconds',
  help: 'Time of MCP tool calls that reached the upstream, by server and tool.',
  labelNames: ['server', 'tool'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});

export const mcpUpstreamUp = new Gauge({
  name: 'tollgate_mcp_upstream_up',
  help: '1 when the last tool discovery of an MCP server (namespace/name) from this replica succeeded, else 0.',
  labelNames: ['server'] as const,
  registers: [registry],
});

export const mcpSseRelaysTotal = new Counter({
  name: 'tollgate_mcp_sse_relays_total',
  help: 'HTTP+SSE POSTs relayed to the replica holding the stream, by outcome (accepted, not_found, unavailable, refused).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const mcpSseRelaySeconds = new Histogram({
  name: 'tollgate_mcp_sse_relay_seconds',
  help: 'Time from relaying an HTTP+SSE POST to the owning replica until its verdict.',
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
  registers: [registry],
});

export const mcpHttpRequestsTotal = new Counter({
  name: 'tollgate_mcp_http_requests_total',
  help: 'HTTP requests to the MCP listener by endpoint kind (aggregated, server, catalog, other) and status.',
  labelNames: ['endpoint', 'status'] as const,
  registers: [registry],
});

export const budgetCappedTotal = new Counter({
  name: 'tollgate_budget_capped_total',
  help: 'Requests admitted at the edge of a calendar budget (tokens or money) with their answer capped (max_tokens) to what was left.',
  registers: [registry],
});

// --- Guardrails (issue 18). Labels: key names, guardrail and rule names from config; never text. ---

export const tenantRequestsTotal = new Counter({
  name: 'tollgate_tenant_requests_total',
  help: 'Requests on a tenant host (GatewayConfig spec.tenants), by tenant name, consumer (ApiKey) and HTTP status.',
  labelNames: ['tenant', 'consumer', 'status'] as const,
  registers: [registry],
});

export const guardrailDecisionsTotal = new Counter({
  name: 'tollgate_guardrail_decisions_total',
  help: 'Guardrail findings acted on, by consumer (ApiKey), guardrail, rule (keywords, a pattern name, pii:<kind>), action (block, mask, log) and phase (request, response).',
  labelNames: ['consumer', 'guardrail', 'rule', 'action', 'phase'] as const,
  registers: [registry],
});

// --- Usage ledger (issue 17): Redis stream -> PostgreSQL. ---

export const ledgerWritesTotal = new Counter({
  name: 'tollgate_ledger_writes_total',
  help: 'PostgreSQL transactions of the usage ledger writer, by result (ok, error).',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const ledgerRecordsTotal = new Counter({
  name: 'tollgate_ledger_records_total',
  help: 'Requests (usage records) written into the PostgreSQL ledger by this replica.',
  registers: [registry],
});

export const ledgerBacklogBatches = new Gauge({
  name: 'tollgate_ledger_backlog_batches',
  help: 'Flushed usage batches waiting in the Redis stream for the PostgreSQL ledger, as last seen by this replica (its flushes and, on the writer, every 5 s). Bound: --ledger-backlog-max-batches (default 100000).',
  registers: [registry],
});

export const ledgerDroppedBatchesTotal = new Counter({
  name: 'tollgate_ledger_dropped_batches_total',
  help: 'Usage batches flushed by this replica that were not queued for the PostgreSQL ledger because the Redis backlog was at its bound (--ledger-backlog-max-batches). Their usage still counts in month-to-date totals and budgets.',
  registers: [registry],
});

export const ledgerDroppedRecordsTotal = new Counter({
  name: 'tollgate_ledger_dropped_records_total',
  help: 'Usage records (requests) in batches not queued for the PostgreSQL ledger because the Redis backlog was at its bound: missing from the ledger and its reports.',
  registers: [registry],
});
