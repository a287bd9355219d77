/**
 * Tollgate config for the bench: one provider (the fake), one key, a global model mapping and an
 * upstream model rename, so every request goes through auth + mapping + provider choice + header and
 * body rewrite. The limits variant adds request and token limits on the key (high enough never to
 * refuse bench traffic) and a probe key with a tiny limit that proves limiting is really on.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Not shaped like a provider key on purpose. */
export const BENCH_KEY = 'tg-bench-client-0001';
export const PROBE_KEY = 'tg-bench-probe-0001';
/** The fake Anthropic API's credential (bench/fake-server.ts checks it). */
export const BENCH_ANTHROPIC_KEY = 'bench-anthropic-token';
/** The fake Bedrock runtime's AWS credentials and region (bench/fake-server.ts checks every signature). */
export const BENCH_AWS = { accessKeyId: 'AKIDBENCHFAKE', secretAccessKey: 'bench-fake-secret-access-key', region: 'us-east-1' } as const;

/** Ports of the fakes behind the translated scenarios (bench/fake-server.ts). */
export interface TranslatedPorts {
  readonly anthropic?: number;
  readonly bedrock?: number;
}

function base(fakePort: number, ports: TranslatedPorts): Record<string, string> {
  const anthropicPort = ports.anthropic;
  // The translated scenarios' providers: the fake Anthropic Messages API and the fake Bedrock runtime.
  const anthropic = anthropicPort === undefined ? '' : `---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bench-anthropic }
spec:
  type: anthropic
  endpoint: http://127.0.0.1:${anthropicPort}/v1
  credentialSecretRef: { name: bench-upstream, key: anthropic }
  models:
    - name: claude-bench
      upstreamModel: claude-sonnet-4-5
`;
  const bedrock = ports.bedrock === undefined ? '' : `---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bench-bedrock }
spec:
  type: aws-bedrock
  endpoint: http://127.0.0.1:${ports.bedrock}
  region: ${BENCH_AWS.region}
  credentialSecretRef: { name: bench-upstream, key: aws }
  models:
    - name: claude-bedrock-bench
      upstreamModel: anthropic.claude-3-5-sonnet-20240620-v1:0
`;
  const aws = JSON.stringify(JSON.stringify({ accessKeyId: BENCH_AWS.accessKeyId, secretAccessKey: BENCH_AWS.secretAccessKey }));
  return {
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: bench-fake }
spec:
  type: openai
  endpoint: http://127.0.0.1:${fakePort}/v1
  credentialSecretRef: { name: bench-upstream, key: token }
  models:
    - name: gpt-4o-mini
      upstreamModel: gpt-4o-mini-2024-07-18
    - name: text-embedding-3-small
---
apiVersion: v1
kind: Secret
metadata: { name: bench-upstream }
stringData: { token: bench-upstream-token, anthropic: ${BENCH_ANTHROPIC_KEY}, aws: ${aws} }
${anthropic}${bedrock}`,
    'gateway.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: { name: gateway }
spec:
  modelMappings:
    fast: gpt-4o-mini
    gpt-3.5*: gpt-4o-mini
`,
  };
}

function key(name: string, clear: string, extraSpec = ''): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: ${name} }
spec:
  secretRef: { name: ${name}-key, key: key }
  models: ["gpt-4o*", "text-embedding-*", "claude-*"]
${extraSpec}---
apiVersion: v1
kind: Secret
metadata: { name: ${name}-key }
stringData: { key: ${clear} }
`;
}

/** Auth + mapping + rewrite, no limits. */
export function basicFiles(fakePort: number, ports: TranslatedPorts = {}): Record<string, string> {
  return { ...base(fakePort, ports), 'keys.yaml': key('bench', BENCH_KEY) };
}

/**
 * Limits and usage accounting on. The shape of `limits` follows the ApiKey schema of the limits
 * feature (issue 5); `probeLimitedRequests` says how many requests the probe key may make per minute.
 */
export function limitsFiles(fakePort: number, probeLimitedRequests: number, ports: TranslatedPorts = {}): Record<string, string> {
  const generous = `  limits:
    requestsPerMinute: 100000000
    requestsPerDay: 1000000000
    tokensPerMinute: 100000000000
    tokensPerDay: 1000000000000
    tokensPerMonth: 100000000000000
    # Response chunks are inspected so a stream can be cut when the budget runs out (the costly mode).
    midStreamPolicy: error
`;
  const tiny = `  limits:
    requestsPerMinute: ${probeLimitedRequests}
`;
  return { ...base(fakePort, ports), 'keys.yaml': `${key('bench', BENCH_KEY, generous)}---\n${key('bench-probe', PROBE_KEY, tiny)}` };
}

/** Writes config files into `dir`. */
export async function writeConfigDir(dir: string, files: Readonly<Record<string, string>>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
}

/** Twenty keywords that never occur in the bench prompts (a typical block list). */
const BENCH_KEYWORDS = Array.from({ length: 20 }, (_, i) => `forbidden phrase ${i + 1}`);

/**
 * The basic config plus one global guardrail of the typical size: 20 keywords (block) and every PII
 * detector (mask), on requests and responses (docs/safety.md).
 */
export function guardrailFiles(fakePort: number, ports: TranslatedPorts = {}): Record<string, string> {
  const files = basicFiles(fakePort, ports);
  return {
    ...files,
    'gateway.yaml': `${files['gateway.yaml'] ?? ''}  guardrails:
    - name: typical
      global: true
      keywords: { action: block, words: ${JSON.stringify(BENCH_KEYWORDS)} }
      pii: { email: mask, phone: mask, paymentCard: mask, iban: mask, ipAddress: mask, cnResidentId: mask, usSsn: mask }
`,
  };
}
