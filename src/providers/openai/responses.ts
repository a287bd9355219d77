/**
 * OpenAI Responses (the client, `/v1/responses`) <-> OpenAI chat completions (the provider): the
 * request and the non-streamed response; the stream part is responses-stream.ts. Providers whose API
 * is not OpenAI's (Anthropic, Bedrock, Gemini, Vertex AI) get this composed with their chat
 * translator (providers/front-doors.ts), so Responses clients such as Codex CLI reach every provider.
 *
 * Request: `instructions` -> a system message; `input` (a string, or items) -> messages: `message`
 * items (roles user, system, developer, assistant; `input_text` / `output_text` / `refusal` text
 * parts, `input_image` -> image_url parts), `function_call` items -> assistant `tool_calls` (consecutive
 * calls in one assistant message), `function_call_output` -> `tool` messages; `reasoning` items of
 * earlier turns are dropped (chat completions takes none back). `tools` (function tools), `tool_choice`,
 * `parallel_tool_calls`, `text.format` (json_object, json_schema) -> `response_format`,
 * `max_output_tokens` -> `max_tokens`, `temperature`, `top_p`, `reasoning.effort` ->
 * `reasoning_effort`, `user` / `safety_identifier` -> `user`. Server-side state and tools have no chat
 * counterpart and are a clear 400 before anything is sent: `previous_response_id`, `background`,
 * `conversation`, `prompt`, built-in tools (web search, file search, computer use, MCP...), item
 * references, file inputs. Streams always ask for usage.
 *
 * Response: one `message` output item with the answer text (`output_text`), one `function_call` item
 * per tool call; `finish_reason` length -> status `incomplete` (`max_output_tokens`); usage ->
 * `input_tokens` / `output_tokens` with their details. Translated responses are never stored by the
 * provider: `store` is false in the answer, and retrieving one is a 404.
 */
import { createHash } from 'node:crypto';
import { gatewayError, isGatewayError, type GatewayError } from '../../errors.js';
import { type ChatTranslator, invalid, isObject, type JsonObject, openAIErrorJson, openAIErrorType, optionalNumber, optionalPositiveInt, type TranslatedResponse } from '../translation.js';
import { ResponsesStreamTranslator } from './responses-stream.js';

const PROVIDER = 'OpenAI chat completions';

type ChatMessage = Record<string, unknown>;

function untranslatable(param: string, why: string): GatewayError {
  return gatewayError('unsupported_parameter', `'${param}' is not supported for models served through ${PROVIDER}: ${why}.`);
}

/** Top-level Responses fields that need the provider's stored state or its server-side machinery. */
const UNTRANSLATABLE: readonly (readonly [string, string])[] = [
  ['previous_response_id', 'the previous response is stored only at OpenAI; send the whole conversation as input'],
  ['conversation', 'conversations are stored only at OpenAI; send the whole conversation as input'],
  ['background', 'background responses run at OpenAI'],
  ['prompt', 'reusable prompts are stored at OpenAI'],
];

/** Text of a content part list (input_text, output_text, refusal parts), images aside. */
function contentParts(content: unknown, where: string, role: string): string | unknown[] | GatewayError {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return invalid(`${where}.content`, 'expected a string or an array of content parts.');
  const parts: unknown[] = [];
  let images = false;
  for (const [i, part] of content.entries()) {
    const at = `${where}.content[${i}]`;
    if (!isObject(part)) return invalid(at, 'expected a content part object.');
    const type = part['type'];
    if (type === 'input_text' || type === 'output_text' || type === 'text') {
      if (typeof part['text'] !== 'string') return invalid(`${at}.text`, 'expected a string.');
      parts.push({ type: 'text', text: part['text'] });
    } else if (type === 'refusal') {
      if (typeof part['refusal'] !== 'string') return invalid(`${at}.refusal`, 'expected a string.');
      parts.push({ type: 'text', text: part['refusal'] });
    } else if (type === 'input_image') {
      if (role !== 'user') return invalid(at, 'images are only allowed in user messages.');
      const url = part['image_url'];
      if (typeof url !== 'string' || url === '') return untranslatable(`${at}`, 'images are translated from image_url (a URL or a data URL); file_id images live at OpenAI');
      const detail = part['detail'];
      parts.push({ type: 'image_url', image_url: { url, ...(detail === 'low' || detail === 'high' || detail === 'auto' ? { detail } : {}) } });
      images = true;
    } else {
      return untranslatable(`${at}.type`, `content part '${String(type)}' (input_text, output_text, refusal and input_image are translated)`);
    }
  }
  if (images) return parts;
  // Text only: one string (what every chat API takes, for every role).
  return parts.map((p) => (p as { text: string }).text).join('\n');
}

/** The text of a function_call_output's `output` (a string, or text parts). */
function outputText(output: unknown, where: string): string | GatewayError {
  if (typeof output === 'string') return output;
  if (!Array.isArray(output)) return invalid(`${where}.output`, 'expected a string or an array of input_text parts.');
  let text = '';
  for (const [i, p] of output.entries()) {
    if (!isObject(p) || (p['type'] !== 'input_text' && p['type'] !== 'output_text') || typeof p['text'] !== 'string') {
      return untranslatable(`${where}.output[${i}]`, 'only text parts of a function output are translated');
    }
    text += (text ? '\n' : '') + p['text'];
  }
  return text;
}

/** Input items -> chat messages, appended to `messages`. */
function inputMessages(input: unknown, messages: ChatMessage[]): GatewayError | undefined {
  if (typeof input === 'string') {
    messages.push({ role: 'user', content: input });
    return undefined;
  }
  if (!Array.isArray(input)) return invalid('input', 'expected a string or an array of input items.');
  let pending: unknown[] | undefined;
  /** Thinking blocks waiting for the assistant message they belong to. */
  const withThinking = (m: ChatMessage): ChatMessage => {
    if (pending) {
      m['thinking_blocks'] = [...((m['thinking_blocks'] as unknown[] | undefined) ?? []), ...pending];
      pending = undefined;
    }
    return m;
  };
  for (const [i, raw] of input.entries()) {
    const where = `input[${i}]`;
    if (!isObject(raw)) return invalid(where, 'expected an input item object.');
    const item: JsonObject = raw;
    const type = item['type'] ?? 'message';
    if (type === 'message') {
      const role = item['role'];
      if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer') return invalid(`${where}.role`, "expected 'user', 'assistant', 'system' or 'developer'.");
      const content = contentParts(item['content'], where, role);
      if (isGatewayError(content)) return content;
      const m: ChatMessage = { role: role === 'developer' ? 'system' : role, content };
      messages.push(role === 'assistant' ? withThinking(m) : m);
    } else if (type === 'function_call') {
      const callId = item['call_id'];
      const name = item['name'];
      const args = item['arguments'];
      if (typeof callId !== 'string' || typeof name !== 'string' || typeof args !== 'string') return invalid(where, 'a function_call needs call_id, name and arguments (a JSON string).');
      const call = { id: callId, type: 'function', function: { name, arguments: args } };
      const last = messages.at(-1);
      // Parallel calls of one turn go in one assistant message.
      if (last && last['role'] === 'assistant' && (Array.isArray(last['tool_calls']) || typeof last['content'] === 'string')) {
        last['tool_calls'] = [...((last['tool_calls'] as unknown[] | undefined) ?? []), call];
        withThinking(last);
      } else {
        messages.push(withThinking({ role: 'assistant', content: null, tool_calls: [call] }));
      }
    } else if (type === 'function_call_output') {
      const callId = item['call_id'];
      if (typeof callId !== 'string') return invalid(`${where}.call_id`, 'expected a string.');
      const text = outputText(item['output'], where);
      if (isGatewayError(text)) return text;
      messages.push({ role: 'tool', tool_call_id: callId, content: text });
    } else if (type === 'reasoning') {
      // Reasoning of earlier turns: summaries are dropped (chat completions takes none back); the
      // provider's own thinking blocks, which this gateway handed out as encrypted_content, go back
      // with the next assistant message (Claude needs them in tool loops with thinking on).
      const blocks = thinkingOf(item['encrypted_content']);
      if (blocks) pending = [...(pending ?? []), ...blocks];
      continue;
    } else {
      return untranslatable(`${where}.type`, `input item '${String(type)}' (message, function_call, function_call_output and reasoning are translated)`);
    }
  }
  return undefined;
}

/** Marks encrypted_content this gateway made (the provider's thinking blocks, base64 JSON). */
const THINKING_PREFIX = 'tollgate.thinking.v1:';

/** A reasoning item's encrypted_content for the provider's thinking blocks (Claude's, with signatures). */
export function encryptedThinking(blocks: readonly unknown[]): string {
  return THINKING_PREFIX + Buffer.from(JSON.stringify(blocks)).toString('base64');
}

/** The thinking blocks of an encrypted_content this gateway made; undefined for anything else (another provider's). */
export function thinkingOf(encrypted: unknown): unknown[] | undefined {
  if (typeof encrypted !== 'string' || !encrypted.startsWith(THINKING_PREFIX)) return undefined;
  try {
    const blocks: unknown = JSON.parse(Buffer.from(encrypted.slice(THINKING_PREFIX.length), 'base64').toString('utf8'));
    return Array.isArray(blocks) ? blocks : undefined;
  } catch {
    return undefined;
  }
}

/** The reasoning output item for a provider's reasoning text and thinking blocks. */
export function reasoningItem(id: string, text: string, blocks: readonly unknown[] | undefined): Record<string, unknown> {
  return {
    id,
    type: 'reasoning',
    summary: text === '' ? [] : [{ type: 'summary_text', text }],
    ...(blocks && blocks.length > 0 ? { encrypted_content: encryptedThinking(blocks) } : {}),
  };
}

/** Function tools (Responses: flat) -> chat tools (nested under `function`). */
function translateTools(body: Readonly<Record<string, unknown>>, out: Record<string, unknown>): GatewayError | undefined {
  const tools = body['tools'];
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) return invalid('tools', 'expected an array.');
    const chat: unknown[] = [];
    for (const [i, t] of tools.entries()) {
      if (!isObject(t)) return invalid(`tools[${i}]`, 'expected a tool object.');
      if (t['type'] !== 'function') return untranslatable(`tools[${i}].type`, `tool type '${String(t['type'])}' runs at OpenAI (function tools are translated)`);
      if (typeof t['name'] !== 'string' || t['name'] === '') return invalid(`tools[${i}].name`, 'expected a function name.');
      const fn: Record<string, unknown> = { name: t['name'] };
      if (typeof t['description'] === 'string') fn['description'] = t['description'];
      if (isObject(t['parameters'])) fn['parameters'] = t['parameters'];
      if (typeof t['strict'] === 'boolean') fn['strict'] = t['strict'];
      chat.push({ type: 'function', function: fn });
    }
    if (chat.length > 0) out['tools'] = chat;
  }
  const choice = body['tool_choice'];
  if (choice === 'auto' || choice === 'none' || choice === 'required') out['tool_choice'] = choice;
  else if (isObject(choice)) {
    if (choice['type'] !== 'function' || typeof choice['name'] !== 'string') return untranslatable('tool_choice', 'only auto, none, required and {type: "function", name} are translated');
    out['tool_choice'] = { type: 'function', function: { name: choice['name'] } };
  } else if (choice !== undefined && choice !== null) return invalid('tool_choice', "expected 'auto', 'none', 'required' or {type: 'function', name}.");
  const parallel = body['parallel_tool_calls'];
  if (typeof parallel === 'boolean' && out['tools'] !== undefined) out['parallel_tool_calls'] = parallel;
  return undefined;
}

/** `text.format` -> `response_format`. */
function translateFormat(body: Readonly<Record<string, unknown>>, out: Record<string, unknown>): GatewayError | undefined {
  const text = body['text'];
  if (text === undefined || text === null) return undefined;
  if (!isObject(text)) return invalid('text', 'expected an object {format}.');
  const format = text['format'];
  if (format === undefined || format === null) return undefined;
  if (!isObject(format)) return invalid('text.format', 'expected an object {type}.');
  if (format['type'] === 'text') return undefined;
  if (format['type'] === 'json_object') {
    out['response_format'] = { type: 'json_object' };
    return undefined;
  }
  if (format['type'] !== 'json_schema') return invalid('text.format.type', "expected 'text', 'json_object' or 'json_schema'.");
  if (typeof format['name'] !== 'string' || !isObject(format['schema'])) return invalid('text.format', 'a json_schema format needs name and schema.');
  const spec: Record<string, unknown> = { name: format['name'], schema: format['schema'] };
  if (typeof format['description'] === 'string') spec['description'] = format['description'];
  if (typeof format['strict'] === 'boolean') spec['strict'] = format['strict'];
  out['response_format'] = { type: 'json_schema', json_schema: spec };
  return undefined;
}

/** The Responses request as a chat completions request (an object: composed translators read it). */
export function responsesToChat(body: Readonly<Record<string, unknown>>, upstreamModel: string, maxTokensCap?: number): Record<string, unknown> | GatewayError {
  for (const [field, why] of UNTRANSLATABLE) {
    const v = body[field];
    if (v !== undefined && v !== null && v !== false) return untranslatable(field, why);
  }
  const messages: ChatMessage[] = [];
  const instructions = body['instructions'];
  if (instructions !== undefined && instructions !== null) {
    if (typeof instructions !== 'string') return invalid('instructions', 'expected a string.');
    if (instructions !== '') messages.push({ role: 'system', content: instructions });
  }
  if (body['input'] === undefined || body['input'] === null) return invalid('input', 'Field required.');
  const refused = inputMessages(body['input'], messages);
  if (refused) return refused;
  if (messages.length === 0) return invalid('input', 'no message to answer.');
  const out: Record<string, unknown> = { model: upstreamModel, messages };
  const refusedTools = translateTools(body, out) ?? translateFormat(body, out);
  if (refusedTools) return refusedTools;
  const max = optionalPositiveInt(body, 'max_output_tokens');
  if (isGatewayError(max)) return max;
  const cap = max === undefined ? maxTokensCap : maxTokensCap !== undefined && maxTokensCap < max ? maxTokensCap : max;
  if (cap !== undefined) out['max_tokens'] = cap;
  const temperature = optionalNumber(body, 'temperature', 0, 2);
  if (isGatewayError(temperature)) return temperature;
  if (temperature !== undefined) out['temperature'] = temperature;
  const topP = optionalNumber(body, 'top_p', 0, 1);
  if (isGatewayError(topP)) return topP;
  if (topP !== undefined) out['top_p'] = topP;
  const reasoning = body['reasoning'];
  if (isObject(reasoning)) {
    const effort = reasoning['effort'];
    if (effort === 'minimal' || effort === 'low') out['reasoning_effort'] = 'low';
    else if (effort === 'medium' || effort === 'high') out['reasoning_effort'] = effort;
  }
  const user = body['safety_identifier'] ?? body['user'];
  if (typeof user === 'string') out['user'] = user;
  if (body['stream'] === true) {
    out['stream'] = true;
    out['stream_options'] = { include_usage: true };
  }
  return out;
}

// ---- response ----------------------------------------------------------------------------------

/** The Responses `usage` object for an OpenAI chat usage object. */
export function responsesUsage(usage: unknown): Record<string, unknown> {
  const u = isObject(usage) ? usage : {};
  const input = typeof u['prompt_tokens'] === 'number' ? u['prompt_tokens'] : 0;
  const output = typeof u['completion_tokens'] === 'number' ? u['completion_tokens'] : 0;
  const pd = u['prompt_tokens_details'];
  const cd = u['completion_tokens_details'];
  const cached = isObject(pd) && typeof pd['cached_tokens'] === 'number' ? pd['cached_tokens'] : 0;
  const reasoning = isObject(cd) && typeof cd['reasoning_tokens'] === 'number' ? cd['reasoning_tokens'] : 0;
  return { input_tokens: input, input_tokens_details: { cached_tokens: cached }, output_tokens: output, output_tokens_details: { reasoning_tokens: reasoning }, total_tokens: input + output };
}

/** A Responses id derived from the provider's answer id (stable, no clock or randomness). */
export function responseIdFor(chatId: string, created: number): string {
  return `resp_${createHash('sha256').update(`${chatId}|${created}`).digest('hex').slice(0, 40)}`;
}

/** The response object around `output` (what create returns, and what stream events carry). */
export function responseObject(id: string, created: number, model: string, status: string, output: readonly unknown[], usage: Record<string, unknown> | null, finish: unknown): Record<string, unknown> {
  return {
    id,
    object: 'response',
    created_at: created,
    status,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: finish === 'content_filter' ? 'content_filter' : 'max_output_tokens' } : null,
    model,
    output,
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    store: false,
    text: { format: { type: 'text' } },
    metadata: {},
    // Last: the usage meter reads it from the tail of a JSON body.
    usage,
  };
}

/** Status of a finished response for a chat finish_reason. */
export function statusFor(finish: unknown): 'completed' | 'incomplete' {
  return finish === 'length' || finish === 'content_filter' ? 'incomplete' : 'completed';
}

function translateResponse(body: Buffer, options: { readonly created: number; readonly model: string }): TranslatedResponse {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return badUpstream('The provider answered with a body that is not JSON.');
  }
  if (!isObject(parsed)) return badUpstream('The provider answered with an unexpected body.');
  const choice = Array.isArray(parsed['choices']) ? parsed['choices'][0] : undefined;
  const message = isObject(choice) ? choice['message'] : undefined;
  const chatId = typeof parsed['id'] === 'string' ? parsed['id'] : '';
  const id = responseIdFor(chatId, options.created);
  const output: unknown[] = [];
  if (isObject(message)) {
    const reasoning = typeof message['reasoning_content'] === 'string' ? message['reasoning_content'] : '';
    const blocks = Array.isArray(message['thinking_blocks']) ? (message['thinking_blocks'] as unknown[]) : undefined;
    if (reasoning !== '' || (blocks && blocks.length > 0)) output.push(reasoningItem(`rs_${id.slice(5)}_${output.length}`, reasoning, blocks));
    const text = message['content'];
    if (typeof text === 'string' && text !== '') {
      output.push({ type: 'message', id: `msg_${id.slice(5)}_${output.length}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] });
    }
    const calls = message['tool_calls'];
    if (Array.isArray(calls)) {
      for (const [i, c] of calls.entries()) {
        if (!isObject(c) || !isObject(c['function'])) continue;
        const fn = c['function'];
        output.push({
          type: 'function_call',
          id: `fc_${id.slice(5, 29)}_${output.length}`,
          call_id: typeof c['id'] === 'string' ? c['id'] : `call_${i}`,
          name: typeof fn['name'] === 'string' ? fn['name'] : '',
          arguments: typeof fn['arguments'] === 'string' ? fn['arguments'] : '',
          status: 'completed',
        });
      }
    }
  }
  const finish = isObject(choice) ? choice['finish_reason'] : undefined;
  const model = typeof parsed['model'] === 'string' && parsed['model'] !== '' ? parsed['model'] : options.model;
  const out = responseObject(id, options.created, model, statusFor(finish), output, responsesUsage(parsed['usage']), finish);
  return { status: 200, body: Buffer.from(JSON.stringify(out)) };
}

function badUpstream(message: string): TranslatedResponse {
  return { status: 502, body: Buffer.from(openAIErrorJson(message, 'api_error', 'bad_upstream_response')) };
}

/** A provider error: OpenAI-shaped already (chat errors are, and composed translators make them so); anything else is wrapped. */
function translateError(status: number, raw: Buffer): Buffer {
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (isObject(parsed) && isObject(parsed['error']) && typeof parsed['error']['message'] === 'string') return raw;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return Buffer.from(openAIErrorJson(`The provider (${PROVIDER} API) answered HTTP ${status}.`, openAIErrorType(status), null));
}

/** Responses -> chat completions (OpenAI-compatible engines directly; other providers composed with their chat translator). */
export const responsesToOpenAICompatible: ChatTranslator = {
  streamContentType: 'text/event-stream',
  request(body, ctx) {
    const chat = responsesToChat(body, ctx.upstreamModel, ctx.defaultMaxTokens);
    return isGatewayError(chat) ? chat : Buffer.from(JSON.stringify(chat));
  },
  status: (s) => s,
  response: translateResponse,
  error: translateError,
  stream: (options) => new ResponsesStreamTranslator(options.created, options.model),
};
