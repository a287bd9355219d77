/**
 * OpenAI's strict function calling (`function.strict: true`, Structured Outputs) accepts only a
 * subset of JSON Schema, and answers 400 for a schema outside it
 * (https://platform.openai.com/docs/guides/structured-outputs#supported-schemas): the root is an
 * object (not `anyOf`); every object has `additionalProperties: false` and lists every property in
 * `required` (optional fields are expressed as a union with `null`); composition keywords `allOf`,
 * `not`, `if`/`then`/`else`, `dependentRequired`, `dependentSchemas` and `patternProperties` are not
 * supported; nesting stops at 10 levels.
 *
 * Anthropic's `strict: true` has looser rules (optional properties allowed), so an Anthropic tool's
 * `strict` is passed to OpenAI-shaped providers only when its schema is inside OpenAI's subset:
 * otherwise the whole request would be refused for a flag the client set for another API.
 */

const UNSUPPORTED: readonly string[] = ['allOf', 'not', 'if', 'then', 'else', 'dependentRequired', 'dependentSchemas', 'patternProperties'];
const MAX_DEPTH = 10;

type Obj = Readonly<Record<string, unknown>>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why `schema` cannot be a strict OpenAI function's parameters, or undefined when it can. */
export function openAIStrictProblem(schema: unknown): string | undefined {
  if (!isObj(schema) || schema['type'] !== 'object') return "the root must be a schema of type 'object'";
  return problem(schema, '#', 0);
}

function problem(schema: unknown, at: string, depth: number): string | undefined {
  if (!isObj(schema)) return undefined; // `true`/`false` schemas and $ref targets are checked where defined
  if (depth > MAX_DEPTH) return `${at}: nested deeper than ${MAX_DEPTH} levels`;
  for (const k of UNSUPPORTED) if (k in schema) return `${at}: '${k}' is not supported`;
  const properties = schema['properties'];
  if (schema['type'] === 'object' || (Array.isArray(schema['type']) && schema['type'].includes('object')) || isObj(properties)) {
    if (schema['additionalProperties'] !== false) return `${at}: 'additionalProperties' must be false`;
    const required = Array.isArray(schema['required']) ? schema['required'] : [];
    if (isObj(properties)) {
      for (const name of Object.keys(properties)) if (!required.includes(name)) return `${at}: property '${name}' is not in 'required'`;
    }
  }
  const subs: [unknown, string][] = [];
  if (isObj(properties)) for (const [k, v] of Object.entries(properties)) subs.push([v, `${at}/properties/${k}`]);
  if (schema['items'] !== undefined) subs.push([schema['items'], `${at}/items`]);
  if (Array.isArray(schema['anyOf'])) schema['anyOf'].forEach((v, i) => subs.push([v, `${at}/anyOf/${i}`]));
  for (const k of ['$defs', 'definitions'] as const) {
    const defs = schema[k];
    if (isObj(defs)) for (const [n, v] of Object.entries(defs)) subs.push([v, `${at}/${k}/${n}`]);
  }
  for (const [sub, where] of subs) {
    const found = problem(sub, where, depth + 1);
    if (found) return found;
  }
  return undefined;
}
