/**
 * Shared by the codec tests: hand-built protobuf wire fragments (unknown fields, odd orders,
 * corruption) and proto-loader's own decoding of answers, the reference the encoder is checked against.
 */
import assert from 'node:assert/strict';
import * as protoLoader from '@grpc/proto-loader';
import type { ProcessingResponse__Output } from '../../generated/envoy/service/ext_proc/v3/ProcessingResponse.js';
import { protoIncludeDirs } from '../protos.js';
import { loadExternalProcessorService } from '../server.js';
import { CodecError } from './wire.js';

export function varint(n: number | bigint): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
export const key = (field: number, wireType: number): Buffer => varint(BigInt(field) * 8n + BigInt(wireType));
export const len = (field: number, payload: Buffer | string): Buffer => {
  const b = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([key(field, 2), varint(b.length), b]);
};
export const vint = (field: number, n: number | bigint): Buffer => Buffer.concat([key(field, 0), varint(n)]);
export const fixed64 = (field: number): Buffer => Buffer.concat([key(field, 1), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])]);
export const fixed32 = (field: number): Buffer => Buffer.concat([key(field, 5), Buffer.from([9, 9, 9, 9])]);

/** proto-loader's ext_proc codec as grpc-js used it (defaults off). */
export const protoLoaderProcess = loadExternalProcessorService()['Process']!;

const withDefaults = protoLoader.loadSync('envoy/service/ext_proc/v3/external_processor.proto', {
  includeDirs: protoIncludeDirs(),
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
})['envoy.service.ext_proc.v3.ExternalProcessor'] as protoLoader.ServiceDefinition;

/** An encoded answer decoded by proto-loader with every default filled in. */
export const decodeAnswerFull = (b: Buffer): ProcessingResponse__Output => withDefaults['Process']!.responseDeserialize(b) as ProcessingResponse__Output;

/**
 * Decodes `rounds` randomly corrupted (bytes flipped, tail cut) copies of `samples` with a fixed
 * seed: the decoder must only ever throw CodecError, and must notice corruption often. Returns how
 * many copies it refused.
 */
export function fuzzCorrupted(samples: readonly Buffer[], decode: (wire: Buffer) => unknown, rounds = 3000): number {
  let seed = 0x2545f491;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  let threw = 0;
  for (let i = 0; i < rounds; i++) {
    const wire = Buffer.from(samples[i % samples.length]!);
    for (let flips = 1 + rand(4); flips > 0; flips--) wire[rand(wire.length)] = rand(256);
    try {
      decode(wire.subarray(0, wire.length - rand(3)));
    } catch (err) {
      assert.ok(err instanceof CodecError, `unexpected ${String(err)}`);
      threw++;
    }
  }
  return threw;
}
