/**
 * Self-hosted endpoints from EndpointSlices against a real kube-apiserver: the discovery module's
 * own informer follows slices as they are created, change readiness and go away.
 *
 * The data path (a discovered endpoint becomes the attempt's :authority, separate circuit per
 * endpoint) is covered by src/routing/router.test.ts and src/pipeline tests: the API server refuses
 * loopback addresses in EndpointSlices, and loopback is the only network this suite may use, so a
 * request cannot be routed through Envoy to a discovered fake here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { EndpointSliceDiscovery } from '../../src/controller/endpoint-slices.js';
import { waitFor } from '../../src/dev/local-stack.js';
import { createLogger } from '../../src/observability/logger.js';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';

const NS = 'tollgate-disc';

function endpointSlice(name: string, service: string, port: number, endpoints: { ip: string; ready: boolean }[]): string {
  const eps = endpoints.map((e) => `  - { addresses: ["${e.ip}"], conditions: { ready: ${e.ready} } }`).join('\n');
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}, namespace: ${NS}, labels: { kubernetes.io/service-name: ${service} } }
addressType: IPv4
ports: [{ name: http, port: ${port}, protocol: TCP }]
endpoints:
${eps}
`;
}

describe('EndpointSlice discovery against a real API server', () => {
  let cp: ControlPlane;
  let discovery: EndpointSliceDiscovery;
  const apply = async (...docs: string[]): Promise<void> => {
    await cp.kubectl(['apply', '-f', '-'], { input: docs.join('---\n') });
  };

  before(async () => {
    cp = await startControlPlane();
    await cp.kubectl(['create', 'namespace', NS]);
    await apply(endpointSlice('vllm-a', 'vllm', 8000, [{ ip: '10.1.0.1', ready: true }, { ip: '10.1.0.2', ready: true }]));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cp.kubeconfig);
    const logger = createLogger('test');
    logger.level = 'silent';
    discovery = new EndpointSliceDiscovery({ kubeConfig, namespace: NS, logger });
    await discovery.start();
  });
  after(async () => {
    await discovery?.stop();
    await cp?.stop();
  });

  it('lists the ready endpoints after the first sync', () => {
    assert.deepEqual(discovery.endpoints(NS, 'vllm', 8000), ['10.1.0.1:8000', '10.1.0.2:8000']);
    assert.deepEqual(discovery.endpoints(NS, 'vllm', 9000), []);
    assert.deepEqual(discovery.endpoints('elsewhere', 'vllm', 8000), []);
  });

  it('follows readiness changes, new slices and deletions through the watch', async () => {
    await apply(
      endpointSlice('vllm-a', 'vllm', 8000, [{ ip: '10.1.0.1', ready: true }, { ip: '10.1.0.2', ready: false }]),
      endpointSlice('vllm-b', 'vllm', 8000, [{ ip: '10.1.0.3', ready: true }]),
    );
    await waitFor('the watch to deliver the change', async () => discovery.endpoints(NS, 'vllm', 8000).join() === '10.1.0.1:8000,10.1.0.3:8000', 5000);
    await cp.kubectl(['delete', 'endpointslice', 'vllm-a', 'vllm-b', '-n', NS]);
    await waitFor('the deletion', async () => discovery.endpoints(NS, 'vllm', 8000).length === 0, 5000);
  });
});
