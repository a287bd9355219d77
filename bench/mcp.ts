/**
 * MCP gateway bench: the added latency of a tool call through Envoy + Tollgate versus calling the
 * same MCP server directly (p50/p99 over sequential calls, both with the official SDK client), and
 * the most tool calls per second the gateway sustains with concurrent clients. Bounded in count and
 * time; loopback only.
 *
 *   node dist/bench/mcp.js [--calls 500] [--concurrency 16] [--seconds 5] [--upstream-logging]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { FakeMcpServer } from '../src/dev/fake-mcp.js';
import { startStack } from '../test/harness/stack.js';

const KEY = 'sk-bench-mcp-0001';

/** CPU time (user + system, ms) a process used so far, from /proc (Linux). */
async function cpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime in clock ticks (100/s)
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function connect(url: string, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

async function sequential(client: Client, name: string, calls: number): Promise<number[]> {
  for (let i = 0; i < 50; i++) await client.callTool({ name, arguments: { text: 'warm' } });
  const out: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await client.callTool({ name, arguments: { text: `call ${i}` } });
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { calls: { type: 'string' }, concurrency: { type: 'string' }, seconds: { type: 'string' }, 'upstream-logging': { type: 'boolean' } } });
  const calls = Number(values.calls ?? 500);
  const concurrency = Number(values.concurrency ?? 16);
  const seconds = Number(values.seconds ?? 5);
  // --upstream-logging: the server declares the logging capability, so every tool call is answered
  // as an SSE stream (its log messages could come before the result); without it, as plain JSON.
  const logging = values['upstream-logging'] ?? false;
  const upstream = new FakeMcpServer({ transport: 'streamable-http', name: 'bench', logging });
  await upstream.start();
  const stack = await startStack({
    files: {
      'mcp.yaml': `apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: { name: bench, namespace: default }
spec: { url: "${upstream.url}" }
---
apiVersion: tollgate.dev/v1alpha1
kind: ApiKey
metadata: { name: bench, namespace: default }
spec:
  secretRef: { name: bench-key, key: key }
  mcp: { servers: ["*"] }
---
apiVersion: v1
kind: Secret
metadata: { name: bench-key, namespace: default }
stringData: { key: ${KEY} }
`,
    },
  });
  const clients: Client[] = [];
  try {
    const direct = await connect(upstream.url, {});
    const viaServer = await connect(`${stack.baseUrl}/mcp/default/bench`, { authorization: `Bearer ${KEY}` });
    const viaAggregated = await connect(`${stack.baseUrl}/mcp`, { authorization: `Bearer ${KEY}` });
    clients.push(direct, viaServer, viaAggregated);
    const d = await sequential(direct, 'echo', calls);
    const s = await sequential(viaServer, 'echo', calls);
    const a = await sequential(viaAggregated, 'bench__echo', calls);
    const row = (label: string, xs: number[]): string =>
      `${label.padEnd(34)} p50 ${percentile(xs, 50).toFixed(2)} ms   p99 ${percentile(xs, 99).toFixed(2)} ms`;
    process.stdout.write(`sequential tools/call, ${calls} calls each (official SDK client, loopback; upstream logging ${logging ? 'on: SSE answers' : 'off: JSON answers'})\n`);
    process.stdout.write(`${row('direct to the MCP server', d)}\n${row('gateway /mcp/default/bench', s)}\n${row('gateway /mcp (aggregated)', a)}\n`);
    process.stdout.write(
      `added by the gateway: p50 +${(percentile(s, 50) - percentile(d, 50)).toFixed(2)} ms, p99 +${(percentile(s, 99) - percentile(d, 99)).toFixed(2)} ms (server endpoint); ` +
        `p50 +${(percentile(a, 50) - percentile(d, 50)).toFixed(2)} ms (aggregated)\n`,
    );

    const workers: Client[] = [];
    for (let i = 0; i < concurrency; i++) workers.push(await connect(`${stack.baseUrl}/mcp`, { authorization: `Bearer ${KEY}` }));
    clients.push(...workers);
    let done = 0;
    let failed = 0;
    const cpuBefore = await cpuMs(stack.gateway.child.pid);
    const deadline = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(
      workers.map(async (c) => {
        while (performance.now() < deadline) {
          try {
            await c.callTool({ name: 'bench__echo', arguments: { text: 'x' } });
            done++;
          } catch {
            failed++;
          }
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const cpuPerCall = (await cpuMs(stack.gateway.child.pid)) - cpuBefore;
    process.stdout.write(`throughput: ${concurrency} concurrent clients for ${seconds} s through /mcp: ${(done / elapsed).toFixed(0)} tool calls/s (${failed} failed); Tollgate CPU ${(cpuPerCall / Math.max(1, done)).toFixed(2)} ms per tool call\n`);
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await stack.stop();
    await upstream.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`mcp bench failed: ${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
