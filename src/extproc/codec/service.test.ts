import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadExternalProcessorService } from '../server.js';
import { decodeProcessingRequest } from './decode-request.js';
import { encodeProcessingResponse } from './encode-response.js';
import { withStaticCodecs } from './service.js';

describe('withStaticCodecs', () => {
  it("replaces only Process's server-side codec and keeps the rest of proto-loader's definition", () => {
    const base = loadExternalProcessorService();
    const wired = withStaticCodecs(base);
    const process = wired['Process']!;
    const original = base['Process']!;
    assert.equal(process.requestDeserialize, decodeProcessingRequest);
    assert.equal(process.responseSerialize, encodeProcessingResponse);
    assert.equal(process.path, '/envoy.service.ext_proc.v3.ExternalProcessor/Process');
    assert.equal(process.requestStream, true);
    assert.equal(process.responseStream, true);
    assert.equal(process.requestSerialize, original.requestSerialize);
    assert.equal(process.responseDeserialize, original.responseDeserialize);
    assert.notEqual(original.requestDeserialize, decodeProcessingRequest, 'the loaded definition itself is not modified');
  });
});
