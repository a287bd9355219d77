import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { SlimInformer, type CacheEntry, type InformerVerb } from './slim-informer.js';

// The list/watch protocol against a scripted API server (the integration tests run the real one:
// test/integration/kubernetes.test.ts restarts it and forces a 410 relist).

const PATH = '/apis/tollgate.dev/v1alpha1/namespaces/ns/apikeys';
const READY = { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Accepted', message: 'served', lastTransitionTime: '2026-01-01T00:00:00Z' }] };

function obj(name: string, rv: number, generation: number, uid = `uid-${name}`, status?: unknown): KubernetesObject & { spec: unknown; status?: unknown } {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name, namespace: 'ns', uid, resourceVersion: String(rv), generation, managedFields: [{ manager: 'kubectl' }] },
    spec: { keyHash: `sha256:${name}`, generation },
    ...(status ? { status } : {}),
  };
}

interface Seen {
  readonly verb: InformerVerb;
  readonly key: string;
  readonly hasObj: boolean;
  readonly sameSpec: boolean | undefined;
}

describe('SlimInformer', () => {
  const lists: URLSearchParams[] = [];
  const watches: URLSearchParams[] = [];
  const open: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    assert.equal(url.pathname, PATH);
    assert.equal(req.headers['authorization'], 'Bearer t0ken');
    const q = url.searchParams;
    res.setHeader('content-type', 'application/json');
    if (q.get('watch') === 'true') {
      watches.push(q);
      res.writeHead(200);
      const send = (type: string, object: unknown): boolean => res.write(`${JSON.stringify({ type, object })}\n`);
      if (watches.length === 1) {
        send('MODIFIED', obj('a', 12, 1, 'uid-a', READY)); // status only
        send('MODIFIED', obj('b', 13, 2)); // spec change
        send('ADDED', obj('c', 14, 1, 'uid-c', READY));
        send('BOOKMARK', { kind: 'ApiKey', metadata: { resourceVersion: '16' } });
        // Later the API server has lost our resourceVersion.
        send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
        res.end();
      } else {
        open.push(res); // stays open until the test ends
      }
      return;
    }
    lists.push(q);
    if (lists.length === 1) {
      // First list: from the watch cache, everything at once whatever the limit.
      res.end(JSON.stringify({ apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiKeyList', metadata: { resourceVersion: '11' }, items: [obj('a', 10, 1), obj('b', 11, 1)] }));
    } else if (!q.get('continue')) {
      // Relist after the 410, in pages: b was deleted, c was recreated (new uid) meanwhile.
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ApiKeyList', metadata: { resourceVersion: '20', continue: 'page-2' }, items: [obj('a', 12, 1, 'uid-a', READY)] }));
    } else {
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ApiKeyList', metadata: { resourceVersion: '20' }, items: [obj('c', 19, 1, 'uid-c2', READY)] }));
    }
  });
  after(() => {
    for (const res of open) res.destroy();
    server.close();
  });

  it('lists from the watch cache first, resumes the watch, relists the latest state in pages after 410 Gone', async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't0ken' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const seen: Seen[] = [];
    const objects: (KubernetesObject | undefined)[] = [];
    let relisted: () => void = () => undefined;
    const relistDone = new Promise<void>((r) => (relisted = r));
    const informer = new SlimInformer<KubernetesObject>({
      name: 'ApiKey',
      kubeConfig: kc,
      path: PATH,
      logger: pino({ level: 'silent' }),
      pageSize: 1,
      onChange: () => undefined,
      transform: (o) => ({ ...o, metadata: { name: o.metadata?.name ?? '', namespace: o.metadata?.namespace ?? '' } }),
      onEvent: (verb, key, o, entry: CacheEntry, previous) => {
        seen.push({ verb, key, hasObj: o !== undefined, sameSpec: previous ? entry.sameSpec(previous) : undefined });
        objects.push(o);
        if (verb === 'delete') relisted();
      },
    });
    after(() => informer.stop());
    await informer.start();
    await relistDone;
    await new Promise((r) => setTimeout(r, 50)); // let the second watch open

    assert.equal(lists[0]?.get('resourceVersion'), '0', 'the first list may be served from the watch cache');
    assert.equal(lists[0]?.get('limit'), '1');
    assert.equal(watches[0]?.get('resourceVersion'), '11', 'the watch starts at the list');
    assert.equal(watches[0]?.get('allowWatchBookmarks'), 'true');
    assert.equal(lists[1]?.get('resourceVersion'), null, 'a relist after 410 reads the latest state');
    assert.equal(lists[2]?.get('continue'), 'page-2');
    assert.equal(lists[2]?.get('resourceVersion'), null);
    assert.equal(watches[1]?.get('resourceVersion'), '20');
    assert.equal(informer.lists, 2);

    assert.deepEqual(seen, [
      { verb: 'add', key: 'ns/a', hasObj: true, sameSpec: undefined },
      { verb: 'add', key: 'ns/b', hasObj: true, sameSpec: undefined },
      { verb: 'update', key: 'ns/a', hasObj: true, sameSpec: true }, // status only
      { verb: 'update', key: 'ns/b', hasObj: true, sameSpec: false }, // new generation
      { verb: 'add', key: 'ns/c', hasObj: true, sameSpec: undefined },
      // relist: a unchanged (same resourceVersion, no event), c recreated, b gone
      { verb: 'update', key: 'ns/c', hasObj: true, sameSpec: false },
      { verb: 'delete', key: 'ns/b', hasObj: false, sameSpec: true },
    ]);
    assert.deepEqual(objects[0], { ...obj('a', 10, 1), metadata: { name: 'a', namespace: 'ns' } }, 'events carry the transformed object');
    assert.deepEqual([...informer.keys()].sort(), ['ns/a', 'ns/c']);
    const a = informer.get('ns/a');
    const c = informer.get('ns/c');
    assert.deepEqual(a?.status, READY);
    assert.equal(a?.status, c?.status, 'equal statuses are one shared object');
    assert.equal(a?.generation, 1);
    assert.equal(a?.resourceVersion, 12);
    assert.ok(informer.synced && informer.watching);
  });
});
