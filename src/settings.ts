/** Process settings from the command line and environment (flags win). */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** Where the config comes from: a directory of YAML files, or the Kubernetes API. */
export type SourceSettings =
  | { readonly kind: 'file'; readonly configDir: string }
  | {
      readonly kind: 'kubernetes';
      /** Namespace whose ModelProviders, ApiKeys and labelled Secrets are read. */
      readonly namespace: string;
      /** Label selector of the Secrets Tollgate may read. */
      readonly secretSelector: string;
      /** GatewayConfig YAML (a mounted ConfigMap), optional. */
      readonly gatewayConfigFile: string | undefined;
      /** Lease that elects the one replica writing status; empty disables status writing. */
      readonly leaseName: string;
    };

export interface Settings {
  readonly source: SourceSettings;
  /** ext_proc gRPC address: `unix:/path` or `host:port`. */
  readonly extprocAddress: string;
  readonly adminHost: string;
  readonly adminPort: number;
  /**
   * Where Tollgate writes a fresh random token at start (the pod credential, src/admin/authorizer.ts);
   * a bearer of it may call admin actions (POST /drain). Undefined = admin actions are off.
   */
  readonly podTokenFile: string | undefined;
  /**
   * File holding the operator token (a mounted Secret key, at least 32 characters): its bearer may
   * read usage reports (GET /admin/usage). Undefined = reports are off (401).
   */
  readonly adminTokenFile: string | undefined;
  /** Time given to open streams on shutdown. */
  readonly shutdownGraceMs: number;
  /** Envoy admin URL, drained on shutdown (src/lifecycle/drain.ts); undefined = none. */
  readonly envoyAdminUrl: string | undefined;
  /** Limits, Redis and usage accounting (see docs/limits.md). */
  readonly limits: LimitSettings;
  /** The MCP listener (src/mcp/) that Envoy routes /mcp to. */
  readonly mcp: McpSettings;
  /** The directory of stored Responses API responses (src/responses/directory.ts). */
  readonly responses: ResponsesSettings;
}

export interface ResponsesSettings {
  /** How long the gateway remembers where a stored response lives (OpenAI keeps them 30 days). */
  readonly ttlMs: number;
  /** Entries of the in-process directory (without Redis; with Redis, its local fallback copy). */
  readonly maxEntries: number;
}

export interface McpSettings {
  /** `unix:/path` or `host:port`. */
  readonly address: string;
  /** Largest JSON-RPC request body accepted (413 above it). */
  readonly maxBodyBytes: number;
  /**
   * Secret that seals MCP session ids (AES-256-GCM). Every replica needs the same one so any replica
   * can serve a session; when unset, a random one per process (sessions then live on one replica).
   */
  readonly sessionSecret: string | undefined;
}

export interface LimitSettings {
  /** Redis URL; absent = in-process limiter and usage totals (single replica). */
  readonly redisUrl: string | undefined;
  readonly redisMode: 'standalone' | 'sentinel' | 'cluster';
  readonly redisSentinelName: string | undefined;
  readonly redisSentinels: readonly string[];
  readonly redisPrefix: string;
  readonly redisTimeoutMs: number;
  /** Redis unreachable: `open` = local limits / replicas, `closed` = 503. */
  readonly failurePolicy: 'open' | 'closed';
  /** Gateway replicas sharing the limits (divides limits in degraded `open` mode). */
  readonly replicas: number;
  readonly usageFlushMs: number;
  readonly usageFlushRecords: number;
  /** Inspect every stream for usage (`all`) or only token-limited ones (`limited`). */
  readonly streamUsage: 'all' | 'limited';
  /** Kubernetes mode: how often month-to-date usage is written into ApiKey status. */
  readonly usageStatusMs: number;
  /**
   * PostgreSQL URL of the usage ledger (`postgres://user:pass@host:5432/db`); absent = no ledger.
   * Needs Redis: records reach the ledger through a Redis stream (docs/billing.md).
   */
  readonly ledgerUrl: string | undefined;
  /**
   * Bound of the Redis stream of batches waiting for the ledger (entries, one per flush). At the
   * bound new batches are not queued for the ledger, and are counted (docs/billing.md).
   */
  readonly ledgerBacklogMaxBatches: number;
}

const env = process.env;

/** Reads settings; throws with a readable message on bad values. */
export function readSettings(argv: readonly string[]): Settings {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'config-dir': { type: 'string' },
      source: { type: 'string' },
      namespace: { type: 'string' },
      'secret-selector': { type: 'string' },
      'gateway-config': { type: 'string' },
      'lease-name': { type: 'string' },
      'extproc-address': { type: 'string' },
      'admin-host': { type: 'string' },
      'admin-port': { type: 'string' },
      'pod-token-file': { type: 'string' },
      'admin-token-file': { type: 'string' },
      'shutdown-grace-seconds': { type: 'string' },
      'envoy-admin-url': { type: 'string' },
      'redis-url': { type: 'string' },
      'redis-mode': { type: 'string' },
      'redis-sentinel-name': { type: 'string' },
      'redis-sentinels': { type: 'string' },
      'redis-prefix': { type: 'string' },
      'redis-timeout-ms': { type: 'string' },
      'limiter-failure-policy': { type: 'string' },
      'replicas': { type: 'string' },
      'usage-flush-ms': { type: 'string' },
      'usage-flush-records': { type: 'string' },
      'stream-usage': { type: 'string' },
      'usage-status-seconds': { type: 'string' },
      'ledger-url': { type: 'string' },
      'ledger-backlog-max-batches': { type: 'string' },
      'mcp-address': { type: 'string' },
      'mcp-max-body-bytes': { type: 'string' },
      'responses-ttl-seconds': { type: 'string' },
      'responses-max-entries': { type: 'string' },
    },
    strict: true,
  });
  return {
    source: readSource(values),
    extprocAddress: values['extproc-address'] ?? env['TOLLGATE_EXTPROC_ADDRESS'] ?? '127.0.0.1:9002',
    adminHost: values['admin-host'] ?? env['TOLLGATE_ADMIN_HOST'] ?? '0.0.0.0',
    adminPort: toInt('admin-port', values['admin-port'] ?? env['TOLLGATE_ADMIN_PORT'] ?? '9090'),
    podTokenFile: values['pod-token-file'] || env['TOLLGATE_POD_TOKEN_FILE'] || undefined,
    adminTokenFile: values['admin-token-file'] || env['TOLLGATE_ADMIN_TOKEN_FILE'] || undefined,
    shutdownGraceMs: 1000 * toInt('shutdown-grace-seconds', values['shutdown-grace-seconds'] ?? env['TOLLGATE_SHUTDOWN_GRACE_SECONDS'] ?? '30'),
    envoyAdminUrl: values['envoy-admin-url'] ?? env['TOLLGATE_ENVOY_ADMIN_URL'],
    limits: readLimitSettings(values),
    mcp: {
      address: values['mcp-address'] ?? env['TOLLGATE_MCP_ADDRESS'] ?? '127.0.0.1:9003',
      maxBodyBytes: toInt('mcp-max-body-bytes', values['mcp-max-body-bytes'] ?? env['TOLLGATE_MCP_MAX_BODY_BYTES'] ?? String(4 * 1024 * 1024)),
      // Environment only: a secret on the command line would show in `ps`.
      sessionSecret: env['TOLLGATE_MCP_SESSION_SECRET'] || undefined,
    },
    responses: readResponsesSettings(values),
  };
}

function readResponsesSettings(values: Record<string, string | boolean | undefined>): ResponsesSettings {
  const v = (flag: string, envName: string, fallback: string): string => {
    const x = values[flag];
    return typeof x === 'string' ? x : (env[envName] ?? fallback);
  };
  const ttlSeconds = toInt('responses-ttl-seconds', v('responses-ttl-seconds', 'TOLLGATE_RESPONSES_TTL_SECONDS', String(30 * 24 * 3600)));
  const maxEntries = toInt('responses-max-entries', v('responses-max-entries', 'TOLLGATE_RESPONSES_MAX_ENTRIES', '100000'));
  if (ttlSeconds < 1) throw new Error('--responses-ttl-seconds must be at least 1');
  if (maxEntries < 1) throw new Error('--responses-max-entries must be at least 1');
  return { ttlMs: ttlSeconds * 1000, maxEntries };
}

function oneOf<T extends string>(name: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) throw new Error(`--${name} must be one of ${allowed.join(', ')}, got "${text}"`);
  return text as T;
}

function readLimitSettings(values: Record<string, string | boolean | undefined>): LimitSettings {
  const v = (flag: string, envName: string): string | undefined => {
    const x = values[flag];
    return typeof x === 'string' ? x : env[envName];
  };
  const replicas = toInt('replicas', v('replicas', 'TOLLGATE_REPLICAS') ?? '1');
  if (replicas < 1) throw new Error('--replicas must be at least 1');
  const redisUrl = v('redis-url', 'TOLLGATE_REDIS_URL') || undefined;
  const ledgerUrl = v('ledger-url', 'TOLLGATE_LEDGER_URL') || undefined;
  if (ledgerUrl && !redisUrl) throw new Error('--ledger-url needs --redis-url: usage records reach the ledger through a Redis stream');
  if (ledgerUrl && !/^postgres(ql)?:\/\//.test(ledgerUrl)) throw new Error('--ledger-url must be a postgres:// URL');
  const ledgerBacklogMaxBatches = toInt('ledger-backlog-max-batches', v('ledger-backlog-max-batches', 'TOLLGATE_LEDGER_BACKLOG_MAX_BATCHES') ?? '100000');
  if (ledgerBacklogMaxBatches < 1) throw new Error('--ledger-backlog-max-batches must be at least 1');
  return {
    redisUrl,
    ledgerUrl,
    ledgerBacklogMaxBatches,
    redisMode: oneOf('redis-mode', v('redis-mode', 'TOLLGATE_REDIS_MODE') ?? 'standalone', ['standalone', 'sentinel', 'cluster'] as const),
    redisSentinelName: v('redis-sentinel-name', 'TOLLGATE_REDIS_SENTINEL_NAME'),
    redisSentinels: (v('redis-sentinels', 'TOLLGATE_REDIS_SENTINELS') ?? '').split(',').filter((x) => x.length > 0),
    redisPrefix: v('redis-prefix', 'TOLLGATE_REDIS_PREFIX') ?? 'tollgate:',
    redisTimeoutMs: toInt('redis-timeout-ms', v('redis-timeout-ms', 'TOLLGATE_REDIS_TIMEOUT_MS') ?? '250'),
    failurePolicy: oneOf('limiter-failure-policy', v('limiter-failure-policy', 'TOLLGATE_LIMITER_FAILURE_POLICY') ?? 'open', ['open', 'closed'] as const),
    replicas,
    usageFlushMs: toInt('usage-flush-ms', v('usage-flush-ms', 'TOLLGATE_USAGE_FLUSH_MS') ?? '1000'),
    usageFlushRecords: toInt('usage-flush-records', v('usage-flush-records', 'TOLLGATE_USAGE_FLUSH_RECORDS') ?? '500'),
    usageStatusMs: 1000 * Math.max(1, toInt('usage-status-seconds', v('usage-status-seconds', 'TOLLGATE_USAGE_STATUS_SECONDS') ?? '60')),
    streamUsage: oneOf('stream-usage', v('stream-usage', 'TOLLGATE_STREAM_USAGE') ?? 'all', ['all', 'limited'] as const),
  };
}

function readSource(values: Readonly<Record<string, string | boolean | undefined>>): SourceSettings {
  const text = (k: string, e: string): string | undefined => {
    const v = values[k];
    return typeof v === 'string' ? v : env[e];
  };
  const kind = text('source', 'TOLLGATE_SOURCE') ?? 'file';
  if (kind === 'kubernetes') {
    const namespace = text('namespace', 'TOLLGATE_NAMESPACE') ?? serviceAccountNamespace();
    if (!namespace) throw new Error('--namespace (or TOLLGATE_NAMESPACE) is required outside a Pod');
    return {
      kind,
      namespace,
      secretSelector: text('secret-selector', 'TOLLGATE_SECRET_SELECTOR') ?? 'tollgate.dev/secret=true',
      gatewayConfigFile: text('gateway-config', 'TOLLGATE_GATEWAY_CONFIG'),
      leaseName: text('lease-name', 'TOLLGATE_LEASE_NAME') ?? 'tollgate-status-writer',
    };
  }
  if (kind !== 'file') throw new Error(`--source must be file or kubernetes, got "${kind}"`);
  const configDir = text('config-dir', 'TOLLGATE_CONFIG_DIR');
  if (!configDir) throw new Error('--config-dir (or TOLLGATE_CONFIG_DIR) is required');
  return { kind, configDir };
}

/** The Pod's namespace from its service account mount, if any. */
function serviceAccountNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function toInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${text}"`);
  return n;
}
