import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { readyEndpoints } from './endpoint-slices.js';

function slice(name: string, service: string, addressType: string, port: number, endpoints: NonNullable<V1EndpointSlice['endpoints']>): V1EndpointSlice {
  return { addressType, metadata: { name, labels: { 'kubernetes.io/service-name': service } }, ports: [{ name: 'http', port }], endpoints };
}

describe('EndpointSlice endpoints', () => {
  it('lists ready, non-terminating endpoints of the service port across slices, sorted, without duplicates', () => {
    const slices = [
      slice('vllm-a', 'vllm', 'IPv4', 8000, [
        { addresses: ['10.0.0.2'], conditions: { ready: true } },
        { addresses: ['10.0.0.1'] }, // ready unset = ready
        { addresses: ['10.0.0.3'], conditions: { ready: false } },
        { addresses: ['10.0.0.4'], conditions: { ready: true, terminating: true } },
      ]),
      slice('vllm-b', 'vllm', 'IPv4', 8000, [{ addresses: ['10.0.0.2'], conditions: { ready: true } }, { addresses: ['10.0.0.5'] }]),
      slice('other', 'sglang', 'IPv4', 8000, [{ addresses: ['10.9.9.9'] }]),
      slice('vllm-metrics', 'vllm', 'IPv4', 9090, [{ addresses: ['10.0.0.7'] }]),
    ];
    assert.deepEqual(readyEndpoints(slices, 'vllm', 8000), ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.5:8000']);
    assert.deepEqual(readyEndpoints(slices, 'vllm', 9090), ['10.0.0.7:9090']);
    assert.deepEqual(readyEndpoints(slices, 'missing', 8000), []);
  });

  it('brackets IPv6 addresses and ignores FQDN slices', () => {
    const slices = [
      slice('v6', 'vllm', 'IPv6', 8000, [{ addresses: ['fd00::1'] }]),
      slice('dns', 'vllm', 'FQDN', 8000, [{ addresses: ['vllm-0.example'] }]),
    ];
    assert.deepEqual(readyEndpoints(slices, 'vllm', 8000), ['[fd00::1]:8000']);
  });
});
