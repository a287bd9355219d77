/**
 * The one harness for integration tests: a real Envoy, the real Tollgate process and fake providers
 * (real HTTP servers), on free loopback ports, torn down even when a test fails. A missing Envoy
 * fails loudly: nothing here skips.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { EnvoyConfigValues } from '../../src/dev/envoy-config.js';
import { FakeAnthropic, type AnthropicBehaviour } from '../../src/dev/fake-anthropic.js';
import { FakeBedrock, type BedrockBehaviour } from '../../src/dev/fake-bedrock.js';
import { FakeGemini, type GeminiBehaviour } from '../../src/dev/fake-gemini.js';
import { FakeProvider, type FakeBehaviour, type FakeProviderTls } from '../../src/dev/fake-provider.js';
import { freePort, startEnvoy, startGateway, waitFor, type ManagedProcess } from '../../src/dev/local-stack.js';

export const TEST_KEY = 'sk-test-key-0001';

export interface StackOptions {
  /**
   * Config files by name (YAML text). `{{FAKE:<name>}}` is replaced by that fake's base URL (with
   * /v1), `{{FAKE_ORIGIN:<name>}}` by its origin (scheme://host:port).
   */
  readonly files: Readonly<Record<string, string>>;
  /** Fake providers to start, by name. */
  readonly fakes?: Readonly<Record<string, Partial<FakeBehaviour>>>;
  /** Fake Anthropic Messages APIs to start, by name (`{{FAKE:<name>}}` works for them too). */
  readonly anthropicFakes?: Readonly<Record<string, Partial<AnthropicBehaviour>>>;
  /** Fake AWS Bedrock runtimes (Converse, SigV4-checked) to start, by name (`{{FAKE:<name>}}` too). */
  readonly bedrockFakes?: Readonly<Record<string, Partial<BedrockBehaviour>>>;
  /** Fake Gemini APIs to start, by name (`{{FAKE:<name>}}` too). */
  readonly geminiFakes?: Readonly<Record<string, Partial<GeminiBehaviour>>>;
  /** Fakes (by name, also listed in `fakes`) that serve HTTPS with this certificate. */
  readonly fakeTls?: Readonly<Record<string, FakeProviderTls>>;
  /** CA bundle Envoy trusts for HTTPS upstreams (defaults to the system bundle). */
  readonly upstreamCaFile?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly maxBodyBytes?: number;
  /** Envoy template values (timeouts, retry back-off, retry budget). */
  readonly envoy?: Partial<Omit<EnvoyConfigValues, 'listenPort' | 'adminPort' | 'extprocSocket'>>;
  /** Extra Tollgate command-line arguments (for example `--redis-url`). */
  readonly gatewayArgs?: readonly string[];
}

export interface Stack {
  readonly baseUrl: string;
  readonly workDir: string;
  readonly configDir: string;
  readonly adminUrl: string;
  /** Tollgate's pod token file (bearer for admin actions, as Envoy's preStop hook uses it). */
  readonly podTokenFile: string;
  /** Envoy's admin API. */
  readonly envoyAdminUrl: string;
  readonly fakes: Readonly<Record<string, FakeProvider>>;
  readonly anthropic: Readonly<Record<string, FakeAnthropic>>;
  readonly bedrock: Readonly<Record<string, FakeBedrock>>;
  readonly gemini: Readonly<Record<string, FakeGemini>>;
  readonly gateway: ManagedProcess;
  readonly envoy: ManagedProcess;
  /** An official OpenAI client pointed at the gateway. */
  client(apiKey?: string): OpenAI;
  /** Writes (or replaces) a config file; `{{FAKE:x}}` placeholders are filled. */
  writeConfig(name: string, text: string): Promise<void>;
  removeConfig(name: string): Promise<void>;
  /** Tollgate's log lines (JSON) so far. */
  logs(): Promise<Record<string, unknown>[]>;
  /** Waits until the gateway log shows a config version >= `version` applied. */
  waitForConfigVersion(version: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a full stack. Always pair with `after(() => stack.stop())`. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const workDir = await mkdtemp(join(tmpdir(), 'tg-'));
  const configDir = join(workDir, 'config');
  await mkdir(configDir);
  const fakes: Record<string, FakeProvider> = {};
  const started: { stop(): Promise<void> }[] = [];
  try {
    for (const [name, behaviour] of Object.entries(options.fakes ?? {})) {
      const fake = new FakeProvider(behaviour, name, options.fakeTls?.[name]);
      await fake.start();
      fakes[name] = fake;
      started.push(fake);
    }
    const anthropic: Record<string, FakeAnthropic> = {};
    for (const [name, behaviour] of Object.entries(options.anthropicFakes ?? {})) {
      const fake = new FakeAnthropic(behaviour);
      await fake.start();
      anthropic[name] = fake;
      started.push(fake);
    }
    const bedrock: Record<string, FakeBedrock> = {};
    for (const [name, behaviour] of Object.entries(options.bedrockFakes ?? {})) {
      const fake = new FakeBedrock(behaviour);
      await fake.start();
      bedrock[name] = fake;
      started.push(fake);
    }
    const gemini: Record<string, FakeGemini> = {};
    for (const [name, behaviour] of Object.entries(options.geminiFakes ?? {})) {
      const fake = new FakeGemini(behaviour);
      await fake.start();
      gemini[name] = fake;
      started.push(fake);
    }
    // {{FAKE:x}} -> base URL with /v1; {{FAKE_ORIGIN:x}} -> scheme://host:port (Azure-style endpoints).
    const fill = (text: string): string =>
      text.replace(/\{\{FAKE(_ORIGIN)?:([a-z0-9-]+)\}\}/g, (_, origin: string | undefined, n: string) => {
        const f = fakes[n] ?? anthropic[n] ?? bedrock[n] ?? gemini[n];
        if (!f) throw new Error(`no fake provider named ${n}`);
        return origin ? new URL(f.url).origin : f.url;
      });
    for (const [name, text] of Object.entries(options.files)) await writeFile(join(configDir, name), fill(text));
    // Tollgate drains this Envoy on shutdown (src/lifecycle/drain.ts), as in a pod.
    const envoyAdminPort = await freePort();
    const gw = await startGateway({
      workDir,
      configDir,
      extraArgs: ['--envoy-admin-url', `http://127.0.0.1:${envoyAdminPort}`, ...(options.gatewayArgs ?? [])],
      ...(options.env ? { env: options.env } : {}),
    });
    started.push(gw.process);
    const envoy = await startEnvoy({
      adminPort: envoyAdminPort,
      workDir,
      extprocSocket: gw.socket,
      ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}),
      ...(options.upstreamCaFile ? { upstreamCaFile: options.upstreamCaFile } : {}),
      ...options.envoy,
    });
    started.push(envoy.process);
    const baseUrl = `http://127.0.0.1:${envoy.port}`;
    // The gateway appends while we read: the text after the last newline may be half a line.
    const logs = async (): Promise<Record<string, unknown>[]> =>
      (await readFile(gw.process.logFile, 'utf8'))
        .split('\n')
        .slice(0, -1)
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    return {
      baseUrl,
      workDir,
      configDir,
      adminUrl: `http://127.0.0.1:${gw.adminPort}`,
      podTokenFile: gw.podTokenFile,
      envoyAdminUrl: `http://127.0.0.1:${envoyAdminPort}`,
      fakes,
      anthropic,
      bedrock,
      gemini,
      gateway: gw.process,
      envoy: envoy.process,
      client: (apiKey = TEST_KEY) => new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0, timeout: 30_000 }),
      writeConfig: async (name, text) => {
        // Write then rename, as editors and ConfigMap updates do, so the watcher never sees half a file.
        const tmp = join(workDir, `.${name}.tmp`);
        await writeFile(tmp, fill(text));
        const { rename } = await import('node:fs/promises');
        await rename(tmp, join(configDir, name));
      },
      removeConfig: (name) => rm(join(configDir, name), { force: true }),
      logs,
      waitForConfigVersion: (version) =>
        waitFor(`config version ${version}`, async () =>
          (await logs()).some((l) => l['msg'] === 'config applied' && Number(l['version']) >= version),
        ),
      stop: async () => {
        for (const s of started.reverse()) await s.stop().catch(() => undefined);
        if (!process.env['TOLLGATE_KEEP_TEST_DIRS']) await rm(workDir, { recursive: true, force: true, maxRetries: 5 });
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    throw err;
  }
}

/** Config for one OpenAI-style fake provider and one key (TEST_KEY) allowed everything. */
export function basicConfig(opts: { fake?: string; models?: readonly string[] } = {}): Record<string, string> {
  const fake = opts.fake ?? 'primary';
  const models = opts.models ?? ['gpt-4o-mini', 'text-embedding-3-small'];
  return {
    'providers.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: ${fake} }
spec:
  type: openai
  endpoint: "{{FAKE:${fake}}}"
  credentialSecretRef: { name: upstream, key: token }
  models:
${models.map((m) => `    - name: ${m}`).join('\n')}
---
apiVersion: v1
kind: Secret
metadata: { name: upstream }
stringData: { token: sk-upstream-${fake} }
`,
    'keys.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: team-a }
spec:
  secretRef: { name: team-a-key, key: key }
---
apiVersion: v1
kind: Secret
metadata: { name: team-a-key }
stringData: { key: ${TEST_KEY} }
`,
  };
}
