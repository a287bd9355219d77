/**
 * Turns Kubernetes-style documents (as parsed from YAML or received from the API server) into a
 * ResourceSet, validating each against its schema. Every problem names its source, resource and
 * field so a user can find it.
 */
import { apiKeySpecSchema, gatewayConfigSpecSchema, mcpServerSpecSchema, modelProviderSpecSchema, promptTemplateSpecSchema, type Schema } from './schema.js';
import {
  API_VERSION,
  type ApiKey,
  type GatewayConfigSpec,
  type MCPServer,
  type ModelProvider,
  type ObjectMeta,
  type PromptTemplate,
  type ResourceSet,
  type SecretData,
} from './types.js';
import { validate } from './validate.js';
import { guardrailIssues } from '../guardrails/compile.js';
import { tenantIssues } from '../tenancy/hosts.js';

/** A document and where it came from (file path, or `kubernetes`). */
export interface SourcedDocument {
  readonly source: string;
  readonly doc: unknown;
}

/** A problem in one resource, with enough context to find it. */
export interface ConfigIssue {
  readonly source: string;
  /** `Kind namespace/name`, or `document N` when the document has no usable identity. */
  readonly resource: string;
  readonly field: string;
  readonly message: string;
}

export interface ParseResult {
  readonly resources: ResourceSet;
  readonly issues: readonly ConfigIssue[];
  /** Where each accepted resource came from, keyed by `Kind namespace/name` (see resourceLabel). */
  readonly origins: ReadonlyMap<string, string>;
}

/** `Kind namespace/name`: how issues name a resource. */
export function resourceLabel(kind: string, namespace: string | undefined, name: string): string {
  return `${kind} ${namespace ?? 'default'}/${name}`;
}

const SPEC_SCHEMAS: Readonly<Record<string, Schema>> = {
  ModelProvider: modelProviderSpecSchema,
  ApiKey: apiKeySpecSchema,
  MCPServer: mcpServerSpecSchema,
  PromptTemplate: promptTemplateSpecSchema,
  GatewayConfig: gatewayConfigSpecSchema,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One accepted resource of a document. */
export type ParsedResource =
  | { readonly kind: 'ModelProvider'; readonly value: ModelProvider }
  | { readonly kind: 'ApiKey'; readonly value: ApiKey }
  | { readonly kind: 'MCPServer'; readonly value: MCPServer }
  | { readonly kind: 'PromptTemplate'; readonly value: PromptTemplate }
  | { readonly kind: 'Secret'; readonly value: SecretData }
  | { readonly kind: 'GatewayConfig'; readonly value: GatewayConfigSpec };

/** One document, parsed and validated on its own (no cross-document checks). */
export interface ParsedDocument {
  /** `Kind namespace/name`, or a placeholder when the document has no usable identity. */
  readonly label: string;
  /** Set when the document is valid. */
  readonly resource?: ParsedResource;
  readonly issues: readonly ConfigIssue[];
  /** True when the document has a usable identity (kind and metadata.name). */
  readonly identified: boolean;
}

/**
 * Parses and validates one document. `index` (1-based position) names documents without identity.
 * Used per changed document by the incremental sources.
 */
export function parseDocument(source: string, doc: unknown, index: number): ParsedDocument | undefined {
  if (doc === null || doc === undefined) return undefined; // empty YAML document
  const issues: ConfigIssue[] = [];
  const fail = (label: string, field: string, message: string, identified: boolean): ParsedDocument => {
    issues.push({ source, resource: label, field, message });
    return { label, issues, identified };
  };
  if (!isRecord(doc)) return fail(`document ${index}`, '', 'must be a mapping with apiVersion, kind, metadata', false);
  const kind = typeof doc['kind'] === 'string' ? doc['kind'] : '';
  const meta = readMeta(doc['metadata']);
  const label = meta ? resourceLabel(kind, meta.namespace, meta.name) : `${kind || 'document'} #${index}`;
  if (!meta) return fail(label, 'metadata.name', 'is required', false);
  if (kind === 'Secret') {
    const data = readSecretData(doc);
    if (typeof data === 'string') return fail(label, 'data', data, true);
    return { label, issues, identified: true, resource: { kind, value: { namespace: meta.namespace ?? 'default', name: meta.name, data } } };
  }
  const schema = SPEC_SCHEMAS[kind];
  if (!schema) return fail(label, 'kind', `unknown kind "${kind}" (expected ModelProvider, ApiKey, MCPServer, PromptTemplate, Secret or GatewayConfig)`, true);
  if (doc['apiVersion'] !== API_VERSION) return fail(label, 'apiVersion', `must be ${API_VERSION}`, true);
  const specIssues = validate(doc['spec'], schema, 'spec');
  if (specIssues.length > 0) {
    for (const i of specIssues) issues.push({ source, resource: label, field: i.field, message: i.message });
    return { label, issues, identified: true };
  }
  const spec = doc['spec'];
  if (kind === 'ModelProvider') return { label, issues, identified: true, resource: { kind, value: { apiVersion: API_VERSION, kind, metadata: meta, spec } as ModelProvider } };
  if (kind === 'ApiKey') return { label, issues, identified: true, resource: { kind, value: { apiVersion: API_VERSION, kind, metadata: meta, spec: compactKeySpec(spec) } as ApiKey } };
  if (kind === 'MCPServer') return { label, issues, identified: true, resource: { kind, value: { apiVersion: API_VERSION, kind, metadata: meta, spec } as MCPServer } };
  if (kind === 'PromptTemplate') return { label, issues, identified: true, resource: { kind, value: { apiVersion: API_VERSION, kind, metadata: meta, spec } as PromptTemplate } };
  // Guardrail regexes must compile: a guardrail that cannot run would silently not protect.
  const guardrailProblems = [...guardrailIssues((spec as GatewayConfigSpec).guardrails), ...tenantIssues((spec as GatewayConfigSpec).tenants)];
  if (guardrailProblems.length > 0) {
    for (const i of guardrailProblems) issues.push({ source, resource: label, field: i.field, message: i.message });
    return { label, issues, identified: true };
  }
  return { label, issues, identified: true, resource: { kind: 'GatewayConfig', value: spec as GatewayConfigSpec } };
}

/** Parses and validates documents. Invalid resources are left out of the set and reported. */
export function parseResources(documents: readonly SourcedDocument[]): ParseResult {
  const providers: ModelProvider[] = [];
  const apiKeys: ApiKey[] = [];
  const secrets: SecretData[] = [];
  const mcpServers: MCPServer[] = [];
  const promptTemplates: PromptTemplate[] = [];
  let gatewayConfig: GatewayConfigSpec | undefined;
  const issues: ConfigIssue[] = [];
  const origins = new Map<string, string>();

  documents.forEach(({ source, doc }, index) => {
    const parsed = parseDocument(source, doc, index + 1);
    if (!parsed) return;
    const { label } = parsed;
    if (parsed.identified) {
      // Two files defining the same resource would make the result depend on file order: refuse.
      const first = origins.get(label);
      if (first !== undefined) {
        issues.push({ source, resource: label, field: 'metadata.name', message: `duplicate resource; already defined in ${first}` });
        return;
      }
      if (label.startsWith('GatewayConfig ') && gatewayConfig !== undefined) {
        issues.push({ source, resource: label, field: 'kind', message: 'only one GatewayConfig is allowed' });
        return;
      }
    }
    issues.push(...parsed.issues);
    const r = parsed.resource;
    if (!r) return;
    origins.set(label, source);
    if (r.kind === 'ModelProvider') providers.push(r.value);
    else if (r.kind === 'ApiKey') apiKeys.push(r.value);
    else if (r.kind === 'Secret') secrets.push(r.value);
    else if (r.kind === 'MCPServer') mcpServers.push(r.value);
    else if (r.kind === 'PromptTemplate') promptTemplates.push(r.value);
    else gatewayConfig = r.value;
  });

  const base = { providers, apiKeys, secrets, ...(mcpServers.length > 0 ? { mcpServers } : {}), ...(promptTemplates.length > 0 ? { promptTemplates } : {}) };
  const resources: ResourceSet = gatewayConfig ? { ...base, gatewayConfig } : base;
  return { resources, issues, origins };
}

/** Equal sub-objects of many keys (`models`, `limits`, `modelMappings`) shared: 100k keys, a few shapes. */
const shared = new Map<string, unknown>();
const SHARED_LIMIT = 20_000;

function intern<T>(value: T): T {
  if (value === undefined) return value;
  const id = JSON.stringify(value);
  const hit = shared.get(id);
  if (hit !== undefined) return hit as T;
  if (shared.size >= SHARED_LIMIT) shared.clear();
  shared.set(id, value);
  return value;
}

/** A validated ApiKey spec with its common parts shared (the spec is plain data, never mutated). */
export function compactKeySpec(spec: unknown): unknown {
  if (!isRecord(spec)) return spec;
  let out: Record<string, unknown> | undefined;
  for (const field of ['models', 'limits', 'modelMappings'] as const) {
    const v = spec[field];
    if (v === undefined) continue;
    const shared = intern(v);
    if (shared === v) continue;
    out ??= { ...spec };
    out[field] = shared;
  }
  // Already compact (an informer cache entry compacted on arrival): the same object.
  return out ?? spec;
}

/** Types of the metadata fields Tollgate keeps; a metadata object with only these is used as is. */
const META_TYPES: Readonly<Record<string, string>> = {
  name: 'string',
  namespace: 'string',
  generation: 'number',
  resourceVersion: 'string',
  uid: 'string',
  creationTimestamp: 'string',
  labels: 'object',
};

function readMeta(raw: unknown): ObjectMeta | undefined {
  if (!isRecord(raw) || typeof raw['name'] !== 'string' || raw['name'] === '') return undefined;
  // Already in shape (a freshly parsed document, an informer cache entry): keep the object itself
  // rather than a copy per key. The namespace string is shared either way.
  if (Object.keys(raw).every((k) => META_TYPES[k] !== undefined && typeof raw[k] === META_TYPES[k] && raw[k] !== null)) {
    if (typeof raw['namespace'] === 'string') raw['namespace'] = intern(raw['namespace']);
    return raw as unknown as ObjectMeta;
  }
  const meta: { -readonly [K in keyof ObjectMeta]: ObjectMeta[K] } = { name: raw['name'] };
  if (typeof raw['namespace'] === 'string') meta.namespace = intern(raw['namespace']);
  if (typeof raw['generation'] === 'number') meta.generation = raw['generation'];
  if (typeof raw['resourceVersion'] === 'string') meta.resourceVersion = raw['resourceVersion'];
  if (typeof raw['uid'] === 'string') meta.uid = raw['uid'];
  if (typeof raw['creationTimestamp'] === 'string') meta.creationTimestamp = raw['creationTimestamp'];
  return meta;
}

/** Decodes `data` (base64) and `stringData`, as the API server would; a string is an error. */
function readSecretData(doc: Record<string, unknown>): Map<string, string> | string {
  const out = new Map<string, string>();
  const data = doc['data'];
  if (data !== undefined) {
    if (!isRecord(data)) return 'must be a mapping of base64 strings';
    for (const [k, v] of Object.entries(data)) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return `key ${k}: must be base64`;
      out.set(k, Buffer.from(v, 'base64').toString('utf8'));
    }
  }
  const stringData = doc['stringData'];
  if (stringData !== undefined) {
    if (!isRecord(stringData)) return 'stringData must be a mapping of strings';
    for (const [k, v] of Object.entries(stringData)) {
      if (typeof v !== 'string') return `stringData key ${k}: must be a string`;
      out.set(k, v);
    }
  }
  return out;
}

/** One line per issue: `file: Kind ns/name: field: message`. */
export function formatIssue(i: ConfigIssue): string {
  return `${i.source}: ${i.resource}: ${i.field ? i.field + ': ' : ''}${i.message}`;
}
