/** Renders envoy/envoy.yaml for local runs (npm start, tests, bench). */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root, from this file's place in dist/src/dev or src/dev. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface EnvoyConfigValues {
  readonly listenAddress?: string;
  readonly listenPort: number;
  readonly adminPort: number;
  /** Unix socket path of the Tollgate ext_proc server. */
  readonly extprocSocket: string;
  /** Unix socket path of the Tollgate MCP listener; defaults to mcp.sock beside the ext_proc socket. */
  readonly mcpSocket?: string;
  readonly maxBodyBytes?: number;
  readonly messageTimeout?: string;
  readonly upstreamCaFile?: string;
  /** Resilience knobs (Envoy durations such as `10s`, `250ms`); see docs/resilience.md. */
  readonly connectTimeout?: string;
  /** Default time to the first response byte of one attempt (Tollgate may set it per provider). */
  readonly firstByteTimeout?: string;
  /** Idle time allowed between stream chunks. */
  readonly streamIdleTimeout?: string;
  /** Overall limit per request; `0s` = none (never cuts long healthy streams). */
  readonly requestTimeout?: string;
  readonly retryBaseInterval?: string;
  readonly retryMaxInterval?: string;
  /** Retries allowed as a share of active requests (Envoy retry budget). */
  readonly retryBudgetPercent?: number;
  readonly retryMinConcurrency?: number;
  /** Trusted proxies in front of Envoy whose X-Forwarded-For entries decide the client address (0 = none). */
  readonly xffNumTrustedHops?: number;
}

/** Fills the template's {{NAME}} placeholders; fails on any placeholder left unfilled. */
export async function renderEnvoyConfig(values: EnvoyConfigValues): Promise<string> {
  const template = await readFile(new URL('envoy/envoy.yaml', `file://${REPO_ROOT}`), 'utf8');
  const vars: Record<string, string> = {
    LISTEN_ADDRESS: values.listenAddress ?? '127.0.0.1',
    LISTEN_PORT: String(values.listenPort),
    ENVOY_ADMIN_PORT: String(values.adminPort),
    EXTPROC_SOCKET: values.extprocSocket,
    MCP_SOCKET: values.mcpSocket ?? join(dirname(values.extprocSocket), 'mcp.sock'),
    MAX_BODY_BYTES: String(values.maxBodyBytes ?? 8 * 1024 * 1024),
    MESSAGE_TIMEOUT: values.messageTimeout ?? '2s',
    UPSTREAM_CA_FILE: values.upstreamCaFile ?? '/etc/ssl/certs/ca-certificates.crt',
    CONNECT_TIMEOUT: values.connectTimeout ?? '10s',
    FIRST_BYTE_TIMEOUT: values.firstByteTimeout ?? '60s',
    STREAM_IDLE_TIMEOUT: values.streamIdleTimeout ?? '300s',
    REQUEST_TIMEOUT: values.requestTimeout ?? '0s',
    RETRY_BASE_INTERVAL: values.retryBaseInterval ?? '0.025s',
    RETRY_MAX_INTERVAL: values.retryMaxInterval ?? '0.25s',
    RETRY_BUDGET_PERCENT: String(values.retryBudgetPercent ?? 25),
    RETRY_MIN_CONCURRENCY: String(values.retryMinConcurrency ?? 10),
    XFF_NUM_TRUSTED_HOPS: String(values.xffNumTrustedHops ?? 0),
  };
  const rendered = template.replace(/\{\{([A-Z_]+)\}\}/g, (whole, name: string) => vars[name] ?? whole);
  const left = /\{\{[A-Z_]+\}\}/.exec(rendered);
  if (left) throw new Error(`envoy.yaml placeholder ${left[0]} has no value`);
  return rendered;
}
