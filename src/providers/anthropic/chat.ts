/**
 * OpenAI chat completions <-> Anthropic Messages: the request and the non-streamed response (the
 * stream part is stream.ts). References are listed in api.ts.
 *
 * Request: system/developer messages -> `system`; user/assistant turns -> content blocks (text,
 * images from data URLs or https URLs, tool_use from tool_calls); `tool` messages -> tool_result
 * blocks in a user turn (ids round-trip unchanged); tools/tool_choice/parallel_tool_calls; stop,
 * temperature, top_p, max_tokens (the model's default when absent: Anthropic requires one), `user`
 * -> metadata.user_id, reasoning_effort -> extended thinking; an assistant message's
 * `thinking_blocks` (as the response gives them) -> thinking / redacted_thinking blocks first in its
 * turn, with their signature (Claude needs them back in a tool loop with thinking on).
 * response_format json_object / json_schema -> one tool whose input_schema is the schema, forced with
 * tool_choice {type: tool} (the technique of Anthropic's tool-use docs, "JSON mode"; it works on every
 * Claude model, unlike native structured outputs); its input comes back as the message content.
 * `json_schema.strict: true` (and a tool's `function.strict: true`) sets `strict: true` on the tool:
 * strict tool use (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/strict-tool-use),
 * grammar-constrained input on the models with structured outputs; other models and schemas outside
 * its subset get Anthropic's 400. With reasoning_effort (no forced tool allowed), json_schema goes as
 * native structured outputs (`output_config.format`) instead, which is always constrained.
 * What Anthropic cannot honour (n > 1, logprobs, audio...) is a clear 400 before anything is sent.
 */
import { gatewayError, type GatewayError, isGatewayError } from '../../errors.js';
import {
  type ChatTranslator,
  type FinishReason,
  invalid,
  isObject,
  jsonFinish,
  jsonResponseTool,
  type JsonObject,
  readJsonSchema,
  readStrict,
  openAIErrorJson,
  openAIErrorType,
  openAIUsage,
  optionalNumber,
  optionalPositiveInt,
  parseDataUrl,
  readThinkingBlocks,
  textOfContent,
  type ThinkingBlock,
  type ProviderUsage,
  type ResponseOptions,
  type TranslatedResponse,
  type TranslationContext,
  unsupported,
} from '../translation.js';
import { AnthropicStreamTranslator } from './stream.js';

const PROVIDER = 'Anthropic Messages';
/** max_tokens when neither the client nor the ModelProvider model gives one. */
export const DEFAULT_MAX_TOKENS = 4096;
/** Anthropic's per-image limit (vision docs): 5 MB decoded. */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
const IMAGE_MEDIA_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const TOOL_ID = /^[a-zA-Z0-9_-]{1,256}$/;
/** Extended-thinking budget per OpenAI reasoning_effort (Anthropic's minimum budget is 1024). */
export const THINKING_BUDGET: Readonly<Record<string, number>> = { minimal: 1024, low: 2048, medium: 8192, high: 24576 };
const MIN_THINKING_BUDGET = 1024;

type Block = Record<string, unknown>;
interface Turn {
  role: 'user' | 'assistant';
  content: Block[] | string;
}

/** OpenAI `finish_reason` for an Anthropic `stop_reason`. */
export function finishReason(stop: unknown): FinishReason | null {
  switch (stop) {
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return stop === null || stop === undefined ? null : 'stop';
  }
}

/** Anthropic usage (input_tokens excludes cache reads and writes) -> normalised usage. */
export function readUsage(u: unknown, previous?: ProviderUsage): ProviderUsage | undefined {
  if (!isObject(u)) return previous;
  const n = (k: string): number | undefined => (typeof u[k] === 'number' ? (u[k] as number) : undefined);
  const input = n('input_tokens');
  const cacheRead = n('cache_read_input_tokens');
  const cacheWrite = n('cache_creation_input_tokens');
  const output = n('output_tokens');
  const prompt = input === undefined && cacheRead === undefined && cacheWrite === undefined ? previous?.promptTokens : (input ?? 0) + (cacheRead ?? 0) + (cacheWrite ?? 0);
  return {
    promptTokens: prompt ?? 0,
    completionTokens: output ?? previous?.completionTokens ?? 0,
    cachedTokens: cacheRead ?? previous?.cachedTokens ?? 0,
    reasoningTokens: undefined,
  };
}

// ---- request ----------------------------------------------------------------------------------


function imageBlock(part: JsonObject, where: string): Block | GatewayError {
  const image = part['image_url'];
  const url = isObject(image) ? image['url'] : typeof image === 'string' ? image : undefined;
  if (typeof url !== 'string' || url === '') return invalid(`${where}.image_url.url`, 'expected an https URL or a data URL.');
  if (url.startsWith('data:')) {
    const data = parseDataUrl(url);
    if (!data) return invalid(`${where}.image_url.url`, 'a data URL must be base64 (data:<type>;base64,<data>).');
    if (!IMAGE_MEDIA_TYPES.has(data.mediaType)) {
      return invalid(`${where}.image_url.url`, `image type '${data.mediaType}' is not supported by the ${PROVIDER} API (jpeg, png, gif, webp).`);
    }
    if (data.bytes > MAX_IMAGE_BYTES) {
      return invalid(`${where}.image_url.url`, `the image is ${data.bytes} bytes; the ${PROVIDER} API accepts at most ${MAX_IMAGE_BYTES} bytes per image.`);
    }
    return { type: 'image', source: { type: 'base64', media_type: data.mediaType, data: data.base64 } };
  }
  if (!url.startsWith('https://')) return invalid(`${where}.image_url.url`, 'expected an https URL or a data URL.');
  return { type: 'image', source: { type: 'url', url } };
}

function userBlocks(content: unknown, where: string): Block[] | string | GatewayError {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content) || content.length === 0) return invalid(`${where}.content`, 'expected a string or a non-empty array of content parts.');
  const blocks: Block[] = [];
  for (const [i, part] of content.entries()) {
    const at = `${where}.content[${i}]`;
    if (!isObject(part)) return invalid(at, 'expected a content part object.');
    const type = part['type'];
    if (type === 'text') {
      if (typeof part['text'] !== 'string') return invalid(`${at}.text`, 'expected a string.');
      blocks.push({ type: 'text', text: part['text'] });
    } else if (type === 'image_url') {
      const block = imageBlock(part, at);
      if (isGatewayError(block)) return block;
      blocks.push(block);
    } else {
      return gatewayError('unsupported_parameter', `Content part type '${String(type)}' (${at}) is not supported for models served by the ${PROVIDER} API (text and image_url are).`);
    }
  }
  return blocks;
}

/** OpenAI-side thinking_blocks -> Anthropic thinking / redacted_thinking blocks (unchanged). */
export function thinkingBlocks(blocks: readonly ThinkingBlock[]): Block[] {
  return blocks.map((b) =>
    b.type === 'redacted_thinking' ? { type: 'redacted_thinking', data: b.data } : { type: 'thinking', thinking: b.thinking, ...(b.signature === undefined ? {} : { signature: b.signature }) },
  );
}

function assistantBlocks(msg: JsonObject, where: string): Block[] | GatewayError {
  const thinking = readThinkingBlocks(msg, where);
  if (isGatewayError(thinking)) return thinking;
  // Thinking comes first in the turn, as Claude produced it.
  const blocks: Block[] = thinkingBlocks(thinking);
  const content = msg['content'];
  if (content !== undefined && content !== null) {
    if (typeof content === 'string') {
      if (content !== '') blocks.push({ type: 'text', text: content });
    } else if (Array.isArray(content)) {
      for (const [i, part] of content.entries()) {
        if (!isObject(part)) return invalid(`${where}.content[${i}]`, 'expected a content part object.');
        if (part['type'] === 'text' && typeof part['text'] === 'string') {
          if (part['text'] !== '') blocks.push({ type: 'text', text: part['text'] });
        } else if (part['type'] === 'refusal' && typeof part['refusal'] === 'string') {
          blocks.push({ type: 'text', text: part['refusal'] });
        } else {
          return invalid(`${where}.content[${i}]`, 'assistant content parts must be text or refusal.');
        }
      }
    } else {
      return invalid(`${where}.content`, 'expected a string, an array of text parts or null.');
    }
  }
  const calls = msg['tool_calls'];
  if (calls !== undefined && calls !== null) {
    if (!Array.isArray(calls)) return invalid(`${where}.tool_calls`, 'expected an array.');
    for (const [i, call] of calls.entries()) {
      const at = `${where}.tool_calls[${i}]`;
      if (!isObject(call) || !isObject(call['function'])) return invalid(at, 'expected {id, type: "function", function: {name, arguments}}.');
      const id = call['id'];
      const fn = call['function'];
      if (typeof id !== 'string' || !TOOL_ID.test(id)) return invalid(`${at}.id`, 'tool call ids must be 1-256 letters, digits, _ or -.');
      if (typeof fn['name'] !== 'string' || !TOOL_NAME.test(fn['name'])) return invalid(`${at}.function.name`, 'expected a tool name (1-64 letters, digits, _ or -).');
      const args = fn['arguments'];
      let input: unknown = {};
      if (typeof args === 'string' && args.trim() !== '') {
        try {
          input = JSON.parse(args);
        } catch {
          return invalid(`${at}.function.arguments`, 'expected a JSON object in a string.');
        }
      }
      if (!isObject(input)) return invalid(`${at}.function.arguments`, 'expected a JSON object in a string.');
      blocks.push({ type: 'tool_use', id, name: fn['name'], input });
    }
  }
  if (blocks.length === 0) return invalid(`${where}`, 'an assistant message needs content or tool_calls.');
  return blocks;
}

function toolResult(msg: JsonObject, where: string): Block | GatewayError {
  const id = msg['tool_call_id'];
  if (typeof id !== 'string' || !TOOL_ID.test(id)) return invalid(`${where}.tool_call_id`, 'expected the id of the tool call this answers.');
  const text = textOfContent(msg['content'], where);
  if (isGatewayError(text)) return text;
  return { type: 'tool_result', tool_use_id: id, content: text };
}

/** Appends a turn, merging it into the previous one of the same role (Anthropic alternates roles). */
function pushTurn(turns: Turn[], role: 'user' | 'assistant', content: Block[] | string): void {
  const last = turns[turns.length - 1];
  if (!last || last.role !== role) {
    turns.push({ role, content });
    return;
  }
  const asBlocks = (c: Block[] | string): Block[] => (typeof c === 'string' ? [{ type: 'text', text: c }] : c);
  last.content = [...asBlocks(last.content), ...asBlocks(content)];
}

function translateMessages(messages: unknown): { system: Block[]; turns: Turn[] } | GatewayError {
  if (!Array.isArray(messages) || messages.length === 0) return invalid('messages', 'expected a non-empty array of messages.');
  const system: Block[] = [];
  const turns: Turn[] = [];
  for (const [i, msg] of messages.entries()) {
    const where = `messages[${i}]`;
    if (!isObject(msg)) return invalid(where, 'expected a message object.');
    const role = msg['role'];
    if (role === 'system' || role === 'developer') {
      const text = textOfContent(msg['content'], where);
      if (isGatewayError(text)) return text;
      if (text !== '') system.push({ type: 'text', text });
    } else if (role === 'user') {
      const blocks = userBlocks(msg['content'], where);
      if (isGatewayError(blocks)) return blocks;
      pushTurn(turns, 'user', blocks);
    } else if (role === 'assistant') {
      const blocks = assistantBlocks(msg, where);
      if (isGatewayError(blocks)) return blocks;
      pushTurn(turns, 'assistant', blocks);
    } else if (role === 'tool') {
      const block = toolResult(msg, where);
      if (isGatewayError(block)) return block;
      pushTurn(turns, 'user', [block]);
    } else if (role === 'function') {
      return unsupported(`${where}.role`, PROVIDER, "the deprecated 'function' role; use tool messages");
    } else {
      return invalid(`${where}.role`, `unknown role '${String(role)}'.`);
    }
  }
  if (turns.length === 0) return invalid('messages', 'at least one user or assistant message is required besides system messages.');
  return { system, turns };
}

function translateTools(body: Readonly<Record<string, unknown>>): { tools?: Block[]; toolChoice?: Block } | GatewayError {
  const tools = body['tools'];
  const choice = body['tool_choice'];
  const parallel = body['parallel_tool_calls'];
  const out: { tools?: Block[]; toolChoice?: Block } = {};
  const names = new Set<string>();
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) return invalid('tools', 'expected an array of tools.');
    const list: Block[] = [];
    for (const [i, tool] of tools.entries()) {
      const at = `tools[${i}]`;
      if (!isObject(tool)) return invalid(at, 'expected a tool object.');
      if (tool['type'] !== 'function') return unsupported(`${at}.type`, PROVIDER, `tool type '${String(tool['type'])}' (only 'function' tools are translated)`);
      const fn = tool['function'];
      if (!isObject(fn) || typeof fn['name'] !== 'string' || !TOOL_NAME.test(fn['name'])) {
        return invalid(`${at}.function.name`, 'expected a tool name of 1-64 letters, digits, _ or -.');
      }
      const params = fn['parameters'] ?? { type: 'object', properties: {} };
      if (!isObject(params) || params['type'] !== 'object') {
        return invalid(`${at}.function.parameters`, `the ${PROVIDER} API requires a JSON Schema of type 'object' for tool parameters.`);
      }
      const strict = readStrict(fn, `${at}.function.strict`);
      if (isGatewayError(strict)) return strict;
      names.add(fn['name']);
      // strict: Anthropic's strict tool use (grammar-constrained input), asked for only when the client did.
      list.push({ name: fn['name'], ...(typeof fn['description'] === 'string' ? { description: fn['description'] } : {}), input_schema: params, ...(strict ? { strict: true } : {}) });
    }
    if (list.length > 0) out.tools = list;
  }
  const noParallel = parallel === false;
  if (choice !== undefined && choice !== null) {
    if (!out.tools && choice !== 'none') return invalid('tool_choice', "tool_choice is only allowed when 'tools' are given.");
    if (choice === 'auto') out.toolChoice = { type: 'auto' };
    else if (choice === 'required') out.toolChoice = { type: 'any' };
    else if (choice === 'none') {
      if (out.tools) out.toolChoice = { type: 'none' };
    } else if (isObject(choice) && choice['type'] === 'function' && isObject(choice['function']) && typeof choice['function']['name'] === 'string') {
      const name = choice['function']['name'];
      if (!names.has(name)) return invalid('tool_choice', `the named function '${name}' is not among the tools.`);
      out.toolChoice = { type: 'tool', name };
    } else {
      return unsupported('tool_choice', PROVIDER, "expected 'auto', 'none', 'required' or {type: 'function', function: {name}}");
    }
  }
  if (noParallel && out.tools) {
    const current = out.toolChoice ?? { type: 'auto' };
    if (current['type'] !== 'none') out.toolChoice = { ...current, disable_parallel_tool_use: true };
  }
  return out;
}

/**
 * response_format json_schema with reasoning_effort (and no tools of the client's): a forced tool is
 * not allowed with extended thinking, so the schema goes as native structured outputs
 * (`output_config.format`, https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs;
 * Claude Sonnet 4.5, Opus 4.5, Haiku 4.5 and later: older models answer 400). The answer is text.
 */
function nativeJsonSchema(body: Readonly<Record<string, unknown>>): JsonObject | undefined | GatewayError {
  const format = body['response_format'];
  const effort = body['reasoning_effort'];
  const tools = body['tools'];
  if (!isObject(format) || format['type'] !== 'json_schema' || effort === undefined || effort === null || effort === 'none') return undefined;
  if (Array.isArray(tools) && tools.length > 0) return undefined; // jsonResponseTool refuses it
  const spec = readJsonSchema(format, PROVIDER);
  return isGatewayError(spec) ? spec : spec.schema;
}

/** Parameters Anthropic has no equivalent for: refused unless set to their no-op value. */
function refuseUnsupported(body: Readonly<Record<string, unknown>>): GatewayError | undefined {
  const n = body['n'];
  if (n !== undefined && n !== null && n !== 1) return unsupported('n', PROVIDER, 'it returns one choice per request (n must be 1)');
  if (body['logprobs'] === true || (body['top_logprobs'] !== undefined && body['top_logprobs'] !== null)) return unsupported('logprobs', PROVIDER);
  for (const p of ['presence_penalty', 'frequency_penalty'] as const) {
    const v = body[p];
    if (v !== undefined && v !== null && v !== 0) return unsupported(p, PROVIDER);
  }
  const bias = body['logit_bias'];
  if (isObject(bias) && Object.keys(bias).length > 0) return unsupported('logit_bias', PROVIDER);
  const modalities = body['modalities'];
  if ((Array.isArray(modalities) && modalities.some((m) => m !== 'text')) || (body['audio'] !== undefined && body['audio'] !== null)) {
    return unsupported('audio', PROVIDER);
  }
  if (body['prediction'] !== undefined && body['prediction'] !== null) return unsupported('prediction', PROVIDER);
  if (body['web_search_options'] !== undefined && body['web_search_options'] !== null) return unsupported('web_search_options', PROVIDER);
  return undefined;
}

/**
 * The Messages API request object for an OpenAI request (before serialisation): Anthropic on other
 * platforms (Vertex AI rawPredict) adjusts it (no `model`, an `anthropic_version` field).
 */
export function messagesRequest(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Record<string, unknown> | GatewayError {
  const refused = refuseUnsupported(body);
  if (refused) return refused;
  const messages = translateMessages(body['messages']);
  if (isGatewayError(messages)) return messages;
  const tools = translateTools(body);
  if (isGatewayError(tools)) return tools;
  const native = nativeJsonSchema(body);
  if (isGatewayError(native)) return native;
  const json = native ? undefined : jsonResponseTool(body, PROVIDER, 'with it, use json_schema: it is then asked for through native structured outputs');
  if (isGatewayError(json)) return json;
  if (json) {
    tools.tools = [{ name: json.name, description: json.description, input_schema: json.schema, ...(json.strict ? { strict: true } : {}) }];
    tools.toolChoice = { type: 'tool', name: json.name };
  }
  const temperature = optionalNumber(body, 'temperature', 0, 1);
  if (isGatewayError(temperature)) return temperature;
  const topP = optionalNumber(body, 'top_p', 0, 1);
  if (isGatewayError(topP)) return topP;
  const maxCompletion = optionalPositiveInt(body, 'max_completion_tokens');
  if (isGatewayError(maxCompletion)) return maxCompletion;
  const maxTokensParam = optionalPositiveInt(body, 'max_tokens');
  if (isGatewayError(maxTokensParam)) return maxTokensParam;
  const clientMax = maxCompletion ?? maxTokensParam;
  let maxTokens = clientMax ?? ctx.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;

  const out: Record<string, unknown> = { model: ctx.upstreamModel, max_tokens: maxTokens, messages: messages.turns };
  if (messages.system.length > 0) out['system'] = messages.system;

  const stop = body['stop'];
  if (typeof stop === 'string') out['stop_sequences'] = [stop];
  else if (Array.isArray(stop)) {
    if (!stop.every((s) => typeof s === 'string' && s !== '')) return invalid('stop', 'expected a string or an array of non-empty strings.');
    if (stop.length > 0) out['stop_sequences'] = stop;
  } else if (stop !== undefined && stop !== null) return invalid('stop', 'expected a string or an array of strings.');

  if (temperature !== undefined) out['temperature'] = temperature;
  if (topP !== undefined) out['top_p'] = topP;
  if (tools.tools) out['tools'] = tools.tools;
  if (tools.toolChoice) out['tool_choice'] = tools.toolChoice;

  const effort = body['reasoning_effort'];
  if (effort !== undefined && effort !== null && effort !== 'none') {
    const budgetWanted = typeof effort === 'string' ? THINKING_BUDGET[effort] : undefined;
    if (budgetWanted === undefined) return invalid('reasoning_effort', "expected 'none', 'minimal', 'low', 'medium' or 'high'.");
    if (temperature !== undefined && temperature !== 1) return unsupported('temperature', PROVIDER, 'extended thinking (reasoning_effort) requires the default temperature');
    const forced = tools.toolChoice?.['type'];
    if (forced === 'any' || forced === 'tool') return unsupported('tool_choice', PROVIDER, "extended thinking (reasoning_effort) allows only 'auto' or 'none'");
    let budget = budgetWanted;
    if (clientMax !== undefined) {
      // The client's cap covers reasoning and answer (as OpenAI counts it): the budget fits inside.
      budget = Math.min(budgetWanted, clientMax - 1);
      if (budget < MIN_THINKING_BUDGET) return invalid('max_completion_tokens', `with reasoning_effort it must be above ${MIN_THINKING_BUDGET} for the ${PROVIDER} API.`);
    } else if (maxTokens <= budget) {
      maxTokens += budget;
      out['max_tokens'] = maxTokens;
    }
    out['thinking'] = { type: 'enabled', budget_tokens: budget };
  }

  if (native) out['output_config'] = { format: { type: 'json_schema', schema: native } };
  const user = body['user'];
  if (typeof user === 'string' && user !== '') out['metadata'] = { user_id: user };
  if (body['stream'] === true) out['stream'] = true;
  return out;
}

function translateRequest(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
  const out = messagesRequest(body, ctx);
  return isGatewayError(out) ? out : Buffer.from(JSON.stringify(out));
}

// ---- response -----------------------------------------------------------------------------------

function malformed(what: string): TranslatedResponse {
  return { status: 502, body: Buffer.from(openAIErrorJson(`The provider (${PROVIDER} API) returned ${what}.`, 'api_error', 'bad_upstream_response')) };
}

function translateResponse(raw: Buffer, options: ResponseOptions): TranslatedResponse {
  let msg: unknown;
  try {
    msg = JSON.parse(raw.toString('utf8'));
  } catch {
    return malformed('a body that is not JSON');
  }
  if (!isObject(msg) || !Array.isArray(msg['content'])) return malformed('a message without content');
  let text = '';
  let reasoning = '';
  const thinking: ThinkingBlock[] = [];
  const toolCalls: Record<string, unknown>[] = [];
  for (const block of msg['content']) {
    if (!isObject(block)) continue;
    if (block['type'] === 'text' && typeof block['text'] === 'string') text += block['text'];
    else if (block['type'] === 'thinking' && typeof block['thinking'] === 'string') {
      reasoning += block['thinking'];
      const signature = block['signature'];
      thinking.push(typeof signature === 'string' ? { type: 'thinking', thinking: block['thinking'], signature } : { type: 'thinking', thinking: block['thinking'] });
    } else if (block['type'] === 'redacted_thinking' && typeof block['data'] === 'string') thinking.push({ type: 'redacted_thinking', data: block['data'] });
    else if (block['type'] === 'tool_use') {
      // response_format: the forced tool's input is the answer (the request offered no other tool).
      if (options.jsonResponse) text += JSON.stringify(block['input'] ?? {});
      else toolCalls.push({ id: block['id'], type: 'function', function: { name: block['name'], arguments: JSON.stringify(block['input'] ?? {}) } });
    }
  }
  const message: Record<string, unknown> = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text, refusal: null };
  if (reasoning) message['reasoning_content'] = reasoning;
  if (thinking.length > 0) message['thinking_blocks'] = thinking;
  if (toolCalls.length > 0) message['tool_calls'] = toolCalls;
  const usage = readUsage(msg['usage']);
  const out: Record<string, unknown> = {
    id: msg['id'],
    object: 'chat.completion',
    created: options.created,
    model: msg['model'],
    choices: [{ index: 0, message, logprobs: null, finish_reason: jsonFinish(finishReason(msg['stop_reason']) ?? 'stop', options) }],
  };
  // Last, as OpenAI puts it: the usage meter reads it from the tail of the body.
  if (usage) out['usage'] = openAIUsage(usage);
  return { status: 200, body: Buffer.from(JSON.stringify(out)) };
}

/** Anthropic error `type` -> OpenAI error code (OpenAI's own codes where one fits). */
const ERROR_CODES: Readonly<Record<string, string>> = {
  invalid_request_error: 'invalid_request_error',
  authentication_error: 'invalid_api_key',
  permission_error: 'permission_denied',
  not_found_error: 'model_not_found',
  request_too_large: 'request_too_large',
  rate_limit_error: 'rate_limit_exceeded',
  api_error: 'provider_error',
  overloaded_error: 'provider_overloaded',
};

/** 529 (overloaded) is not an HTTP status OpenAI clients know: it becomes 503 (retriable like it). */
function clientStatus(status: number): number {
  return status === 529 ? 503 : status;
}

function translateError(status: number, raw: Buffer): Buffer {
  let type = '';
  let message = '';
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (isObject(parsed) && isObject(parsed['error'])) {
      type = typeof parsed['error']['type'] === 'string' ? parsed['error']['type'] : '';
      message = typeof parsed['error']['message'] === 'string' ? parsed['error']['message'] : '';
    }
  } catch {
    // Not JSON (a proxy's HTML page): the status says enough.
  }
  const mapped = clientStatus(status);
  return Buffer.from(
    openAIErrorJson(message || `The provider (${PROVIDER} API) answered HTTP ${status}.`, openAIErrorType(mapped), ERROR_CODES[type] ?? (type || null)),
  );
}

export const anthropicChat: ChatTranslator = {
  streamContentType: 'text/event-stream',
  request: translateRequest,
  status: clientStatus,
  response: translateResponse,
  error: translateError,
  stream: (options) => new AnthropicStreamTranslator(options),
};
