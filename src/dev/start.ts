/**
 * `npm start`: the fake provider, Tollgate and a real Envoy, wired with examples/config, then prints
 * how to call it. Ctrl-C stops everything.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './envoy-config.js';
import { FakeAnthropic } from './fake-anthropic.js';
import { FakeBedrock } from './fake-bedrock.js';
import { FakeGemini } from './fake-gemini.js';
import { FakeHttpService, FakeMcpServer } from './fake-mcp.js';
import { FakeProvider } from './fake-provider.js';
import { startEnvoy, startGateway } from './local-stack.js';

const LISTEN_PORT = Number(process.env['TOLLGATE_PORT'] ?? 8080);
const FAKE_PORT = 18081;
/** The fake Anthropic Messages API behind examples/config's `local-anthropic` provider. */
const FAKE_ANTHROPIC_PORT = 18082;
/** The example MCP server and the plain HTTP API behind examples/config/mcp.yaml. */
const FAKE_MCP_PORT = 18083;
const FAKE_HTTP_API_PORT = 18084;
/** The fake AWS Bedrock runtime behind `local-bedrock` (credentials as in examples/config/secrets.yaml). */
const FAKE_BEDROCK_PORT = 18085;
/** The fake Gemini API behind `local-gemini`. */
const FAKE_GEMINI_PORT = 18086;

async function main(): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), 'tollgate-'));
  const fake = new FakeProvider({ chunkIntervalMs: 150 });
  await fake.start(FAKE_PORT);
  const fakeAnthropic = new FakeAnthropic({ apiKey: 'sk-ant-fake-provider-credential', writeIntervalMs: 30, writeBytes: 64 });
  await fakeAnthropic.start(FAKE_ANTHROPIC_PORT);
  const fakeMcp = new FakeMcpServer({ transport: 'streamable-http', name: 'demo', token: 'demo-mcp-upstream-token' });
  await fakeMcp.start(FAKE_MCP_PORT);
  const fakeApi = new FakeHttpService();
  await fakeApi.start(FAKE_HTTP_API_PORT);
  const fakeBedrock = new FakeBedrock({ accessKeyId: 'AKIDEXAMPLELOCAL', secretAccessKey: 'local-fake-secret', region: 'us-east-1' });
  await fakeBedrock.start(FAKE_BEDROCK_PORT);
  const fakeGemini = new FakeGemini({ apiKey: 'fake-gemini-provider-credential' });
  await fakeGemini.start(FAKE_GEMINI_PORT);
  const configDir = process.env['TOLLGATE_CONFIG_DIR'] ?? join(REPO_ROOT, 'examples/config');
  const gateway = await startGateway({ workDir, configDir, adminPort: Number(process.env['TOLLGATE_ADMIN_PORT'] ?? 9090) });
  const envoy = await startEnvoy({ workDir, extprocSocket: gateway.socket, listenPort: LISTEN_PORT, listenAddress: '127.0.0.1' });
  const base = `http://127.0.0.1:${envoy.port}`;
  process.stdout.write(`
Tollgate is running (Envoy on ${base}, config from ${configDir}).
Logs: ${gateway.process.logFile} and ${envoy.process.logFile}
Admin (this machine only): http://127.0.0.1:${gateway.adminPort}/metrics, /healthz, /readyz; actions such as
POST /drain (drains, then stops the gateway) need the bearer token in ${gateway.podTokenFile} (docs/security.md).

  curl ${base}/v1/chat/completions \\
    -H 'Authorization: Bearer sk-tollgate-example' -H 'Content-Type: application/json' \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

  # The same endpoint, translated to the Anthropic Messages API (a local fake of it):
  curl ${base}/v1/chat/completions \\
    -H 'Authorization: Bearer sk-tollgate-example' -H 'Content-Type: application/json' \\
    -d '{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

  # ... and to AWS Bedrock Converse (a local fake that checks the SigV4 signature): "model":"nova-pro",
  # and to the Gemini API: "model":"gemini-flash"

  # OpenAI SDK (Node):
  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: '${base}/v1', apiKey: 'sk-tollgate-example' });
  const r = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'Hi' }] });

  # OpenAI SDK (Python):
  from openai import OpenAI
  client = OpenAI(base_url="${base}/v1", api_key="sk-tollgate-example")
  r = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "Hi"}])

  # Anthropic's Messages API and OpenAI's Responses API, served by any provider (docs/front-doors.md):
  curl ${base}/v1/messages -H 'x-api-key: sk-tollgate-example' -H 'anthropic-version: 2023-06-01' \\
    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}'
  ANTHROPIC_BASE_URL=${base} ANTHROPIC_API_KEY=sk-tollgate-example claude   # Claude Code through Tollgate
  curl ${base}/v1/responses -H 'Authorization: Bearer sk-tollgate-example' -H 'Content-Type: application/json' \\
    -d '{"model":"claude-sonnet-4-5","input":"Hello"}'

  # A stored prompt template (examples/config/templates.yaml, docs/templates.md):
  curl ${base}/v1/templates/reply-to-en -H 'Authorization: Bearer sk-tollgate-example' \\
    -H 'Content-Type: application/json' -d '{"variables":{"text":"Merci pour votre aide","tone":"casual"}}'

  # MCP (docs/mcp.md): every tool of every MCP server the key may use, named server__tool
  curl ${base}/mcp -H 'Authorization: Bearer sk-tollgate-example' -H 'Content-Type: application/json' \\
    -H 'Accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
  curl ${base}/mcp -H 'Authorization: Bearer sk-tollgate-example' -H 'Content-Type: application/json' \\
    -H 'Accept: application/json, text/event-stream' \\
    -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"weather__get_weather","arguments":{"city":"Oslo"}}}'
  curl ${base}/mcp/catalog -H 'Authorization: Bearer sk-tollgate-example'
  claude mcp add --transport http tollgate ${base}/mcp --header "Authorization: Bearer sk-tollgate-example"

Edit files in ${configDir} and they apply live. Ctrl-C to stop.
`);
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.allSettled([envoy.process.stop(), gateway.process.stop()]);
    await fake.stop();
    await fakeAnthropic.stop();
    await fakeMcp.stop();
    await fakeApi.stop();
    await fakeBedrock.stop();
    await fakeGemini.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  void gateway.process.waitExit().then((code) => {
    if (stopping) return;
    process.stderr.write(`tollgate exited (code ${String(code)}); stopping. See ${gateway.process.logFile}\n`);
    void stop();
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`npm start failed: ${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
