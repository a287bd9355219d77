import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { parseResources } from '../config/parse.js';
import { buildSnapshot, hashKey, type Snapshot } from '../config/snapshot.js';
import { ConfigStore } from '../config/store.js';
import { createLogger } from '../observability/logger.js';
import { encoderReady } from './estimate.js';
import { encodingsNeeded, warmEncodersFor } from './setup.js';

function snapshot(keyLimits: Record<string, unknown>, models: string[]): Snapshot {
  const docs = [
    { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiKey', metadata: { name: 'k', namespace: 'ns' }, spec: { keyHash: hashKey('k'), limits: keyLimits } },
    {
      apiVersion: 'tollgate.dev/v1alpha1',
      kind: 'ModelProvider',
      metadata: { name: 'p' },
      spec: { type: 'openai', endpoint: 'http://127.0.0.1:1/v1', models: models.map((name) => ({ name })) },
    },
  ];
  const parsed = parseResources(docs.map((doc) => ({ source: 'test', doc })));
  assert.deepEqual(parsed.issues, []);
  return buildSnapshot(parsed.resources, 1).snapshot;
}

const tiktokenLoaded = (): boolean => Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('tiktoken'));

describe('token encoders are built only for configs with token limits', () => {
  it('needs the encodings of the served models, and none without a token limit', () => {
    assert.deepEqual(encodingsNeeded(snapshot({ requestsPerMinute: 5 }, ['gpt-4o-mini'])), []);
    assert.deepEqual(encodingsNeeded(snapshot({ tokensPerMinute: 5 }, ['gpt-4o-mini', 'gpt-4.1', 'llama-3'])).sort(), ['cl100k_base', 'o200k_base']);
    assert.deepEqual(encodingsNeeded(snapshot({ perModel: [{ model: 'x*', tokensPerDay: 5 }] }, ['llama-3'])), ['cl100k_base']);
  });

  it('a gateway without token limits never loads tiktoken; a config change adding one builds the encoding off the swap', async () => {
    const store = new ConfigStore();
    store.swap(snapshot({ requestsPerMinute: 5 }, ['llama-3', 'gpt-4o-mini']));
    const logger = createLogger('test');
    logger.level = 'silent';
    const stop = warmEncodersFor(store, logger);
    store.swap(snapshot({ requestsPerDay: 50 }, ['llama-3']));
    await new Promise((r) => setImmediate(r));
    assert.equal(tiktokenLoaded(), false);
    store.swap(snapshot({ tokensPerMinute: 500 }, ['llama-3']));
    assert.equal(encoderReady('cl100k_base'), false, 'built inside the swap');
    await new Promise((r) => setImmediate(r));
    assert.equal(encoderReady('cl100k_base'), true);
    assert.equal(encoderReady('o200k_base'), false, 'no served model needs it');
    stop();
  });
});
