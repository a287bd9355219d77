/**
 * Prompt templates (PromptTemplate resources): compiled once per config build (Liquid parse, Ajv
 * compile of the input schema), rendered per request into an OpenAI chat completions body.
 *
 * Sandbox: one Liquid engine with an in-memory, empty partials map (include/render/layout find
 * nothing, the filesystem is never read), own properties only (no prototype walking), a render time
 * cap and a memory cap; the rendered body is capped too. Every failure is a value naming the cause,
 * never an exception out of this module.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { Liquid, type Template } from 'liquidjs';
import type { PromptTemplate, TemplateRole } from '../config/types.js';

/** Render time a template may take, in milliseconds (Liquid's renderLimit). */
export const RENDER_LIMIT_MS = 50;
/** Largest rendered chat body, in bytes. */
export const OUTPUT_LIMIT_BYTES = 1_048_576;
/** Largest input object (the request body), in bytes. */
export const INPUT_LIMIT_BYTES = 1_048_576;

/** A template ready to render. */
export interface CompiledTemplate {
  /** `namespace/name`. */
  readonly name: string;
  readonly version: string | undefined;
  readonly model: string;
  readonly messages: readonly { readonly role: TemplateRole; readonly content: readonly Template[] }[];
  readonly validate: ValidateFunction | undefined;
  readonly parameters: Readonly<Record<string, unknown>>;
}

/** Why a PromptTemplate is not served. */
export interface TemplateProblem {
  readonly kind: 'PromptTemplate';
  readonly name: string;
  readonly reason: 'Invalid';
  /** Starts with the field at fault (`spec.messages[1].content: ...`), so Kubernetes status shows it too. */
  readonly message: string;
}

/** Templates by `namespace/name`. */
export interface TemplateIndex {
  readonly byName: ReadonlyMap<string, CompiledTemplate>;
}

export const EMPTY_TEMPLATES: TemplateIndex = { byName: new Map() };

function lengthOf(v: unknown): number {
  if (typeof v === 'string' || Array.isArray(v)) return v.length;
  if (v !== null && typeof v === 'object') return Object.keys(v).length;
  return 0;
}

/** `{{ items | slice_to_index_map }}`: ["a","b"] -> {"0":"a","1":"b"} (a string: its characters). */
function sliceToIndexMap(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const list = typeof v === 'string' ? [...v] : Array.isArray(v) ? v : [];
  list.forEach((item, i) => {
    out[String(i)] = item;
  });
  return out;
}

/**
 * `{{ "k1" | make_json_object: v1, "k2", v2 }}`: an object from alternating keys and values (the
 * piped value is the first key); `{{ pairs | make_json_object }}` with [[k, v], ...] works too.
 */
function makeJsonObject(first: unknown, ...rest: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (Array.isArray(first) && rest.length === 0) {
    for (const pair of first) if (Array.isArray(pair) && pair.length === 2) out[String(pair[0])] = pair[1];
    return out;
  }
  const flat = [first, ...rest];
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

function jsonify(v: unknown, indent?: unknown): string {
  const text = JSON.stringify(v === undefined ? null : v, null, typeof indent === 'number' ? Math.min(Math.max(indent, 0), 8) : undefined);
  return text ?? 'null';
}

function newEngine(): Liquid {
  const liquid = new Liquid({
    // In-memory partials: nothing registered, so include/render/layout never reach a filesystem.
    templates: {},
    strictVariables: true,
    strictFilters: true,
    lenientIf: true,
    ownPropertyOnly: true,
    renderLimit: RENDER_LIMIT_MS,
    parseLimit: 1_000_000,
    memoryLimit: OUTPUT_LIMIT_BYTES * 4,
    cache: false,
  });
  liquid.registerFilter('len', lengthOf);
  liquid.registerFilter('jsonify', jsonify);
  liquid.registerFilter('make_json_object', makeJsonObject);
  liquid.registerFilter('slice_to_index_map', sliceToIndexMap);
  return liquid;
}

/** The shared engine (stateless apart from its options and filters). */
const engine = newEngine();

function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // Liquid messages carry a position ("line:1, col:5"); keep them short.
  return text.length > 300 ? text.slice(0, 300) + '...' : text;
}

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: false, strict: false, validateSchema: true, useDefaults: true, addUsedSchema: false });
  addFormats.default(ajv);
  return ajv;
}

/** Compiles every template; the broken ones are reported and left out. */
export function compileTemplates(templates: readonly PromptTemplate[], problems: TemplateProblem[]): TemplateIndex {
  return new TemplateCompiler().compile(templates, problems);
}

/**
 * Compiles templates, keeping the result of each unchanged PromptTemplate object (the incremental
 * builder hands the same object until it changes): one changed template costs one compile (about
 * 1 ms for an input schema), not one per template.
 */
export class TemplateCompiler {
  private readonly ajv = newAjv();
  private cache = new Map<PromptTemplate, CompiledTemplate | TemplateProblem>();

  compile(templates: readonly PromptTemplate[], problems: TemplateProblem[]): TemplateIndex {
    const byName = new Map<string, CompiledTemplate>();
    const next = new Map<PromptTemplate, CompiledTemplate | TemplateProblem>();
    // Schemas of templates that changed or went away leave Ajv's cache first.
    const live = new Set(templates);
    for (const old of this.cache.keys()) if (!live.has(old) && old.spec.variables !== undefined) this.ajv.removeSchema(old.spec.variables);
    for (const t of templates) {
      const name = `${t.metadata.namespace ?? 'default'}/${t.metadata.name}`;
      const compiled = this.cache.get(t) ?? compileOne(name, t, this.ajv);
      next.set(t, compiled);
      if ('reason' in compiled) problems.push(compiled);
      else byName.set(name, compiled);
    }
    this.cache = next;
    return byName.size === 0 ? EMPTY_TEMPLATES : { byName };
  }
}

function compileOne(name: string, t: PromptTemplate, ajv: Ajv): CompiledTemplate | TemplateProblem {
  const problem = (field: string, message: string): TemplateProblem => ({ kind: 'PromptTemplate', name, reason: 'Invalid', message: `${field}: ${message}` });
  const messages: { role: TemplateRole; content: Template[] }[] = [];
  for (const [i, m] of t.spec.messages.entries()) {
    try {
      messages.push({ role: m.role, content: engine.parse(m.content) });
    } catch (err) {
      return problem(`spec.messages[${i}].content`, `template does not parse: ${errorText(err)}`);
    }
  }
  let validate: ValidateFunction | undefined;
  if (t.spec.variables !== undefined) {
    const type = t.spec.variables['type'];
    if (type !== undefined && type !== 'object') return problem('spec.variables.type', 'must be object (the input is a JSON object)');
    try {
      validate = ajv.compile(t.spec.variables);
    } catch (err) {
      return problem('spec.variables', `not a valid JSON Schema: ${errorText(err)}`);
    }
  }
  return { name, version: t.spec.version, model: t.spec.model, messages, validate, parameters: t.spec.parameters ?? {} };
}

/** A client mistake while rendering: the message names the field or the template error. */
export interface RenderError {
  readonly kind: 'render-error';
  /** `not_found`: no such template; `invalid_input`: the input fails the schema; `template`: Liquid failed. */
  readonly reason: 'invalid_input' | 'template' | 'too_large';
  readonly message: string;
}

const renderError = (reason: RenderError['reason'], message: string): RenderError => ({ kind: 'render-error', reason, message });

export function isRenderError(v: unknown): v is RenderError {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'render-error';
}

/** `variables.customer.name` from Ajv's `/customer/name` (and the missing property for `required`). */
function fieldOf(e: ErrorObject): string {
  const parts = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (e.keyword === 'required' && typeof e.params['missingProperty'] === 'string') parts.push(e.params['missingProperty']);
  if (e.keyword === 'additionalProperties' && typeof e.params['additionalProperty'] === 'string') parts.push(e.params['additionalProperty']);
  return ['variables', ...parts].join('.').replace(/\.(\d+)(?=\.|$)/g, '[$1]');
}

/**
 * Reads the request body of POST /v1/templates/<name>:
 * `{"variables": {...}, "stream": true|false}`. Returns the chat completions body.
 */
export function renderRequest(template: CompiledTemplate, raw: Buffer): Buffer | RenderError {
  if (raw.length > INPUT_LIMIT_BYTES) return renderError('too_large', `The request body is larger than ${INPUT_LIMIT_BYTES} bytes.`);
  let json: unknown;
  try {
    json = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
  } catch {
    return renderError('invalid_input', 'We could not parse the JSON body of your request; expected {"variables": {...}, "stream": false}.');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return renderError('invalid_input', 'The request body must be a JSON object.');
  const body = json as Record<string, unknown>;
  for (const k of Object.keys(body)) {
    if (k !== 'variables' && k !== 'stream') return renderError('invalid_input', `Unknown field '${k}': a template request has only 'variables' and 'stream'.`);
  }
  const stream = body['stream'];
  if (stream !== undefined && typeof stream !== 'boolean') return renderError('invalid_input', "'stream' must be true or false.");
  const variables = body['variables'] ?? {};
  if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) return renderError('invalid_input', "'variables' must be a JSON object.");
  if (template.validate && !template.validate(variables)) {
    const e = template.validate.errors?.[0];
    return renderError('invalid_input', e ? `Invalid template input: ${fieldOf(e)}: ${e.message ?? 'is invalid'}` : 'Invalid template input.');
  }
  const messages: { role: string; content: string }[] = [];
  let size = 0;
  for (const [i, m] of template.messages.entries()) {
    let content: string;
    try {
      content = engine.renderSync(m.content as Template[], variables as Record<string, unknown>) as string;
    } catch (err) {
      return renderError('template', `Template ${template.name} failed to render message ${i}: ${errorText(err)}`);
    }
    size += Buffer.byteLength(content);
    if (size > OUTPUT_LIMIT_BYTES) return renderError('too_large', `Template ${template.name} rendered more than ${OUTPUT_LIMIT_BYTES} bytes.`);
    messages.push({ role: m.role, content });
  }
  const chat: Record<string, unknown> = { ...template.parameters, model: template.model, messages };
  if (stream === true) chat['stream'] = true;
  return Buffer.from(JSON.stringify(chat));
}
