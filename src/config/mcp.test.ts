import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildMcpConfig, mcpKeyPolicy, serverAllowed, toolAllowed, toolPublished, type McpProblem } from './mcp.js';
import { API_VERSION, type ApiKey, type MCPServer, type MCPServerSpec } from './types.js';

function server(name: string, spec: MCPServerSpec, namespace = 'tools'): MCPServer {
  return { apiVersion: API_VERSION, kind: 'MCPServer', metadata: { name, namespace }, spec };
}
function key(mcp: ApiKey['spec']['mcp'], toolCallsPerMinute?: number): ApiKey {
  return {
    apiVersion: API_VERSION,
    kind: 'ApiKey',
    metadata: { name: 'k', namespace: 'tools' },
    spec: { keyHash: `sha256:${'0'.repeat(64)}`, ...(mcp ? { mcp } : {}), ...(toolCallsPerMinute ? { limits: { toolCallsPerMinute } } : {}) },
  };
}
const secrets = (): string | undefined => 'tok-123';

describe('MCP config', () => {
  it('builds upstream URL, credential header and filters; exclude wins over include', () => {
    const problems: McpProblem[] = [];
    const cfg = buildMcpConfig(
      [
        server('search', {
          url: 'http://search:1/mcp',
          credential: { secretRef: { name: 's', key: 'k' } },
          tools: { includeRegex: ['^web_'], include: ['fetch'], exclude: ['web_admin'] },
        }),
        server('svc', { service: { name: 'docs', port: 8080 }, transport: 'sse', credential: { secretRef: { name: 's', key: 'k' }, header: 'X-Api-Key' } }),
      ],
      secrets,
      problems,
    );
    assert.deepEqual(problems, []);
    const s = cfg.servers.get('tools/search');
    assert.ok(s);
    assert.deepEqual(s.upstream, { url: 'http://search:1/mcp', transport: 'streamable-http' });
    assert.deepEqual(s.headers, { authorization: 'Bearer tok-123' });
    assert.equal(toolPublished(s.filter, 'web_search'), true);
    assert.equal(toolPublished(s.filter, 'fetch'), true);
    assert.equal(toolPublished(s.filter, 'web_admin'), false);
    assert.equal(toolPublished(s.filter, 'delete_all'), false);
    const svc = cfg.servers.get('tools/svc');
    assert.deepEqual(svc?.upstream, { url: 'http://docs.tools.svc:8080/mcp', transport: 'sse' });
    assert.deepEqual(svc?.headers, { 'x-api-key': 'tok-123' });
    assert.deepEqual(cfg.byNamespace.get('tools')?.map((e) => e.name), ['search', 'svc']);
  });

  it('timeouts: silence timeout and absolute cap (default 600 s, or timeoutSeconds when larger); a cap below the timeout is invalid', () => {
    const problems: McpProblem[] = [];
    const cfg = buildMcpConfig(
      [
        server('plain', { url: 'http://a:1/mcp' }),
        server('long', { url: 'http://a:1/mcp', timeoutSeconds: 900 }),
        server('capped', { url: 'http://a:1/mcp', timeoutSeconds: 5, maxTotalTimeoutSeconds: 60 }),
        server('wrong', { url: 'http://a:1/mcp', timeoutSeconds: 50, maxTotalTimeoutSeconds: 10 }),
      ],
      secrets,
      problems,
    );
    assert.deepEqual([cfg.servers.get('tools/plain')?.timeoutMs, cfg.servers.get('tools/plain')?.maxTotalTimeoutMs], [30_000, 600_000]);
    assert.equal(cfg.servers.get('tools/long')?.maxTotalTimeoutMs, 900_000);
    assert.deepEqual([cfg.servers.get('tools/capped')?.timeoutMs, cfg.servers.get('tools/capped')?.maxTotalTimeoutMs], [5_000, 60_000]);
    assert.equal(cfg.servers.has('tools/wrong'), false);
    assert.deepEqual(problems.map((p) => [p.name, p.field, p.message]), [['tools/wrong', 'spec.maxTotalTimeoutSeconds', 'maxTotalTimeoutSeconds must be at least timeoutSeconds']]);
  });

  it('reports a missing Secret and a bad regular expression, and leaves those servers out', () => {
    const problems: McpProblem[] = [];
    const cfg = buildMcpConfig(
      [
        server('a', { url: 'http://a/mcp', credential: { secretRef: { name: 's', key: 'k' } } }),
        server('b', { url: 'http://b/mcp', tools: { excludeRegex: ['(unclosed'] } }),
      ],
      () => undefined,
      problems,
    );
    assert.equal(cfg.servers.size, 0);
    assert.deepEqual(problems.map((p) => [p.name, p.reason, p.field]), [
      ['tools/a', 'SecretNotFound', 'spec.credential.secretRef'],
      ['tools/b', 'Invalid', 'spec.tools.excludeRegex'],
    ]);
  });

  it('a key without mcp reaches no server; servers and server__tool patterns are allow-lists', () => {
    assert.equal(mcpKeyPolicy(key(undefined)), undefined);
    assert.equal(serverAllowed(undefined, 'search'), false);
    const p = mcpKeyPolicy(key({ servers: ['search', 'team-*'], tools: ['search__web_*', 'team-a__read'] }, 5));
    assert.equal(serverAllowed(p, 'search'), true);
    assert.equal(serverAllowed(p, 'team-b'), true);
    assert.equal(serverAllowed(p, 'billing'), false);
    assert.equal(toolAllowed(p, 'search', 'web_search'), true);
    assert.equal(toolAllowed(p, 'search', 'fetch'), false);
    assert.equal(toolAllowed(p, 'team-a', 'read'), true);
    assert.equal(toolAllowed(p, 'team-b', 'read'), false);
    const all = mcpKeyPolicy(key({ servers: ['*'] }));
    assert.equal(toolAllowed(all, 'anything', 'any_tool'), true);
  });
});
