/**
 * Request inspection: every text a model will read is checked — each message's content (string or
 * text parts; system, user, assistant and tool results alike), assistant tool-call arguments
 * (masked inside their JSON strings, see arguments.ts), Anthropic tool_use input, `input`
 * (embeddings, Responses items: tool calls and tool outputs included) and `prompt` (legacy
 * completions). `block` refuses the request (400 content_policy_violation); `mask` rewrites the
 * text in the body that goes upstream.
 */
import type { GatewayError } from '../errors.js';
import type { CompiledGuardrail } from './compile.js';
import { policyError } from './response.js';
import { checkArguments } from './arguments.js';
import { checkText, type Finding } from './scan.js';

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Result of checking a request body (parsed JSON, mutated in place when masked). */
export type RequestVerdict = { readonly kind: 'pass'; readonly changed: boolean } | { readonly kind: 'blocked'; readonly error: GatewayError };

class Checker {
  changed = false;
  blocked: Finding | undefined;

  constructor(
    private readonly guardrails: readonly CompiledGuardrail[],
    private readonly report: (f: Finding) => void,
    /** Collects the checked (masked) texts, for an external moderation hook. */
    private readonly texts: string[] | undefined,
  ) {}

  /** Checks one text; returns its replacement (the same string when unchanged). */
  text(value: string): string {
    if (this.blocked || value.length === 0) return value;
    const v = checkText(value, this.guardrails);
    if (v.blocked) {
      this.blocked = v.blocked;
      this.report(v.blocked);
      return value;
    }
    for (const f of v.findings) this.report(f);
    if (v.text !== value) this.changed = true;
    this.texts?.push(v.text);
    return v.text;
  }

  /** Tool-call arguments (JSON text): masked inside JSON strings, so they stay valid JSON. */
  args(value: string): string {
    if (this.blocked || value.length === 0) return value;
    const r = checkArguments(value, this.guardrails, this.report);
    if (r.blocked) {
      this.blocked = r.blocked;
      return value;
    }
    if (r.text !== value) this.changed = true;
    this.texts?.push(r.text);
    return r.text;
  }

  /** `holder[key]` as tool-call arguments: a JSON string, or (Anthropic tool_use input) a JSON value. */
  argsField(holder: Json, key: string): void {
    const v = holder[key];
    if (typeof v === 'string') holder[key] = this.args(v);
    else if (typeof v === 'object' && v !== null) {
      const text = JSON.stringify(v);
      const masked = this.args(text);
      if (masked !== text) holder[key] = JSON.parse(masked) as unknown;
    }
  }

  /** A `content` value: a string, or an array of parts with `text`. */
  content(holder: Json, key: string): void {
    const c = holder[key];
    if (typeof c === 'string') holder[key] = this.text(c);
    else if (Array.isArray(c)) {
      for (let i = 0; i < c.length; i++) {
        const part: unknown = c[i];
        if (typeof part === 'string') c[i] = this.text(part);
        else if (isRecord(part)) {
          if (typeof part['text'] === 'string') part['text'] = this.text(part['text']);
          if (part['content'] !== undefined) this.content(part, 'content'); // tool_result blocks
          if (typeof part['output'] === 'string') part['output'] = this.text(part['output']);
          if (part['type'] === 'tool_use' && part['input'] !== undefined) this.argsField(part, 'input'); // Anthropic tool calls
        }
      }
    }
  }

  /**
   * A chat message, or a Responses API input item: content; assistant tool calls' arguments (and the
   * legacy function_call); Responses function_call / mcp_call arguments, custom_tool_call input and
   * the `output` of function_call_output / custom_tool_call_output / mcp_call items (tool results).
   */
  message(m: unknown): void {
    if (!isRecord(m)) return;
    this.content(m, 'content');
    const calls = m['tool_calls'];
    if (Array.isArray(calls)) {
      for (const call of calls) {
        const fn = isRecord(call) ? call['function'] : undefined;
        if (isRecord(fn)) this.argsField(fn, 'arguments');
      }
    }
    if (isRecord(m['function_call'])) this.argsField(m['function_call'], 'arguments');
    if (typeof m['refusal'] === 'string') m['refusal'] = this.text(m['refusal']);
    const type = m['type'];
    if (type === undefined) return;
    if (type === 'function_call' || type === 'mcp_call') this.argsField(m, 'arguments');
    else if (type === 'custom_tool_call' && typeof m['input'] === 'string') m['input'] = this.text(m['input']);
    if (m['output'] !== undefined) this.content(m, 'output');
  }
}

/** Checks (and masks, in place) every text of a request body. */
export function checkRequest(json: Json, guardrails: readonly CompiledGuardrail[], report: (f: Finding) => void, texts?: string[]): RequestVerdict {
  const c = new Checker(guardrails, report, texts);
  const messages = json['messages'];
  if (Array.isArray(messages)) for (const m of messages) c.message(m);
  // Anthropic Messages `system` (string or text blocks) and Responses API `instructions`.
  c.content(json, 'system');
  c.content(json, 'instructions');
  for (const key of ['input', 'prompt']) {
    const v = json[key];
    if (typeof v === 'string') json[key] = c.text(v);
    else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (typeof item === 'string') v[i] = c.text(item);
        else c.message(item);
      }
    }
  }
  if (c.blocked) return { kind: 'blocked', error: policyError(c.blocked, 'request') };
  return { kind: 'pass', changed: c.changed };
}
