/**
 * Builds the CustomResourceDefinitions (crds/*.yaml) from the OpenAPI schemas in schema.ts, so the
 * CRDs, file-mode validation and the TypeScript types share one source. Pure: `npm run gen:crds`
 * writes the output and a unit test fails when the committed files are stale.
 */
import { stringify } from 'yaml';
import { API_GROUP } from './types.js';
import { apiKeySpecSchema, apiKeyStatusSchema, mcpServerSpecSchema, mcpServerStatusSchema, modelProviderSpecSchema, promptTemplateSpecSchema, statusSchema, type Schema } from './schema.js';

export const CRD_VERSION = 'v1alpha1';

/** One column of `kubectl get`. */
export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  readonly jsonPath: string;
  readonly description?: string;
  readonly priority?: number;
}

/** What differs between our CRDs; everything else is shared. */
export interface CrdSpec {
  readonly kind: 'ModelProvider' | 'ApiKey' | 'MCPServer' | 'PromptTemplate';
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly description: string;
  readonly specSchema: Schema;
  readonly statusSchema: Schema;
  readonly printerColumns: readonly PrinterColumn[];
}

const READY_COLUMN: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'True when the gateway serves this resource; see the Ready condition reason otherwise.',
};
const REASON_COLUMN: PrinterColumn = {
  name: 'Reason',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
  priority: 1,
};
const AGE_COLUMN: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export const MODEL_PROVIDER_CRD: CrdSpec = {
  kind: 'ModelProvider',
  plural: 'modelproviders',
  singular: 'modelprovider',
  shortNames: ['mp', 'tgmp'],
  description: 'An upstream model provider (OpenAI, Azure OpenAI or an OpenAI-compatible engine) and the models it serves.',
  specSchema: modelProviderSpecSchema,
  statusSchema,
  printerColumns: [
    { name: 'Type', type: 'string', jsonPath: '.spec.type' },
    { name: 'Endpoint', type: 'string', jsonPath: '.spec.endpoint' },
    { name: 'Models', type: 'string', jsonPath: '.spec.models[*].name' },
    { name: 'Priority', type: 'integer', jsonPath: '.spec.priority', priority: 1 },
    READY_COLUMN,
    REASON_COLUMN,
    AGE_COLUMN,
  ],
};

export const API_KEY_CRD: CrdSpec = {
  kind: 'ApiKey',
  plural: 'apikeys',
  singular: 'apikey',
  shortNames: ['ak', 'tgkey'],
  description: 'A client API key: which models it may use, its limits, expiry, and where its hash or Secret is.',
  specSchema: apiKeySpecSchema,
  statusSchema: apiKeyStatusSchema,
  printerColumns: [
    { name: 'Models', type: 'string', jsonPath: '.spec.models' },
    // Paths of the limits block (spec.limits); empty until a key sets them.
    { name: 'RPM', type: 'integer', jsonPath: '.spec.limits.requestsPerMinute' },
    { name: 'TPM', type: 'integer', jsonPath: '.spec.limits.tokensPerMinute' },
    { name: 'Monthly', type: 'integer', jsonPath: '.spec.limits.tokensPerMonth', description: 'Calendar-month token budget.' },
    { name: 'Tokens', type: 'integer', jsonPath: '.status.usage.totalTokens', description: 'Month-to-date tokens.' },
    { name: 'Budget', type: 'string', jsonPath: '.spec.limits.costPerMonth', description: 'Calendar-month money budget.' },
    { name: 'Cost', type: 'string', jsonPath: '.status.usage.cost', description: 'Month-to-date cost in status.usage.currency.' },
    { name: 'Expires', type: 'string', jsonPath: '.spec.expiresAt' },
    { name: 'Disabled', type: 'boolean', jsonPath: '.spec.disabled', priority: 1 },
    READY_COLUMN,
    REASON_COLUMN,
    AGE_COLUMN,
  ],
};

export const MCP_SERVER_CRD: CrdSpec = {
  kind: 'MCPServer',
  plural: 'mcpservers',
  singular: 'mcpserver',
  shortNames: ['mcp', 'tgmcp'],
  description: 'An MCP server published through the gateway (an upstream MCP endpoint and/or plain HTTP APIs exposed as tools).',
  specSchema: mcpServerSpecSchema,
  statusSchema: mcpServerStatusSchema,
  printerColumns: [
    { name: 'URL', type: 'string', jsonPath: '.spec.url' },
    { name: 'Service', type: 'string', jsonPath: '.spec.service.name', priority: 1 },
    { name: 'Transport', type: 'string', jsonPath: '.spec.transport', priority: 1 },
    { name: 'Tools', type: 'integer', jsonPath: '.status.tools', description: 'Tools published (after filters) when last discovered.' },
    READY_COLUMN,
    {
      name: 'Reachable',
      type: 'string',
      jsonPath: '.status.conditions[?(@.type=="ToolsDiscovered")].status',
      description: 'True when the last tool discovery reached the upstream.',
    },
    REASON_COLUMN,
    AGE_COLUMN,
  ],
};

export const PROMPT_TEMPLATE_CRD: CrdSpec = {
  kind: 'PromptTemplate',
  plural: 'prompttemplates',
  singular: 'prompttemplate',
  shortNames: ['pt', 'tgpt'],
  description: 'A named, versioned prompt template (chat messages in Liquid, a JSON Schema for the input, a model and parameters) served at POST /v1/templates/<name>.',
  specSchema: promptTemplateSpecSchema,
  statusSchema,
  printerColumns: [
    { name: 'Model', type: 'string', jsonPath: '.spec.model' },
    { name: 'Version', type: 'string', jsonPath: '.spec.version' },
    { name: 'Messages', type: 'string', jsonPath: '.spec.messages[*].role', priority: 1 },
    READY_COLUMN,
    REASON_COLUMN,
    AGE_COLUMN,
  ],
};

export const CRD_SPECS: readonly CrdSpec[] = [MODEL_PROVIDER_CRD, API_KEY_CRD, MCP_SERVER_CRD, PROMPT_TEMPLATE_CRD];

/** A JSON-ready copy of a schema (drops undefined, keeps key order). */
function plain(schema: Schema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

/** The apiextensions.k8s.io/v1 CustomResourceDefinition object for one kind. */
export function buildCrd(spec: CrdSpec): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${spec.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'tollgate' },
    },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: spec.kind,
        listKind: `${spec.kind}List`,
        plural: spec.plural,
        singular: spec.singular,
        shortNames: [...spec.shortNames],
        categories: ['tollgate'],
      },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: spec.printerColumns.map((c) => ({ ...c })),
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: spec.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: plain(spec.specSchema),
                status: plain(spec.statusSchema),
              },
            },
          },
        },
      ],
    },
  };
}

/** File name in crds/ for a kind. */
export function crdFileName(spec: CrdSpec): string {
  return `${API_GROUP}_${spec.plural}.yaml`;
}

/** The YAML text of one CRD file, with a do-not-edit header. */
export function renderCrd(spec: CrdSpec): string {
  const header = '# Generated from src/config/schema.ts by `npm run gen:crds`. Do not edit by hand.\n';
  return header + stringify(buildCrd(spec), { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Every CRD file: name -> text. */
export function renderAllCrds(): ReadonlyMap<string, string> {
  return new Map(CRD_SPECS.map((s) => [crdFileName(s), renderCrd(s)]));
}
