/**
 * Turns Kubernetes-style documents (as parsed from YAML or received from the API server) into a
 * ResourceSet, validating each against its schema. Every problem names its source, resource and
 * field so a user can find it.
 */
import { apiKeySpecSchema, gatewayConfigSpecSchema, modelProviderSpecSchema, type Schema } from './schema.js';
import {
  API_VERSION,
  type ApiKey,
  type GatewayConfigSpec,
  type ModelProvider,
  type ObjectMeta,
  type ResourceSet,
  type SecretData,
} from './types.js';
import { validate } from './validate.js';

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
  GatewayConfig: gatewayConfigSpecSchema,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and validates documents. Invalid resources are left out of the set and reported. */
export function parseResources(documents: readonly SourcedDocument[]): ParseResult {
  const providers: ModelProvider[] = [];
  const apiKeys: ApiKey[] = [];
  const secrets: SecretData[] = [];
  let gatewayConfig: GatewayConfigSpec | undefined;
  const issues: ConfigIssue[] = [];
  const origins = new Map<string, string>();

  documents.forEach(({ source, doc }, index) => {
    if (doc === null || doc === undefined) return; // empty YAML document
    const report = (resource: string, field: string, message: string): void => {
      issues.push({ source, resource, field, message });
    };
    if (!isRecord(doc)) return report(`document ${index + 1}`, '', 'must be a mapping with apiVersion, kind, metadata');
    const kind = typeof doc['kind'] === 'string' ? doc['kind'] : '';
    const meta = readMeta(doc['metadata']);
    const label = meta ? resourceLabel(kind, meta.namespace, meta.name) : `${kind || 'document'} #${index + 1}`;
    if (!meta) return report(label, 'metadata.name', 'is required');
    // Two files defining the same resource would make the result depend on file order: refuse.
    const first = origins.get(label);
    if (first !== undefined) return report(label, 'metadata.name', `duplicate resource; already defined in ${first}`);
    if (kind === 'GatewayConfig' && gatewayConfig !== undefined) {
      return report(label, 'kind', 'only one GatewayConfig is allowed');
    }

    if (kind === 'Secret') {
      const data = readSecretData(doc);
      if (typeof data === 'string') return report(label, 'data', data);
      secrets.push({ namespace: meta.namespace ?? 'default', name: meta.name, data });
      origins.set(label, source);
      return;
    }
    const schema = SPEC_SCHEMAS[kind];
    if (!schema) return report(label, 'kind', `unknown kind "${kind}" (expected ModelProvider, ApiKey, Secret or GatewayConfig)`);
    if (doc['apiVersion'] !== API_VERSION) return report(label, 'apiVersion', `must be ${API_VERSION}`);
    const specIssues = validate(doc['spec'], schema, 'spec');
    if (specIssues.length > 0) {
      for (const i of specIssues) report(label, i.field, i.message);
      return;
    }
    const spec = doc['spec'];
    origins.set(label, source);
    if (kind === 'ModelProvider') providers.push({ apiVersion: API_VERSION, kind, metadata: meta, spec } as ModelProvider);
    else if (kind === 'ApiKey') apiKeys.push({ apiVersion: API_VERSION, kind, metadata: meta, spec } as ApiKey);
    else gatewayConfig = spec as GatewayConfigSpec;
  });

  const resources: ResourceSet = gatewayConfig
    ? { providers, apiKeys, secrets, gatewayConfig }
    : { providers, apiKeys, secrets };
  return { resources, issues, origins };
}

function readMeta(raw: unknown): ObjectMeta | undefined {
  if (!isRecord(raw) || typeof raw['name'] !== 'string' || raw['name'] === '') return undefined;
  const meta: { -readonly [K in keyof ObjectMeta]: ObjectMeta[K] } = { name: raw['name'] };
  if (typeof raw['namespace'] === 'string') meta.namespace = raw['namespace'];
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
