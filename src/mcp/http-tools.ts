/**
 * httpTools: a plain HTTP API called as an MCP tool. Pure template rendering (URL, headers, body)
 * plus one fetch with a deadline; the HTTP response becomes the tool result (text or JSON), with
 * non-2xx answers and unreadable bodies mapped to `isError` results the model can read.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { HttpToolEntry } from '../config/mcp.js';

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
/** Largest HTTP response body turned into a tool result. */
export const MAX_HTTP_TOOL_RESPONSE_BYTES = 1024 * 1024;

/** An argument as text: strings as they are, everything else as JSON. */
function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const WHOLE_PLACEHOLDER = /^\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}$/;

/** Removes query parameters whose whole value is a placeholder of an absent argument (`?units={{units}}`). */
function dropAbsentQuery(template: string, args: Readonly<Record<string, unknown>>): string {
  const q = template.indexOf('?');
  if (q < 0) return template;
  const kept = template
    .slice(q + 1)
    .split('&')
    .filter((part) => {
      const value = part.slice(part.indexOf('=') + 1);
      const m = part.includes('=') ? WHOLE_PLACEHOLDER.exec(value) : null;
      return !m || (args[m[1] ?? ''] !== undefined && args[m[1] ?? ''] !== null);
    });
  return kept.length > 0 ? `${template.slice(0, q)}?${kept.join('&')}` : template.slice(0, q);
}

/** The request an httpTool makes for `args`. Pure. */
export interface RenderedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

/** Renders the templates: URL args URI-encoded, header args as text, body args as JSON. */
export function renderHttpTool(tool: HttpToolEntry, args: Readonly<Record<string, unknown>>): RenderedRequest | string {
  const url = dropAbsentQuery(tool.url, args).replace(PLACEHOLDER, (_, name: string) => encodeURIComponent(asText(args[name])));
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return `URL ${u.protocol} is not http(s)`;
  } catch {
    return 'the URL template did not render to a valid URL';
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(tool.headers)) headers[k] = v.replace(PLACEHOLDER, (_, name: string) => asText(args[name]).replace(/[\r\n]/g, ' '));
  let body: string | undefined;
  if (tool.body !== undefined) {
    body = tool.body.replace(PLACEHOLDER, (_, name: string) => JSON.stringify(args[name] ?? null));
  } else if (tool.method === 'POST' || tool.method === 'PUT' || tool.method === 'PATCH') {
    body = JSON.stringify(args);
  }
  if (body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  return { method: tool.method, url, headers, body };
}

function errorResult(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

/** Reads at most `limit` bytes of a response body; undefined when it is larger. */
async function readLimited(res: Response, limit: number): Promise<string | undefined> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Calls the HTTP API. Resolves to the tool result; rejects only with `HttpToolTimeout` (the deadline
 * passed) or a network error (the API is unreachable), which the caller maps to JSON-RPC errors.
 */
export async function callHttpTool(
  tool: HttpToolEntry,
  args: Readonly<Record<string, unknown>>,
  credentialHeaders: Readonly<Record<string, string>>,
  timeoutMs: number,
  /** The client cancelled the call (or hung up). */
  signal?: AbortSignal,
): Promise<CallToolResult> {
  const req = renderHttpTool(tool, args);
  if (typeof req === 'string') return errorResult(`Cannot call ${tool.name}: ${req}.`);
  const res = await fetch(req.url, {
    method: req.method,
    headers: { accept: tool.format === 'json' ? 'application/json' : '*/*', ...credentialHeaders, ...req.headers },
    ...(req.body === undefined ? {} : { body: req.body }),
    signal: signal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]) : AbortSignal.timeout(timeoutMs),
    redirect: 'manual',
  });
  const text = await readLimited(res, MAX_HTTP_TOOL_RESPONSE_BYTES);
  if (text === undefined) return errorResult(`${tool.name}: the HTTP response is larger than ${MAX_HTTP_TOOL_RESPONSE_BYTES} bytes.`);
  if (res.status < 200 || res.status > 299) return errorResult(`HTTP ${res.status}${text ? `: ${text.slice(0, 4096)}` : ''}`);
  if (tool.format === 'text') return { content: [{ type: 'text', text }] };
  let parsed: unknown;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    return errorResult(`${tool.name}: the HTTP response is not JSON.`);
  }
  const result: CallToolResult = { content: [{ type: 'text', text: JSON.stringify(parsed) }] };
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) result.structuredContent = parsed as Record<string, unknown>;
  return result;
}
