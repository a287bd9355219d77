import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { formatIssue, parseResources, type SourcedDocument } from './parse.js';

function docs(source: string, text: string): SourcedDocument[] {
  return parseAllDocuments(text).map((d) => ({ source, doc: d.toJS() as unknown }));
}

const PROVIDER = `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: p1, namespace: ml }
spec: { type: openai-compatible, endpoint: "http://vllm:8000/v1", models: [{ name: llama }] }
`;

describe('parseResources', () => {
  it('accepts valid resources and decodes Secret data and stringData', () => {
    const r = parseResources(
      docs(
        'a.yaml',
        PROVIDER +
          `---
apiVersion: v1
kind: Secret
metadata: { name: s }
data: { a: ${Buffer.from('from-base64').toString('base64')} }
stringData: { b: plain }
`,
      ),
    );
    assert.deepEqual(r.issues, []);
    assert.equal(r.resources.providers.length, 1);
    assert.equal(r.resources.providers[0]!.metadata.namespace, 'ml');
    assert.deepEqual([...r.resources.secrets[0]!.data], [['a', 'from-base64'], ['b', 'plain']]);
    assert.equal(r.origins.get('ModelProvider ml/p1'), 'a.yaml');
  });

  it('names file, resource and field for every schema problem and leaves the resource out', () => {
    const r = parseResources(
      docs(
        'config/providers.yaml',
        `apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: { name: broken }
spec: { type: openai, endpoint: "https://api.openai.com/v1", models: [{ name: "gpt 4o" }], weigth: 2 }
`,
      ),
    );
    assert.equal(r.resources.providers.length, 0);
    assert.deepEqual(r.issues.map(formatIssue), [
      'config/providers.yaml: ModelProvider default/broken: spec.models[0].name: must match ^[A-Za-z0-9._:/@+-]+$',
      'config/providers.yaml: ModelProvider default/broken: spec.weigth: unknown field',
    ]);
  });

  it('reports unknown kinds, wrong apiVersion, missing names and non-mapping documents', () => {
    const r = parseResources([
      ...docs('a.yaml', 'apiVersion: tollgate.dev/v1alpha1\nkind: Route\nmetadata: { name: r }\nspec: {}\n'),
      ...docs('b.yaml', 'apiVersion: tollgate.dev/v1beta9\nkind: ApiKey\nmetadata: { name: k }\nspec: {}\n'),
      ...docs('c.yaml', 'apiVersion: tollgate.dev/v1alpha1\nkind: ApiKey\nmetadata: {}\nspec: {}\n'),
      ...docs('d.yaml', '- just\n- a list\n'),
    ]);
    assert.deepEqual(
      r.issues.map((i) => [i.source, i.resource, i.field]),
      [
        ['a.yaml', 'Route default/r', 'kind'],
        ['b.yaml', 'ApiKey default/k', 'apiVersion'],
        ['c.yaml', 'ApiKey #3', 'metadata.name'],
        ['d.yaml', 'document 4', ''],
      ],
    );
  });

  it('reports a Secret with invalid base64', () => {
    const r = parseResources(docs('s.yaml', 'apiVersion: v1\nkind: Secret\nmetadata: { name: s }\ndata: { k: "not base64!" }\n'));
    assert.deepEqual(r.issues.map(formatIssue), ['s.yaml: Secret default/s: data: key k: must be base64']);
    assert.equal(r.resources.secrets.length, 0);
  });

  it('refuses the same resource defined twice (result would depend on file order)', () => {
    const r = parseResources([...docs('a.yaml', PROVIDER), ...docs('b.yaml', PROVIDER)]);
    assert.equal(r.resources.providers.length, 1);
    assert.deepEqual(r.issues.map(formatIssue), [
      'b.yaml: ModelProvider ml/p1: metadata.name: duplicate resource; already defined in a.yaml',
    ]);
  });

  it('allows only one GatewayConfig', () => {
    const gc = (name: string): string => `apiVersion: tollgate.dev/v1alpha1\nkind: GatewayConfig\nmetadata: { name: ${name} }\nspec: { modelMappings: { a: b } }\n---\n`;
    const r = parseResources(docs('g.yaml', gc('one') + gc('two')));
    assert.deepEqual(r.resources.gatewayConfig, { modelMappings: { a: 'b' } });
    assert.deepEqual(r.issues.map((i) => `${i.resource} ${i.field}`), ['GatewayConfig default/two kind']);
  });

  it('ignores empty documents', () => {
    const r = parseResources(docs('e.yaml', '---\n---\n' + PROVIDER));
    assert.deepEqual(r.issues, []);
    assert.equal(r.resources.providers.length, 1);
  });
});
