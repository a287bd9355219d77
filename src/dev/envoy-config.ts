/** Renders envoy/envoy.yaml for local runs (npm start, tests, bench). */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** Repository root, from this file's place in dist/src/dev or src/dev. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface EnvoyConfigValues {
  readonly listenAddress?: string;
  readonly listenPort: number;
  readonly adminPort: number;
  /** Unix socket path of the Tollgate ext_proc server. */
  readonly extprocSocket: string;
  readonly maxBodyBytes?: number;
  readonly messageTimeout?: string;
  readonly upstreamCaFile?: string;
}

/** Fills the template's {{NAME}} placeholders; fails on any placeholder left unfilled. */
export async function renderEnvoyConfig(values: EnvoyConfigValues): Promise<string> {
  const template = await readFile(new URL('envoy/envoy.yaml', `file://${REPO_ROOT}`), 'utf8');
  const vars: Record<string, string> = {
    LISTEN_ADDRESS: values.listenAddress ?? '127.0.0.1',
    LISTEN_PORT: String(values.listenPort),
    ENVOY_ADMIN_PORT: String(values.adminPort),
    EXTPROC_SOCKET: values.extprocSocket,
    MAX_BODY_BYTES: String(values.maxBodyBytes ?? 8 * 1024 * 1024),
    MESSAGE_TIMEOUT: values.messageTimeout ?? '2s',
    UPSTREAM_CA_FILE: values.upstreamCaFile ?? '/etc/ssl/certs/ca-certificates.crt',
  };
  const rendered = template.replace(/\{\{([A-Z_]+)\}\}/g, (whole, name: string) => vars[name] ?? whole);
  const left = /\{\{[A-Z_]+\}\}/.exec(rendered);
  if (left) throw new Error(`envoy.yaml placeholder ${left[0]} has no value`);
  return rendered;
}
