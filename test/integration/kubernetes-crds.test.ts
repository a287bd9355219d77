/**
 * The CRDs against a real kube-apiserver: they install, valid resources are accepted, and invalid
 * ones are refused by the API server itself with the OpenAPI/CEL message a user will read.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../../src/dev/envoy-config.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';

const HASH = `sha256:${'ab'.repeat(32)}`;

function apiKey(name: string, spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name}, namespace: default }\nspec: ${spec}\n`;
}
function mcpServer(name: string, spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: MCPServer\nmetadata: { name: ${name}, namespace: default }\nspec: ${spec}\n`;
}
function promptTemplate(name: string, spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: PromptTemplate\nmetadata: { name: ${name}, namespace: default }\nspec: ${spec}\n`;
}
function provider(name: string, spec: string): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\nmetadata: { name: ${name}, namespace: default }\nspec: ${spec}\n`;
}

describe('CRDs in a real API server', () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
    await cp.kubectl(['apply', '-f', join(REPO_ROOT, 'crds')]);
    await cp.kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/apikeys.tollgate.dev', 'crd/modelproviders.tollgate.dev', 'crd/mcpservers.tollgate.dev', 'crd/prompttemplates.tollgate.dev']);
  });
  after(async () => {
    await cp?.stop();
  });

  const refused = async (doc: string, ...messages: string[]): Promise<void> => {
    const r = await cp.kubectl(['apply', '-f', '-'], { input: doc, allowFail: true });
    assert.notEqual(r.code, 0, `expected the API server to refuse:\n${doc}`);
    for (const m of messages) assert.ok(r.stderr.includes(m), `expected "${m}" in: ${r.stderr}`);
  };

  it('accepts valid resources and shows them with printer columns and short names', async () => {
    // An expiry a year from the real now: the test never turns into a time bomb.
    const NEXT_YEAR = new Date(Date.now() + 365 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await cp.kubectl(['apply', '-f', '-'], {
      input:
        apiKey('ok', `{ keyHash: "${HASH}", models: ["gpt-4*"], expiresAt: "${NEXT_YEAR}" }`) +
        '---\n' +
        provider('ok', '{ type: openai, endpoint: "https://api.example.test/v1", models: [{ name: gpt-4o }] }'),
    });
    const keys = (await cp.kubectl(['get', 'ak', '-n', 'default'])).stdout;
    assert.match(keys, /NAME\s+MODELS\s+RPM\s+TPM\s+MONTHLY\s+TOKENS\s+BUDGET\s+COST\s+EXPIRES\s+READY\s+AGE/);
    assert.match(keys, /ok\s+\["gpt-4\*"\]/);
    const providers = (await cp.kubectl(['get', 'mp', '-n', 'default'])).stdout;
    assert.match(providers, /NAME\s+TYPE\s+ENDPOINT\s+MODELS\s+READY\s+AGE/);
    assert.match(providers, /ok\s+openai\s+https:\/\/api\.example\.test\/v1\s+gpt-4o/);
    // Defaults from the schema are applied by the API server.
    const prio = (await cp.kubectl(['get', 'mp', 'ok', '-n', 'default', '-o', 'jsonpath={.spec.priority}/{.spec.weight}'])).stdout;
    assert.equal(prio, '0/1');
  });

  it('refuses a key with both or neither of keyHash and secretRef (CEL)', async () => {
    await refused(apiKey('both', `{ keyHash: "${HASH}", secretRef: { name: s, key: k } }`), 'exactly one of keyHash and secretRef must be set');
    await refused(apiKey('neither', '{ models: [gpt-4o] }'), 'exactly one of keyHash and secretRef must be set');
  });

  it('accepts IPv4/IPv6 allow-lists and refuses a malformed CIDR or host bits below the prefix (CEL)', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: apiKey('cidrs', `{ keyHash: "${HASH.replace('ab', 'cd')}", allowedCidrs: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::1"], guardrails: [pii] }`),
    });
    for (const bad of ['10.0.0.1/8', 'example.com', '2001:db8::1/32', '10.0.0.0/33']) {
      await refused(apiKey('badcidr', `{ keyHash: "${HASH}", allowedCidrs: ["${bad}"] }`), 'spec.allowedCidrs[0]', 'must be an IPv4 or IPv6 CIDR without host bits');
    }
  });

  it('refuses bad wildcards in allowed models and mapping keys', async () => {
    await refused(apiKey('badmodel', `{ keyHash: "${HASH}", models: ["gpt 4*"] }`), 'spec.models[0]', 'should match');
    await refused(
      apiKey('badmap', `{ keyHash: "${HASH}", modelMappings: { "gpt-[4]*": gpt-4o } }`),
      'mapping keys must be model names or wildcard patterns',
    );
  });

  it('refuses negative numbers and a malformed or non-http endpoint', async () => {
    await refused(apiKey('neglimit', `{ keyHash: "${HASH}", limits: { requestsPerMinute: -5 } }`), 'spec.limits.requestsPerMinute');
    await refused(
      provider('neg', '{ type: openai, endpoint: "https://a.example.test/v1", priority: -1, models: [{ name: m }] }'),
      'spec.priority',
      'greater than or equal to 0',
    );
    await refused(provider('ftp', '{ type: openai, endpoint: "ftp://a.example.test/v1", models: [{ name: m }] }'), 'spec.endpoint');
    await refused(provider('nourl', '{ type: openai, endpoint: "not a url", models: [{ name: m }] }'), 'spec.endpoint');
  });

  it('refuses an unknown provider type and a malformed key hash', async () => {
    await refused(provider('type', '{ type: bogus, endpoint: "https://a.example.test", models: [{ name: m }] }'), 'spec.type', 'Unsupported value');
    await refused(apiKey('hash', '{ keyHash: "md5:1234" }'), 'spec.keyHash');
  });

  it('MCPServer: accepts an upstream, a Service or httpTools, shows tools and readiness columns, and refuses bad ones (CEL)', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input:
        mcpServer('search', '{ url: "http://search.tools:8080/mcp", tools: { exclude: [admin] }, owner: team-search, tags: [search] }') +
        '---\n' +
        mcpServer('weather', '{ httpTools: [{ name: get_weather, url: "http://weather.tools/api/{{city}}", inputSchema: { type: object, properties: { city: { type: string } } } }] }') +
        '---\n' +
        apiKey('mcpkey', `{ keyHash: "${HASH}", mcp: { servers: [search, "team-*"], tools: ["search__*"] }, limits: { toolCallsPerMinute: 10 } }`),
    });
    const list = (await cp.kubectl(['get', 'mcpservers', '-n', 'default'])).stdout;
    assert.match(list, /NAME\s+URL\s+TOOLS\s+READY\s+REACHABLE\s+AGE/);
    assert.match(list, /search\s+http:\/\/search\.tools:8080\/mcp/);
    // Free-form inputSchema is kept as written (preserve-unknown-fields); defaults are applied.
    const weather = (await cp.kubectl(['get', 'mcp', 'weather', '-n', 'default', '-o', 'jsonpath={.spec.httpTools[0].inputSchema.properties.city.type}/{.spec.httpTools[0].method}'])).stdout;
    assert.equal(weather, 'string/GET');
    await refused(mcpServer('both', '{ url: "http://a/mcp", service: { name: a, port: 80 } }'), 'url and service are mutually exclusive');
    await refused(mcpServer('empty', '{ description: nothing }'), 'set url or service (an MCP upstream), or httpTools');
    await refused(mcpServer('sep', '{ httpTools: [{ name: a__b, url: "http://x/" }] }'), 'tool names must not contain');
    await refused(mcpServer('transport', '{ url: "http://a/mcp", transport: websocket }'), 'spec.transport', 'Unsupported value');
    // The absolute cap of a tool call is not below its silence timeout (explicit, or the default 30 s).
    await refused(mcpServer('cap', '{ url: "http://a/mcp", timeoutSeconds: 60, maxTotalTimeoutSeconds: 30 }'), 'maxTotalTimeoutSeconds must be at least timeoutSeconds');
    await refused(mcpServer('capdefault', '{ url: "http://a/mcp", maxTotalTimeoutSeconds: 10 }'), 'maxTotalTimeoutSeconds must be at least timeoutSeconds');
    await cp.kubectl(['apply', '-f', '-'], { input: mcpServer('long', '{ url: "http://a/mcp", timeoutSeconds: 60, maxTotalTimeoutSeconds: 3600 }') });
    await refused(apiKey('mcpbad', `{ keyHash: "${HASH}", mcp: { tools: ["x"] } }`), 'spec.mcp.servers');
  });

  it('PromptTemplate: accepts a template with a free-form input schema, shows model and version, and refuses bad ones (CEL)', async () => {
    await cp.kubectl(['apply', '-f', '-'], {
      input: promptTemplate(
        'reply',
        '{ model: gpt-4o-mini, version: "3", parameters: { temperature: 0.2, max_tokens: 100 }, variables: { type: object, required: [text], properties: { text: { type: string, maxLength: 100 } } }, messages: [{ role: system, content: "Be brief." }, { role: user, content: "{{ text }}" }] }',
      ),
    });
    const list = (await cp.kubectl(['get', 'pt', '-n', 'default'])).stdout;
    assert.match(list, /NAME\s+MODEL\s+VERSION\s+READY\s+AGE/);
    assert.match(list, /reply\s+gpt-4o-mini\s+3/);
    const kept = (await cp.kubectl(['get', 'prompttemplate', 'reply', '-n', 'default', '-o', 'jsonpath={.spec.variables.properties.text.maxLength}/{.spec.parameters.temperature}'])).stdout;
    assert.equal(kept, '100/0.2');
    await refused(promptTemplate('nouser', '{ model: m, messages: [{ role: system, content: x }] }'), 'at least one message must have role user');
    await refused(promptTemplate('bothmax', '{ model: m, messages: [{ role: user, content: x }], parameters: { max_tokens: 1, max_completion_tokens: 1 } }'), 'set max_tokens or max_completion_tokens, not both');
    await refused(promptTemplate('role', '{ model: m, messages: [{ role: tool, content: x }] }'), 'spec.messages[0].role', 'Unsupported value');
    await refused(promptTemplate('hot', '{ model: m, messages: [{ role: user, content: x }], parameters: { temperature: 3 } }'), 'spec.parameters.temperature');
  });
});
