import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as protoLoader from '@grpc/proto-loader';
import { protoIncludeDirs } from '../protos.js';
import { BODY_SEND_MODE, enumValue, HEADER_APPEND_ACTION, HEADER_SEND_MODE, NULL_VALUE, RESPONSE_STATUS, STATUS_CODE, type EnumTable } from './enums.js';

interface EnumDescriptor {
  name: string;
  value: { name: string; number: number }[];
}

const definition = protoLoader.loadSync('envoy/service/ext_proc/v3/external_processor.proto', { includeDirs: protoIncludeDirs() });

/** A top-level enum, or a nested one as `Message.Enum`, from the descriptors proto-loader loaded. */
function protoEnum(fullName: string): Map<string, number> {
  const direct = definition[fullName];
  let descriptor: EnumDescriptor | undefined;
  if (direct && 'format' in direct && direct.format === 'Protocol Buffer 3 EnumDescriptorProto') descriptor = direct.type as EnumDescriptor;
  else {
    const dot = fullName.lastIndexOf('.');
    const message = definition[fullName.slice(0, dot)];
    assert.ok(message && 'format' in message, `no message ${fullName.slice(0, dot)}`);
    descriptor = (message.type as { enumType: EnumDescriptor[] }).enumType.find((e) => e.name === fullName.slice(dot + 1));
  }
  assert.ok(descriptor, `no enum ${fullName}`);
  return new Map(descriptor.value.map((v) => [v.name, v.number]));
}

describe('codec enum tables', () => {
  const cases: [string, EnumTable][] = [
    ['envoy.service.ext_proc.v3.CommonResponse.ResponseStatus', RESPONSE_STATUS],
    ['envoy.config.core.v3.HeaderValueOption.HeaderAppendAction', HEADER_APPEND_ACTION],
    ['envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode', HEADER_SEND_MODE],
    ['envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode', BODY_SEND_MODE],
    ['google.protobuf.NullValue', NULL_VALUE],
    ['envoy.type.v3.StatusCode', STATUS_CODE],
  ];
  for (const [name, table] of cases) {
    it(`${name} matches the proto`, () => {
      assert.deepEqual(new Map(table), protoEnum(name));
    });
  }

  it('maps names and known numbers, rejects anything else', () => {
    assert.equal(enumValue(BODY_SEND_MODE, 'STREAMED', 'f'), 1);
    assert.equal(enumValue(STATUS_CODE, 429, 'f'), 429);
    assert.throws(() => enumValue(BODY_SEND_MODE, 'STREAMING', 'ProcessingMode.responseBodyMode'), /ProcessingMode.responseBodyMode has unknown enum value "STREAMING"/);
    assert.throws(() => enumValue(STATUS_CODE, 299, 'HttpStatus.code'), /unknown enum value 299/);
    assert.throws(() => enumValue(HEADER_SEND_MODE, true, 'f'), /unknown enum value true/);
  });
});
