/**
 * OpenAI chat completions <-> Bedrock Converse: the request and the non-streamed response (the
 * stream part is stream.ts). References are listed in api.ts.
 *
 * Request: system/developer -> `system`; user/assistant turns -> content blocks (text, images as
 * bytes from data URLs, toolUse from tool_calls); `tool` messages -> toolResult blocks in a user turn
 * (ids round-trip unchanged); tools -> toolConfig (toolSpec.inputSchema.json); tool_choice auto /
 * required / named -> auto / any / tool; max_tokens, temperature, top_p, stop -> inferenceConfig.
 * reasoning_effort on Claude models with extended thinking -> additionalModelRequestFields.thinking
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html), the
 * budget as for Anthropic's own API; an assistant message's `thinking_blocks` -> reasoningContent
 * blocks (reasoningText with its signature, or redactedContent) first in its turn: Claude needs them
 * back in a tool loop with thinking on. response_format json_object / json_schema -> toolConfig with
 * one tool whose inputSchema is the schema, forced with toolChoice {tool: {name}} (Claude and Nova
 * models; https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolChoice.html); its
 * input comes back as the message content; `json_schema.strict: true` (and a tool's `function.strict`)
 * sets toolSpec.strict (structured output enforcement on the tool's input, on the models with structured
 * outputs: https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html; others answer
 * ValidationException); with reasoning_effort (no forced tool allowed), json_schema
 * goes as outputConfig.textFormat instead (always enforced). What Converse cannot take (https image URLs, n > 1,
 * logprobs, reasoning effort on other models ...) is a clear 400 before anything is sent.
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
import { DEFAULT_MAX_TOKENS, THINKING_BUDGET } from '../anthropic/chat.js';
import { BedrockStreamTranslator } from './stream.js';

const PROVIDER = 'AWS Bedrock Converse';
/** Converse's per-image limit: 3.75 MB. */
export const MAX_IMAGE_BYTES = 3_750_000;
const IMAGE_FORMATS: Readonly<Record<string, string>> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/gif': 'gif', 'image/webp': 'webp' };
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const TOOL_ID = /^[a-zA-Z0-9_-]{1,64}$/;

/** Anthropic's minimum extended-thinking budget. */
const MIN_THINKING_BUDGET = 1024;
/** Claude on Bedrock: a model id or an inference profile (us., eu., apac., global. ...). */
const CLAUDE = /(?:^|[./])anthropic\.claude-/;
/** Claude models released before extended thinking (Claude 3 and 3.5, Instant, v2). */
const CLAUDE_WITHOUT_THINKING = /anthropic\.claude-(?:instant|v2|3-(?:haiku|sonnet|opus)|3-5-)/;

/** Whether reasoning_effort is translated for this Bedrock model id (Claude 3.7 and later). */
export function supportsThinking(modelId: string): boolean {
  return CLAUDE.test(modelId) && !CLAUDE_WITHOUT_THINKING.test(modelId);
}

type Block = Record<string, unknown>;
interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

/** OpenAI finish_reason for a Converse stopReason. */
export function finishReason(stop: unknown): FinishReason {
  switch (stop) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'guardrail_intervened':
    case 'content_filtered':
      return 'content_filter';
    default:
      return 'stop';
  }
}

/** Converse usage (inputTokens excludes cache reads and writes) -> normalised usage. */
export function readUsage(u: unknown): ProviderUsage | undefined {
  if (!isObject(u)) return undefined;
  const n = (k: string): number => (typeof u[k] === 'number' ? (u[k] as number) : 0);
  return {
    promptTokens: n('inputTokens') + n('cacheReadInputTokens') + n('cacheWriteInputTokens'),
    completionTokens: n('outputTokens'),
    cachedTokens: n('cacheReadInputTokens'),
    reasoningTokens: undefined,
  };
}


function userBlocks(content: unknown, where: string): Block[] | GatewayError {
  if (typeof content === 'string') return [{ text: content }];
  if (!Array.isArray(content) || content.length === 0) return invalid(`${where}.content`, 'expected a string or a non-empty array of content parts.');
  const blocks: Block[] = [];
  for (const [i, part] of content.entries()) {
    const at = `${where}.content[${i}]`;
    if (!isObject(part)) return invalid(at, 'expected a content part object.');
    if (part['type'] === 'text' && typeof part['text'] === 'string') {
      blocks.push({ text: part['text'] });
    } else if (part['type'] === 'image_url') {
      const image = part['image_url'];
      const url = isObject(image) ? image['url'] : undefined;
      if (typeof url !== 'string' || !url.startsWith('data:')) {
        return unsupported(`${at}.image_url`, PROVIDER, 'images must be sent as data URLs (Converse takes image bytes, not URLs)');
      }
      const data = parseDataUrl(url);
      const format = data ? IMAGE_FORMATS[data.mediaType] : undefined;
      if (!data || !format) return invalid(`${at}.image_url.url`, `expected a base64 data URL of a png, jpeg, gif or webp image.`);
      if (data.bytes > MAX_IMAGE_BYTES) return invalid(`${at}.image_url.url`, `the image is ${data.bytes} bytes; the ${PROVIDER} API accepts at most ${MAX_IMAGE_BYTES} bytes per image.`);
      blocks.push({ image: { format, source: { bytes: data.base64 } } });
    } else {
      return gatewayError('unsupported_parameter', `Content part type '${String(part['type'])}' (${at}) is not supported for models served by the ${PROVIDER} API (text and image_url are).`);
    }
  }
  return blocks;
}

function assistantBlocks(msg: JsonObject, where: string): Block[] | GatewayError {
  const thinking = readThinkingBlocks(msg, where);
  if (isGatewayError(thinking)) return thinking;
  // Reasoning comes first in the turn, as the model produced it.
  const blocks: Block[] = thinking.map((b) =>
    b.type === 'redacted_thinking'
      ? { reasoningContent: { redactedContent: b.data } }
      : { reasoningContent: { reasoningText: { text: b.thinking, ...(b.signature === undefined ? {} : { signature: b.signature }) } } },
  );
  const content = msg['content'];
  if (content !== undefined && content !== null) {
    const text = textOfContent(content, where);
    if (isGatewayError(text)) return text;
    if (text !== '') blocks.push({ text });
  }
  const calls = msg['tool_calls'];
  if (Array.isArray(calls)) {
    for (const [i, call] of calls.entries()) {
      const at = `${where}.tool_calls[${i}]`;
      if (!isObject(call) || !isObject(call['function'])) return invalid(at, 'expected {id, type: "function", function: {name, arguments}}.');
      const fn = call['function'];
      const id = call['id'];
      if (typeof id !== 'string' || !TOOL_ID.test(id)) return invalid(`${at}.id`, 'tool call ids must be 1-64 letters, digits, _ or -.');
      if (typeof fn['name'] !== 'string' || !TOOL_NAME.test(fn['name'])) return invalid(`${at}.function.name`, 'expected a tool name (1-64 letters, digits, _ or -).');
      let input: unknown = {};
      const args = fn['arguments'];
      if (typeof args === 'string' && args.trim() !== '') {
        try {
          input = JSON.parse(args);
        } catch {
          return invalid(`${at}.function.arguments`, 'expected a JSON object in a string.');
        }
      }
      if (!isObject(input)) return invalid(`${at}.function.arguments`, 'expected a JSON object in a string.');
      blocks.push({ toolUse: { toolUseId: id, name: fn['name'], input } });
    }
  } else if (calls !== undefined && calls !== null) {
    return invalid(`${where}.tool_calls`, 'expected an array.');
  }
  if (blocks.length === 0) return invalid(where, 'an assistant message needs content or tool_calls.');
  return blocks;
}

function pushTurn(turns: Turn[], role: 'user' | 'assistant', content: Block[]): void {
  const last = turns[turns.length - 1];
  if (last && last.role === role) last.content.push(...content);
  else turns.push({ role, content });
}

function translateMessages(messages: unknown): { system: Block[]; turns: Turn[]; hasToolBlocks: boolean } | GatewayError {
  if (!Array.isArray(messages) || messages.length === 0) return invalid('messages', 'expected a non-empty array of messages.');
  const system: Block[] = [];
  const turns: Turn[] = [];
  let hasToolBlocks = false;
  for (const [i, msg] of messages.entries()) {
    const where = `messages[${i}]`;
    if (!isObject(msg)) return invalid(where, 'expected a message object.');
    const role = msg['role'];
    if (role === 'system' || role === 'developer') {
      const text = textOfContent(msg['content'], where);
      if (isGatewayError(text)) return text;
      if (text !== '') system.push({ text });
    } else if (role === 'user') {
      const blocks = userBlocks(msg['content'], where);
      if (isGatewayError(blocks)) return blocks;
      pushTurn(turns, 'user', blocks);
    } else if (role === 'assistant') {
      const blocks = assistantBlocks(msg, where);
      if (isGatewayError(blocks)) return blocks;
      hasToolBlocks ||= blocks.some((b) => 'toolUse' in b);
      pushTurn(turns, 'assistant', blocks);
    } else if (role === 'tool') {
      const id = msg['tool_call_id'];
      if (typeof id !== 'string' || !TOOL_ID.test(id)) return invalid(`${where}.tool_call_id`, 'expected the id of the tool call this answers.');
      const text = textOfContent(msg['content'], where);
      if (isGatewayError(text)) return text;
      hasToolBlocks = true;
      pushTurn(turns, 'user', [{ toolResult: { toolUseId: id, content: [{ text }] } }]);
    } else if (role === 'function') {
      return unsupported(`${where}.role`, PROVIDER, "the deprecated 'function' role; use tool messages");
    } else {
      return invalid(`${where}.role`, `unknown role '${String(role)}'.`);
    }
  }
  if (turns.length === 0) return invalid('messages', 'at least one user or assistant message is required besides system messages.');
  return { system, turns, hasToolBlocks };
}

function toolConfig(body: Readonly<Record<string, unknown>>, hasToolBlocks: boolean): Block | undefined | GatewayError {
  const tools = body['tools'];
  const choice = body['tool_choice'];
  if (tools === undefined || tools === null || (Array.isArray(tools) && tools.length === 0)) {
    if (choice !== undefined && choice !== null && choice !== 'none') return invalid('tool_choice', "tool_choice is only allowed when 'tools' are given.");
    return undefined;
  }
  if (!Array.isArray(tools)) return invalid('tools', 'expected an array of tools.');
  const specs: Block[] = [];
  const names = new Set<string>();
  for (const [i, tool] of tools.entries()) {
    const at = `tools[${i}]`;
    if (!isObject(tool)) return invalid(at, 'expected a tool object.');
    if (tool['type'] !== 'function') return unsupported(`${at}.type`, PROVIDER, `tool type '${String(tool['type'])}' (only 'function' tools are translated)`);
    const fn = tool['function'];
    if (!isObject(fn) || typeof fn['name'] !== 'string' || !TOOL_NAME.test(fn['name'])) return invalid(`${at}.function.name`, 'expected a tool name of 1-64 letters, digits, _ or -.');
    const params = fn['parameters'] ?? { type: 'object', properties: {} };
    if (!isObject(params) || params['type'] !== 'object') return invalid(`${at}.function.parameters`, `the ${PROVIDER} API requires a JSON Schema of type 'object' for tool parameters.`);
    const strict = readStrict(fn, `${at}.function.strict`);
    if (isGatewayError(strict)) return strict;
    names.add(fn['name']);
    // strict: Bedrock's strict tool use (toolSpec.strict), asked for only when the client did.
    specs.push({ toolSpec: { name: fn['name'], ...(typeof fn['description'] === 'string' && fn['description'] !== '' ? { description: fn['description'] } : {}), inputSchema: { json: params }, ...(strict ? { strict: true } : {}) } });
  }
  if (choice === 'none') {
    // Converse has no "none": without tools the model cannot call one, unless the history needs them.
    if (hasToolBlocks) return unsupported('tool_choice', PROVIDER, "'none' while the conversation holds tool calls");
    return undefined;
  }
  const config: Block = { tools: specs };
  if (choice === undefined || choice === null || choice === 'auto') config['toolChoice'] = { auto: {} };
  else if (choice === 'required') config['toolChoice'] = { any: {} };
  else if (isObject(choice) && choice['type'] === 'function' && isObject(choice['function']) && typeof choice['function']['name'] === 'string') {
    const name = choice['function']['name'];
    if (!names.has(name)) return invalid('tool_choice', `the named function '${name}' is not among the tools.`);
    config['toolChoice'] = { tool: { name } };
  } else {
    return unsupported('tool_choice', PROVIDER, "expected 'auto', 'none', 'required' or {type: 'function', function: {name}}");
  }
  return config;
}

/**
 * response_format json_schema with reasoning_effort (and no tools of the client's): a forced tool is
 * not allowed with extended thinking, so the schema goes as Converse structured outputs
 * (`outputConfig.textFormat`, the schema as a JSON string;
 * https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html). The answer is text.
 */
function nativeJsonSchema(body: Readonly<Record<string, unknown>>): Record<string, string> | undefined | GatewayError {
  const format = body['response_format'];
  const effort = body['reasoning_effort'];
  const tools = body['tools'];
  if (!isObject(format) || format['type'] !== 'json_schema' || effort === undefined || effort === null || effort === 'none') return undefined;
  if (Array.isArray(tools) && tools.length > 0) return undefined; // jsonResponseTool refuses it
  const spec = readJsonSchema(format, PROVIDER);
  if (isGatewayError(spec)) return spec;
  const described = isObject(format['json_schema']) ? format['json_schema']['description'] : undefined;
  return { schema: JSON.stringify(spec.schema), name: spec.name, ...(typeof described === 'string' && described !== '' ? { description: described } : {}) };
}

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
  if ((Array.isArray(body['modalities']) && (body['modalities'] as unknown[]).some((m) => m !== 'text')) || (body['audio'] !== undefined && body['audio'] !== null)) return unsupported('audio', PROVIDER);
  if (body['parallel_tool_calls'] === false) return unsupported('parallel_tool_calls', PROVIDER, 'Converse cannot turn parallel tool calls off');
  return undefined;
}

function translateRequest(body: Readonly<Record<string, unknown>>, ctx: TranslationContext): Buffer | GatewayError {
  const refused = refuseUnsupported(body);
  if (refused) return refused;
  const messages = translateMessages(body['messages']);
  if (isGatewayError(messages)) return messages;
  const native = nativeJsonSchema(body);
  if (isGatewayError(native)) return native;
  const json = native ? undefined : jsonResponseTool(body, PROVIDER, 'with it, use json_schema: it is then asked for through outputConfig.textFormat');
  if (isGatewayError(json)) return json;
  // Checked even with response_format (which refuses tools): a tool_choice without tools is a 400.
  const clientTools = toolConfig(body, messages.hasToolBlocks);
  if (isGatewayError(clientTools)) return clientTools;
  const tools = json
    ? { tools: [{ toolSpec: { name: json.name, description: json.description, inputSchema: { json: json.schema }, ...(json.strict ? { strict: true } : {}) } }], toolChoice: { tool: { name: json.name } } }
    : clientTools;
  const temperature = optionalNumber(body, 'temperature', 0, 1);
  if (isGatewayError(temperature)) return temperature;
  const topP = optionalNumber(body, 'top_p', 0, 1);
  if (isGatewayError(topP)) return topP;
  const maxCompletion = optionalPositiveInt(body, 'max_completion_tokens');
  if (isGatewayError(maxCompletion)) return maxCompletion;
  const maxTokens = optionalPositiveInt(body, 'max_tokens');
  if (isGatewayError(maxTokens)) return maxTokens;
  const inference: Record<string, unknown> = {};
  let max = maxCompletion ?? maxTokens ?? ctx.defaultMaxTokens;
  let thinking: Block | undefined;
  const effort = body['reasoning_effort'];
  if (effort !== undefined && effort !== null && effort !== 'none') {
    const wanted = typeof effort === 'string' ? THINKING_BUDGET[effort] : undefined;
    if (wanted === undefined) return invalid('reasoning_effort', "expected 'none', 'minimal', 'low', 'medium' or 'high'.");
    if (!supportsThinking(ctx.upstreamModel)) return unsupported('reasoning_effort', PROVIDER, `it is translated for Claude models with extended thinking (Claude 3.7 and later), not '${ctx.upstreamModel}'`);
    if (temperature !== undefined && temperature !== 1) return unsupported('temperature', PROVIDER, 'extended thinking (reasoning_effort) requires the default temperature');
    if (topP !== undefined && topP < 0.95) return unsupported('top_p', PROVIDER, 'extended thinking (reasoning_effort) allows top_p between 0.95 and 1 only');
    const choice = isObject(tools) ? tools['toolChoice'] : undefined;
    if (isObject(choice) && ('any' in choice || 'tool' in choice)) return unsupported('tool_choice', PROVIDER, "extended thinking (reasoning_effort) allows only 'auto' or 'none'");
    const clientMax = maxCompletion ?? maxTokens;
    let budget = wanted;
    if (clientMax !== undefined) {
      // The client's cap covers reasoning and answer (as OpenAI counts it): the budget fits inside.
      budget = Math.min(wanted, clientMax - 1);
      if (budget < MIN_THINKING_BUDGET) return invalid(maxCompletion === undefined ? 'max_tokens' : 'max_completion_tokens', `with reasoning_effort it must be above ${MIN_THINKING_BUDGET} for the ${PROVIDER} API.`);
    } else {
      // maxTokens must exceed the budget: the answer gets the model's configured maximum on top.
      max = budget + (max ?? DEFAULT_MAX_TOKENS);
    }
    thinking = { thinking: { type: 'enabled', budget_tokens: budget } };
  }
  if (max !== undefined) inference['maxTokens'] = max;
  if (temperature !== undefined) inference['temperature'] = temperature;
  if (topP !== undefined) inference['topP'] = topP;
  const stop = body['stop'];
  if (typeof stop === 'string') inference['stopSequences'] = [stop];
  else if (Array.isArray(stop)) {
    if (!stop.every((s) => typeof s === 'string' && s !== '')) return invalid('stop', 'expected a string or an array of non-empty strings.');
    if (stop.length > 0) inference['stopSequences'] = stop;
  } else if (stop !== undefined && stop !== null) return invalid('stop', 'expected a string or an array of strings.');
  const out: Record<string, unknown> = { messages: messages.turns };
  if (messages.system.length > 0) out['system'] = messages.system;
  if (Object.keys(inference).length > 0) out['inferenceConfig'] = inference;
  if (tools) out['toolConfig'] = tools;
  if (thinking) out['additionalModelRequestFields'] = thinking;
  if (native) out['outputConfig'] = { textFormat: { type: 'json_schema', structure: { jsonSchema: native } } };
  return Buffer.from(JSON.stringify(out));
}

function translateResponse(raw: Buffer, options: ResponseOptions): TranslatedResponse {
  let msg: unknown;
  try {
    msg = JSON.parse(raw.toString('utf8'));
  } catch {
    msg = undefined;
  }
  const output = isObject(msg) && isObject(msg['output']) ? msg['output']['message'] : undefined;
  if (!isObject(msg) || !isObject(output) || !Array.isArray(output['content'])) {
    return { status: 502, body: Buffer.from(openAIErrorJson(`The provider (${PROVIDER} API) returned a malformed response.`, 'api_error', 'bad_upstream_response')) };
  }
  let text = '';
  let reasoning = '';
  const thinking: ThinkingBlock[] = [];
  const toolCalls: Record<string, unknown>[] = [];
  for (const block of output['content']) {
    if (!isObject(block)) continue;
    if (typeof block['text'] === 'string') text += block['text'];
    else if (isObject(block['toolUse'])) {
      const t = block['toolUse'];
      // response_format: the forced tool's input is the answer (the request offered no other tool).
      if (options.jsonResponse) text += JSON.stringify(t['input'] ?? {});
      else toolCalls.push({ id: t['toolUseId'], type: 'function', function: { name: t['name'], arguments: JSON.stringify(t['input'] ?? {}) } });
    } else if (isObject(block['reasoningContent'])) {
      const r = block['reasoningContent'];
      if (isObject(r['reasoningText']) && typeof r['reasoningText']['text'] === 'string') {
        const t = r['reasoningText']['text'];
        const signature = r['reasoningText']['signature'];
        reasoning += t;
        thinking.push(typeof signature === 'string' ? { type: 'thinking', thinking: t, signature } : { type: 'thinking', thinking: t });
      } else if (typeof r['redactedContent'] === 'string') thinking.push({ type: 'redacted_thinking', data: r['redactedContent'] });
    }
  }
  const message: Record<string, unknown> = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text, refusal: null };
  if (reasoning) message['reasoning_content'] = reasoning;
  if (thinking.length > 0) message['thinking_blocks'] = thinking;
  if (toolCalls.length > 0) message['tool_calls'] = toolCalls;
  const usage = readUsage(msg['usage']);
  const out: Record<string, unknown> = {
    id: `chatcmpl-bedrock-${options.created}`,
    object: 'chat.completion',
    created: options.created,
    model: options.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: jsonFinish(finishReason(msg['stopReason']), options) }],
  };
  if (usage) out['usage'] = openAIUsage(usage);
  return { status: 200, body: Buffer.from(JSON.stringify(out)) };
}

/** Bedrock statuses OpenAI clients do not expect: model timeout (408) and model error (424). */
function clientStatus(status: number): number {
  if (status === 408) return 504;
  if (status === 424) return 502;
  return status;
}

const CODES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  403: 'permission_denied',
  404: 'model_not_found',
  429: 'rate_limit_exceeded',
  502: 'provider_error',
  503: 'provider_overloaded',
  504: 'provider_timeout',
};

function translateError(status: number, raw: Buffer): Buffer {
  let message = '';
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (isObject(parsed)) {
      const m = parsed['message'] ?? parsed['Message'];
      if (typeof m === 'string') message = m;
    }
  } catch {
    // Not JSON: the status says enough.
  }
  const mapped = clientStatus(status);
  return Buffer.from(openAIErrorJson(message || `The provider (${PROVIDER} API) answered HTTP ${status}.`, openAIErrorType(mapped), CODES[mapped] ?? 'provider_error'));
}

export const bedrockChat: ChatTranslator = {
  streamContentType: 'application/vnd.amazon.eventstream',
  request: translateRequest,
  status: clientStatus,
  response: translateResponse,
  error: translateError,
  stream: (options) => new BedrockStreamTranslator(options),
};
