/**
 * What the fake Anthropic and Bedrock servers share about tool schemas and thinking signatures:
 * - a tool's input schema is compiled as JSON Schema (the real APIs refuse an invalid one with a 400);
 * - a forced tool call answers with an input that matches the tool's schema (the configured input
 *   when it does, else one built from the schema), checked against the schema before it is sent;
 * - structured outputs (strict tools, native JSON output) take a subset of JSON Schema (strictSchemaProblem);
 * - a thinking block's signature is derived from its text, so a fake can tell a block sent back
 *   unchanged from one that was altered or lost its signature (Claude refuses both).
 */
import { createHash } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const ajv = new Ajv({ strict: false, allErrors: false, validateFormats: false });

/** Compiled schemas by their JSON text (bounded: fakes see a handful of schemas). */
const compiled = new Map<string, ValidateFunction | string>();
const MAX_COMPILED = 200;

/** The compiled schema, or the reason it is not a valid JSON Schema. */
export function compileSchema(schema: unknown): ValidateFunction | string {
  const key = JSON.stringify(schema);
  const known = compiled.get(key);
  if (known !== undefined) return known;
  let out: ValidateFunction | string;
  try {
    out = ajv.compile(schema as Obj);
  } catch (err) {
    out = (err as Error).message;
  }
  // Ajv keeps every schema object it compiled: forget it (the function stays usable).
  ajv.removeSchema(schema as Obj);
  if (compiled.size >= MAX_COMPILED) compiled.clear();
  compiled.set(key, out);
  return out;
}

/** The signature a fake gives a thinking block with this text. */
export function thinkingSignature(text: string): string {
  return `sig_${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`;
}

/** A value that satisfies `schema` (the subset of JSON Schema tool schemas use). */
export function sampleFor(schema: unknown, depth = 0): unknown {
  if (!isObj(schema) || depth > 8) return {};
  if ('const' in schema) return schema['const'];
  if (Array.isArray(schema['enum']) && schema['enum'].length > 0) return schema['enum'][0];
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = schema[k];
    if (Array.isArray(list) && list.length > 0) return sampleFor(list[0], depth + 1);
  }
  const types = Array.isArray(schema['type']) ? (schema['type'] as unknown[]) : [schema['type']];
  const type = types.find((t) => t !== 'null') ?? types[0];
  switch (type) {
    case 'object': {
      const out: Obj = {};
      const props = isObj(schema['properties']) ? schema['properties'] : {};
      for (const [name, sub] of Object.entries(props)) out[name] = sampleFor(sub, depth + 1);
      return out;
    }
    case 'array': {
      const min = typeof schema['minItems'] === 'number' ? Math.max(1, schema['minItems']) : 1;
      return Array.from({ length: min }, () => sampleFor(schema['items'], depth + 1));
    }
    case 'string': {
      const min = typeof schema['minLength'] === 'number' ? schema['minLength'] : 0;
      return 'fake'.padEnd(min, 'e');
    }
    case 'integer':
      return typeof schema['minimum'] === 'number' ? Math.ceil(schema['minimum']) : 7;
    case 'number':
      return typeof schema['minimum'] === 'number' ? schema['minimum'] : 7.5;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return isObj(schema['properties']) ? sampleFor({ ...schema, type: 'object' }, depth) : {};
  }
}

/**
 * The input of a forced call of a tool with this schema: `preferred` when it matches, else a value
 * built from the schema. Throws when neither matches (a bug in the fake, not the request).
 */
export function inputFor(validate: ValidateFunction, schema: unknown, preferred: Readonly<Obj>): Obj {
  if (validate(preferred)) return { ...preferred };
  const built = sampleFor(schema);
  if (!isObj(built) || !validate(built)) throw new Error(`the fake cannot build an input for the schema ${JSON.stringify(schema)}: ${ajv.errorsText(validate.errors)}`);
  return built;
}

/** Keywords outside the structured outputs subset (numeric, string-length and array-size constraints). */
const STRICT_UNSUPPORTED: readonly string[] = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'maxItems', 'uniqueItems'];

/**
 * Why a schema cannot be used with structured outputs (Anthropic's strict tool use and
 * output_config.format, Bedrock's toolSpec.strict and outputConfig.textFormat), or undefined:
 * every object closed by `additionalProperties: false`, no numeric, string-length or array-size
 * constraint except `minItems` 0 or 1 (https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs,
 * "JSON Schema limitations"; Bedrock validates the same subset).
 */
export function strictSchemaProblem(schema: unknown, at: string, depth = 0): string | undefined {
  if (!isObj(schema) || depth > 32) return undefined;
  if (schema['type'] === 'object' || isObj(schema['properties'])) {
    if (schema['additionalProperties'] !== false) return `${at}: For 'object' type, 'additionalProperties' must be explicitly set to false`;
  }
  for (const k of STRICT_UNSUPPORTED) if (k in schema) return `${at}: property '${k}' is not supported`;
  const minItems = schema['minItems'];
  if (minItems !== undefined && minItems !== 0 && minItems !== 1) return `${at}: 'minItems' values other than 0 or 1 are not supported`;
  const subs: [unknown, string][] = [];
  if (isObj(schema['properties'])) for (const [k, v] of Object.entries(schema['properties'])) subs.push([v, `${at}.properties.${k}`]);
  if (schema['items'] !== undefined) subs.push([schema['items'], `${at}.items`]);
  for (const k of ['anyOf', 'allOf'] as const) if (Array.isArray(schema[k])) (schema[k] as unknown[]).forEach((v, i) => subs.push([v, `${at}.${k}.${i}`]));
  for (const k of ['$defs', 'definitions'] as const) if (isObj(schema[k])) for (const [n, v] of Object.entries(schema[k])) subs.push([v, `${at}.${k}.${n}`]);
  for (const [sub, where] of subs) {
    const problem = strictSchemaProblem(sub, where, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}
