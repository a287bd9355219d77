import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { createLogger } from '../observability/logger.js';
import { FileConfigSource, splitDocuments } from './file-source.js';
import { hashKey } from './snapshot.js';
import { ConfigStore } from './store.js';
import { apiKeyYaml, providerYaml, secretYaml, snapshotFromYaml } from './test-fixtures.js';

const PROVIDERS = providerYaml('p', 'type: openai\nendpoint: https://x/v1\ncredentialSecretRef: { name: creds, key: k }\nmodels: [{ name: m1 }]') + secretYaml('creds', { k: 'v' });
const KEYS = apiKeyYaml('team', `keyHash: "${hashKey('sk-1')}"`);

async function setup(): Promise<{ dir: string; store: ConfigStore; source: FileConfigSource; lines: Record<string, unknown>[]; write(name: string, text: string): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tg-fs-'));
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('test', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const store = new ConfigStore();
  const source = new FileConfigSource({ directory: dir, store, logger, pollMs: 0, debounceMs: 20 });
  const write = async (name: string, text: string): Promise<void> => {
    await writeFile(join(dir, `.${name}.tmp`), text);
    await rename(join(dir, `.${name}.tmp`), join(dir, name));
  };
  return { dir, store, source, lines, write };
}

describe('file config source', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('applies a valid directory, and a changed file builds a new snapshot', async () => {
    const t = await setup();
    dirs.push(t.dir);
    await t.write('providers.yaml', PROVIDERS);
    await t.write('keys.yaml', KEYS);
    assert.deepEqual(await t.source.reload(), { kind: 'applied', version: 1 });
    const first = t.store.current()!;
    assert.deepEqual(first.servedModels, ['m1']);
    assert.deepEqual(await t.source.reload(), { kind: 'unchanged' });
    await t.write('providers.yaml', PROVIDERS.replace('{ name: m1 }', '{ name: m1 }, { name: m2 }'));
    assert.deepEqual(await t.source.reload(), { kind: 'applied', version: 2 });
    assert.deepEqual(t.store.current()!.servedModels, ['m1', 'm2']);
    assert.deepEqual(first.servedModels, ['m1'], 'the old snapshot is untouched (requests in flight keep it)');
  });

  it('keeps the last good snapshot when a change is invalid, and logs file, resource and field', async () => {
    const t = await setup();
    dirs.push(t.dir);
    await t.write('providers.yaml', PROVIDERS);
    await t.write('keys.yaml', KEYS);
    await t.source.reload();
    const good = t.store.current()!;
    await t.write('providers.yaml', PROVIDERS.replace('type: openai\n', 'type: openai\n  priority: -1\n'));
    const outcome = await t.source.reload();
    assert.equal(outcome.kind, 'rejected');
    assert.equal(t.store.current(), good);
    const line = t.lines.find((l) => l['msg'] === 'config rejected; keeping the last good config');
    assert.ok(line, 'rejection is logged');
    assert.deepEqual(line['issues'], [`${join(t.dir, 'providers.yaml')}: ModelProvider default/p: spec.priority: must be >= 0`]);
    assert.equal(line['keptVersion'], 1);
    // Fixing the file applies again.
    await t.write('providers.yaml', PROVIDERS);
    assert.equal((await t.source.reload()).kind, 'applied');
  });

  it('rejects a change that references a missing Secret, naming the file of the resource', async () => {
    const t = await setup();
    dirs.push(t.dir);
    await t.write('providers.yaml', PROVIDERS);
    await t.write('keys.yaml', KEYS);
    await t.source.reload();
    await t.write('keys.yaml', KEYS + apiKeyYaml('other', 'secretRef: { name: missing, key: k }'));
    const outcome = await t.source.reload();
    assert.deepEqual(outcome, {
      kind: 'rejected',
      issues: [`${join(t.dir, 'keys.yaml')}: ApiKey default/other: spec.secretRef: SecretNotFound: Secret missing (key k) not found or empty`],
    });
    assert.equal(t.store.current()!.version, 1);
  });

  it('rejects broken YAML with the file name', async () => {
    const t = await setup();
    dirs.push(t.dir);
    await t.write('providers.yaml', PROVIDERS);
    await t.source.reload();
    await t.write('secrets.yaml', 'kind: Secret\nmetadata: { name: s }\nstringData: { key: sk-do-not-log\n');
    const outcome = await t.source.reload();
    assert.equal(outcome.kind, 'rejected');
    const issues = outcome.kind === 'rejected' ? outcome.issues : [];
    assert.ok(issues[0]?.startsWith(`${join(t.dir, 'secrets.yaml')}: YAML: line 4, column 1: `), issues[0]);
    assert.ok(!JSON.stringify(t.lines).includes('sk-do-not-log'), 'the offending line (maybe a credential) is not logged');
  });

  it('refuses to start on an invalid first config (nothing to fall back to)', async () => {
    const t = await setup();
    dirs.push(t.dir);
    await t.write('keys.yaml', apiKeyYaml('k', 'disabled: true'));
    await assert.rejects(t.source.start(), /exactly one of keyHash and secretRef/);
    assert.equal(t.store.ready, false);
  });

  it('notices a changed file by itself once started', async () => {
    const t = await setup();
    dirs.push(t.dir);
    await t.write('providers.yaml', PROVIDERS);
    await t.source.start();
    try {
      await t.write('keys.yaml', KEYS);
      const deadline = Date.now() + 5000;
      while (t.store.current()!.keysByHash.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(t.store.current()!.keysByHash.size, 1);
    } finally {
      t.source.stop();
    }
  });

  it('applies a one-document edit of a large file by recomputing only that key, and a removal', async () => {
    const t = await setup();
    dirs.push(t.dir);
    const keys = (disabled: number): string =>
      Array.from({ length: 300 }, (_, i) => apiKeyYaml(`k${i}`, `keyHash: "${hashKey(`sk-${i}`)}"${i === disabled ? '\ndisabled: true' : ''}`)).join('');
    await t.write('providers.yaml', PROVIDERS);
    await t.write('keys.yaml', keys(-1));
    await t.source.reload();
    const first = t.store.current()!;
    assert.equal(first.keysByHash.size, 300);
    await t.write('keys.yaml', keys(7));
    assert.deepEqual(await t.source.reload(), { kind: 'applied', version: 2 });
    const applied = t.lines.filter((l) => l['msg'] === 'config applied').at(-1);
    assert.equal(applied?.['recomputedKeys'], 1, 'only the edited key was recomputed');
    assert.equal(t.store.current()!.keysByHash.get(hashKey('sk-7'))?.disabled, true);
    assert.equal(first.keysByHash.get(hashKey('sk-7'))?.disabled, false, 'the old snapshot is untouched');
    assert.equal(t.store.current()!.keysByHash.get(hashKey('sk-8')), first.keysByHash.get(hashKey('sk-8')), 'unchanged entries are shared');
    await t.write('keys.yaml', keys(7).split('---\n').filter((d) => !d.includes('name: k9 ')).join('---\n'));
    assert.equal((await t.source.reload()).kind, 'applied');
    assert.equal(t.store.current()!.keysByHash.size, 299);
    assert.equal(t.store.current()!.keysByHash.get(hashKey('sk-9')), undefined);
  });

  it('moves a resource between files, refuses it in two files at once, and applies the fix', async () => {
    const t = await setup();
    dirs.push(t.dir);
    await t.write('providers.yaml', PROVIDERS);
    await t.write('a.yaml', KEYS);
    await t.source.reload();
    await t.write('b.yaml', KEYS);
    const outcome = await t.source.reload();
    assert.deepEqual(outcome, {
      kind: 'rejected',
      issues: [`${join(t.dir, 'b.yaml')}: ApiKey default/team: metadata.name: duplicate resource; already defined in ${join(t.dir, 'a.yaml')}`],
    });
    await t.write('a.yaml', '');
    assert.deepEqual(await t.source.reload(), { kind: 'applied', version: 2 });
    assert.equal(t.store.current()!.keysByHash.get(hashKey('sk-1'))?.name, 'default/team');
    await rm(join(t.dir, 'b.yaml'));
    assert.equal((await t.source.reload()).kind, 'applied');
    assert.equal(t.store.current()!.keysByHash.size, 0);
  });

  it('keeps a rejected change pending and applies it with the fix that follows', async () => {
    const t = await setup();
    dirs.push(t.dir);
    await t.write('providers.yaml', PROVIDERS);
    await t.source.reload();
    await t.write('keys.yaml', KEYS + apiKeyYaml('other', 'secretRef: { name: late, key: k }'));
    assert.equal((await t.source.reload()).kind, 'rejected');
    assert.equal(t.store.current()!.keysByHash.size, 0, 'nothing of the rejected change is served');
    await t.write('secrets.yaml', secretYaml('late', { k: 'sk-late' }));
    assert.equal((await t.source.reload()).kind, 'applied');
    assert.equal(t.store.current()!.keysByHash.size, 2);
    assert.equal(t.store.current()!.keysByHash.get(hashKey('sk-late'))?.name, 'default/other');
  });
});

describe('file config source, random edits of one file', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  for (const seed of [11, 12, 13]) {
    it(`serves what a full parse of the file gives, or keeps the last good config (seed ${seed})`, async () => {
      let state = seed;
      const r = (): number => {
        state = (Math.imul(state, 1103515245) + 12345) >>> 0;
        return state / 4294967296;
      };
      const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)] as T;
      const keyDoc = (i: number): string =>
        apiKeyYaml(`k${i}`, `keyHash: "${hashKey(`sk-${i % 7}`)}"${r() < 0.3 ? '\ndisabled: true' : ''}${r() < 0.3 ? '\nparent: k' + pick([0, 1, 2]) : ''}\nmodels: ["${pick(['m1', 'gpt-*'])}"]`);
      let docs = Array.from({ length: 12 }, (_, i) => keyDoc(i));
      const t = await setup();
      dirs.push(t.dir);
      await t.write('providers.yaml', PROVIDERS);
      let good: string | undefined;
      for (let step = 0; step < 60; step++) {
        const op = r();
        const i = Math.floor(r() * docs.length);
        if (op < 0.35) docs[i] = keyDoc(Math.floor(r() * 15));
        else if (op < 0.5) docs.splice(i, 1);
        else if (op < 0.65) docs.splice(i, 0, keyDoc(Math.floor(r() * 15)));
        else if (op < 0.72) docs[i] = (docs[i] ?? '').replace('spec:', 'spec: [');
        else if (op < 0.8) docs[i] = (docs[i] ?? '').replace(/---\n$/, '');
        else if (op < 0.9) docs[i] = '# comment\n' + (docs[i] ?? '');
        else docs = docs.map((d) => d.replace('spec: [', 'spec:'));
        const text = docs.join('');
        await t.write('keys.yaml', text);
        const outcome = await t.source.reload();
        const full = snapshotFromYaml(PROVIDERS + text);
        const yamlErrors = parseAllDocuments(PROVIDERS + text).some((d) => d.errors.length > 0);
        const valid = !yamlErrors && full.issues.length === 0 && full.problems.length === 0;
        const names = (s: { keysByName: ReadonlyMap<string, { disabled: boolean; lineage: string }> }): string[] =>
          [...s.keysByName.entries()].map(([n, e]) => `${n}:${e.disabled}:${e.lineage}`).sort();
        if (valid) {
          assert.notEqual(outcome.kind, 'rejected', `step ${step}: ${JSON.stringify(outcome)}`);
          assert.deepEqual(names(t.store.current()!), names(full.snapshot), `step ${step}`);
          good = text;
        } else {
          assert.notEqual(outcome.kind, 'applied', `step ${step}: a config with issues is not applied`);
          if (good !== undefined) assert.deepEqual(names(t.store.current()!), names(snapshotFromYaml(PROVIDERS + good).snapshot), `step ${step}: last good kept`);
        }
      }
    });
  }
});

describe('splitDocuments', () => {
  const split = (text: string): string[] => [...splitDocuments(Buffer.from(text))].map(([a, b]) => Buffer.from(text).subarray(a, b).toString());
  it('cuts at --- lines only', () => {
    assert.deepEqual(split('a: 1\n---\nb: 2\n--- \nc: |\n  ---x\n----\n'), ['a: 1\n', '---\nb: 2\n', '--- \nc: |\n  ---x\n----\n']);
    assert.deepEqual(split('---\na: 1\n---\n'), ['---\na: 1\n', '---\n']);
  });
  it('keeps a file with directives or document-end markers whole', () => {
    assert.deepEqual(split('%YAML 1.2\n---\na: 1\n---\nb: 2\n'), ['%YAML 1.2\n---\na: 1\n---\nb: 2\n']);
    assert.deepEqual(split('a: 1\n...\n---\nb: 2\n'), ['a: 1\n...\n---\nb: 2\n']);
  });
});
