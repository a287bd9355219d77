/**
 * Helpers for unit tests: build a Snapshot from YAML text exactly the way the file source does
 * (parse -> validate -> build), so tests exercise the real path and not a hand-made object.
 */
import { parseAllDocuments } from 'yaml';
import { parseResources, type ConfigIssue } from './parse.js';
import { buildSnapshot, type ResourceProblem, type Snapshot } from './snapshot.js';

export interface FixtureResult {
  readonly snapshot: Snapshot;
  readonly issues: readonly ConfigIssue[];
  readonly problems: readonly ResourceProblem[];
  /** YAML syntax errors; the documents that have them read as empty, as the file source would refuse them. */
  readonly yamlErrors: readonly string[];
}

/** Parses YAML documents (as if from `source`) and builds snapshot version 1. */
export function snapshotFromYaml(text: string, source = 'test.yaml'): FixtureResult {
  const yamlDocs = parseAllDocuments(text);
  const yamlErrors = yamlDocs.flatMap((d) => d.errors.map((e) => e.message));
  const documents = yamlDocs.map((d) => ({ source, doc: d.toJS() as unknown }));
  const parsed = parseResources(documents);
  const { snapshot, problems } = buildSnapshot(parsed.resources, 1);
  return { snapshot, issues: parsed.issues, problems, yamlErrors };
}

/** Like snapshotFromYaml but fails when the config has any issue or problem. */
export function validSnapshot(text: string): Snapshot {
  const r = snapshotFromYaml(text);
  if (r.yamlErrors.length > 0 || r.issues.length > 0 || r.problems.length > 0) {
    throw new Error(`fixture config is invalid: ${JSON.stringify({ yamlErrors: r.yamlErrors, issues: r.issues, problems: r.problems })}`);
  }
  return r.snapshot;
}

/** A ModelProvider document. */
export function providerYaml(name: string, spec: string, namespace = 'default'): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec:\n${indent(spec)}\n---\n`;
}

/** An ApiKey document. */
export function apiKeyYaml(name: string, spec: string, extraMeta = ''): string {
  return `apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: { name: ${name}${extraMeta ? ', ' + extraMeta : ''} }\nspec:\n${indent(spec)}\n---\n`;
}

/** A Secret document with stringData. */
export function secretYaml(name: string, data: Readonly<Record<string, string>>): string {
  const entries = Object.entries(data).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join('\n');
  return `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name} }\nstringData:\n${entries}\n---\n`;
}

function indent(text: string): string {
  return text
    .trim()
    .split('\n')
    .map((l) => '  ' + l)
    .join('\n');
}
