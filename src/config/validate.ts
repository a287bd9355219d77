/**
 * Validates plain objects against the schemas of schema.ts, the way the API server would, plus the
 * CEL rules (implemented here by hand with the same messages). Unknown fields are errors: the API
 * server would prune them silently, and config that silently does not apply is what we refuse.
 */
import { isCidrOrAddress } from '../guardrails/cidr.js';
import { CIDR_RULE, MCP_TOTAL_TIMEOUT_RULE, type Schema } from './schema.js';

/** One problem, with a JSON-path-like field (`spec.models[0].name`). */
export interface FieldIssue {
  readonly field: string;
  readonly message: string;
}

type CelCheck = (value: unknown) => boolean;

const modelPattern = /^[A-Za-z0-9._:/@+*-]+$/;

/** Hand implementations of the CEL rules in schema.ts, keyed by rule text. */
export const CEL_RULES: ReadonlyMap<string, CelCheck> = new Map<string, CelCheck>([
  [
    "self.all(k, k.matches('^[A-Za-z0-9._:/@+*-]+$'))",
    (v) => isRecord(v) && Object.keys(v).every((k) => modelPattern.test(k)),
  ],
  [
    '(has(self.accountOnly) && self.accountOnly) ? !(has(self.keyHash) || has(self.secretRef)) : has(self.keyHash) != has(self.secretRef)',
    (v) => {
      if (!isRecord(v)) return false;
      const hasHash = v['keyHash'] !== undefined;
      const hasSecret = v['secretRef'] !== undefined;
      return v['accountOnly'] === true ? !hasHash && !hasSecret : hasHash !== hasSecret;
    },
  ],
  [CIDR_RULE, (v) => typeof v === 'string' && isCidrOrAddress(v)],
  ["!self.contains('__')", (v) => typeof v === 'string' && !v.includes('__')],
  ['!(has(self.url) && has(self.service))', (v) => isRecord(v) && !(v['url'] !== undefined && v['service'] !== undefined)],
  [
    'has(self.url) || has(self.service) || (has(self.httpTools) && size(self.httpTools) > 0)',
    (v) => isRecord(v) && (v['url'] !== undefined || v['service'] !== undefined || (Array.isArray(v['httpTools']) && v['httpTools'].length > 0)),
  ],
  [
    MCP_TOTAL_TIMEOUT_RULE,
    (v) => {
      if (!isRecord(v)) return false;
      const total = v['maxTotalTimeoutSeconds'];
      const idle = v['timeoutSeconds'];
      return typeof total !== 'number' || typeof idle !== 'number' || total >= idle;
    },
  ],
  [
    "self.exists(m, m.role == 'user')",
    (v) => Array.isArray(v) && v.some((m) => isRecord(m) && m['role'] === 'user'),
  ],
  [
    '!(has(self.max_tokens) && has(self.max_completion_tokens))',
    (v) => isRecord(v) && !(v['max_tokens'] !== undefined && v['max_completion_tokens'] !== undefined),
  ],
  [
    "isURL(self) && url(self).getScheme() in ['http', 'https']",
    (v) => typeof v === 'string' && isHttpUrl(v),
  ],
]);

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

const compiledPatterns = new Map<string, RegExp>();
function patternOf(source: string): RegExp {
  let re = compiledPatterns.get(source);
  if (!re) {
    re = new RegExp(source);
    compiledPatterns.set(source, re);
  }
  return re;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Validates `value` against `schema`; returns every issue found (empty when valid). */
export function validate(value: unknown, schema: Schema, field: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  walk(value, schema, field, issues);
  return issues;
}

function walk(value: unknown, schema: Schema, field: string, out: FieldIssue[]): void {
  const add = (message: string): void => {
    out.push({ field, message });
  };
  switch (schema.type) {
    case 'object': {
      if (!isRecord(value)) return add('must be an object');
      for (const name of schema.required ?? []) {
        if (value[name] === undefined) out.push({ field: join(field, name), message: 'is required' });
      }
      const keys = Object.keys(value);
      if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) {
        add(`must have at most ${schema.maxProperties} entries`);
      }
      for (const key of keys) {
        const child = schema.properties?.[key] ?? schema.additionalProperties;
        if (child) walk(value[key], child, join(field, key), out);
        else if (!schema['x-kubernetes-preserve-unknown-fields']) {
          out.push({ field: join(field, key), message: 'unknown field' });
        }
      }
      break;
    }
    case 'array': {
      if (!Array.isArray(value)) return add('must be a list');
      if (schema.minItems !== undefined && value.length < schema.minItems) add(`must have at least ${schema.minItems} item(s)`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) add(`must have at most ${schema.maxItems} items`);
      if (schema.items) value.forEach((item, i) => walk(item, schema.items as Schema, `${field}[${i}]`, out));
      const mapKeys = schema['x-kubernetes-list-map-keys'];
      if (mapKeys) {
        const seen = new Set<string>();
        value.forEach((item, i) => {
          if (!isRecord(item)) return;
          const id = mapKeys.map((k) => String(item[k])).join('/');
          if (seen.has(id)) out.push({ field: `${field}[${i}]`, message: `duplicate entry "${id}"` });
          seen.add(id);
        });
      }
      break;
    }
    case 'string': {
      if (typeof value !== 'string') return add('must be a string');
      if (schema.minLength !== undefined && value.length < schema.minLength) add(`must be at least ${schema.minLength} characters`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) add(`must be at most ${schema.maxLength} characters`);
      if (schema.enum && !schema.enum.includes(value)) add(`must be one of: ${schema.enum.join(', ')}`);
      if (schema.pattern && !patternOf(schema.pattern).test(value)) add(`must match ${schema.pattern}`);
      if (schema.format === 'date-time' && (!RFC3339.test(value) || Number.isNaN(Date.parse(value)))) {
        add('must be an RFC 3339 date-time, for example 2026-12-31T23:59:59Z');
      }
      break;
    }
    case 'integer': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return add('must be an integer');
      if (schema.minimum !== undefined && value < schema.minimum) add(`must be >= ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) add(`must be <= ${schema.maximum}`);
      break;
    }
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return add('must be a number');
      if (schema.minimum !== undefined && value < schema.minimum) add(`must be >= ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) add(`must be <= ${schema.maximum}`);
      break;
    }
    case 'boolean':
      if (typeof value !== 'boolean') return add('must be true or false');
      break;
    case undefined:
      break;
  }
  for (const { rule, message } of schema['x-kubernetes-validations'] ?? []) {
    const check = CEL_RULES.get(rule);
    if (!check) throw new Error(`no implementation for CEL rule ${rule}`);
    if (!check(value)) add(message);
  }
}

function join(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}
