/**
 * AWS Bedrock (provider type `aws-bedrock`): chat through the Converse and ConverseStream APIs, which
 * serve every Bedrock chat model (Claude, Llama, Mistral, Nova ...) in one request shape.
 *
 * Behaviour follows AWS's published API reference:
 *   - Converse:        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
 *   - ConverseStream:  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
 *   - Stream events:   https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
 *   - Errors:          https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html
 *   - SigV4:           https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 *   - Event streams:   https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream (framing)
 * Requests are signed with @smithy/signature-v4 (service `bedrock`); streamed answers arrive in AWS
 * event-stream binary framing, decoded with @smithy/eventstream-codec (stream.ts).
 *
 * The credential Secret key holds JSON: {"accessKeyId": "...", "secretAccessKey": "...", "sessionToken": "..."}
 * (sessionToken optional). Without a credentialSecretRef, credentials come from the Pod's environment
 * like the AWS SDKs' default chain: static keys (AWS_ACCESS_KEY_ID...), then the web identity IRSA sets
 * (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE -> STS AssumeRoleWithWebIdentity through the AWS SDK's
 * provider), then the container credentials endpoint of EKS Pod Identity or ECS
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI, through the AWS SDK's fromHttp), cached and
 * refreshed in the background before expiry (credentials.ts, web-identity.ts, container-credentials.ts).
 * The region comes from spec.region or the endpoint host
 * (bedrock-runtime.<region>.amazonaws.com). Embeddings: InvokeModel for Titan and Cohere (embeddings.ts).
 * The `/v1/messages` front door sends Claude models the client's Anthropic body natively through
 * InvokeModel / InvokeModelWithResponseStream / CountTokens (messages.ts).
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { ProviderEntry } from '../../config/snapshot.js';
import type { ProviderAdapter, UpstreamTarget } from '../types.js';
import { bedrockChat } from './chat.js';
import { bedrockEmbeddings } from './embeddings.js';
import { reportCredentialProblem } from '../refreshing.js';
import { defaultCredentials } from './credentials.js';
import { bedrockNativeMessages, countTokensModel } from './messages.js';

/** Used when neither spec.region nor the endpoint host names a region. */
export const DEFAULT_REGION = 'us-east-1';
const REGION_IN_HOST = /bedrock-runtime(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\./;

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Parses the credential Secret's JSON; an error names what is missing (never the values). */
export function parseAwsCredentials(text: string | undefined): AwsCredentials | Error {
  if (text === undefined) return new Error('no credentialSecretRef (AWS credentials JSON) is configured');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return new Error('the credential Secret must hold JSON {"accessKeyId","secretAccessKey","sessionToken"?}');
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const id = o['accessKeyId'];
  const secret = o['secretAccessKey'];
  const token = o['sessionToken'];
  if (typeof id !== 'string' || id === '' || typeof secret !== 'string' || secret === '') {
    return new Error('the credential JSON needs accessKeyId and secretAccessKey');
  }
  return typeof token === 'string' && token !== '' ? { accessKeyId: id, secretAccessKey: secret, sessionToken: token } : { accessKeyId: id, secretAccessKey: secret };
}

export function regionOf(provider: ProviderEntry): string {
  return provider.region ?? REGION_IN_HOST.exec(provider.endpoint.authority)?.[1] ?? DEFAULT_REGION;
}

function defaultProvider(): (() => Promise<AwsCredentials>) | Error {
  const source = defaultCredentials();
  return source instanceof Error ? source : () => Promise.resolve(source.get());
}

/** One signer per provider entry (snapshots are immutable: a new entry gets a new signer). */
const signers = new WeakMap<ProviderEntry, SignatureV4 | Error>();

function signerFor(provider: ProviderEntry): SignatureV4 | Error {
  let signer = signers.get(provider);
  if (!signer) {
    // No credential Secret: the Pod's credentials (env keys, IRSA or Pod Identity), answered from their cache while valid.
    const credentials = provider.credential === undefined ? defaultProvider() : parseAwsCredentials(provider.credential);
    signer = credentials instanceof Error ? credentials : new SignatureV4({ credentials, region: regionOf(provider), service: 'bedrock', sha256: Sha256 });
    signers.set(provider, signer);
  }
  return signer;
}

/** SigV4 headers (authorization, x-amz-date, x-amz-security-token, ...) for exactly this request. */
async function sign(provider: ProviderEntry, target: UpstreamTarget, body: Buffer): Promise<readonly (readonly [string, string])[]> {
  const signer = signerFor(provider);
  if (signer instanceof Error) throw signer;
  const [hostname = target.authority, port] = target.authority.split(':');
  const headers: Record<string, string> = { host: target.authority };
  for (const [k, v] of target.headers) if (k === 'content-type' || k === 'accept' || k === 'x-amzn-bedrock-accept') headers[k] = v;
  const signed = await signer.sign({
    method: 'POST',
    protocol: `${target.scheme}:`,
    hostname,
    ...(port ? { port: Number(port) } : {}),
    path: target.path,
    query: {},
    headers,
    body,
  });
  const out: (readonly [string, string])[] = [];
  for (const [k, v] of Object.entries(signed.headers)) if (!(k in headers)) out.push([k.toLowerCase(), v]);
  return out;
}

/**
 * Claude's own Messages API on Bedrock (messages.ts): InvokeModel, InvokeModelWithResponseStream
 * (the event stream wraps JSON payloads: X-Amzn-Bedrock-Accept), CountTokens (foundation model ids).
 */
function nativeTarget(provider: ProviderEntry, operation: 'messages' | 'messages/count_tokens', upstreamModel: string, stream: boolean): UpstreamTarget {
  const { scheme, authority, basePath } = provider.endpoint;
  const count = operation === 'messages/count_tokens';
  const model = encodeURIComponent(count ? countTokensModel(upstreamModel) : upstreamModel);
  const method = count ? 'count-tokens' : stream ? 'invoke-with-response-stream' : 'invoke';
  const headers: (readonly [string, string])[] = [['content-type', 'application/json']];
  if (stream && !count) headers.push(['accept', 'application/vnd.amazon.eventstream'], ['x-amzn-bedrock-accept', 'application/json']);
  else headers.push(['accept', 'application/json']);
  headers.push(['accept-encoding', 'identity']);
  return { scheme, authority, path: `${basePath}/model/${model}/${method}`, headers };
}

export const bedrockAdapter: ProviderAdapter = {
  type: 'aws-bedrock',
  target(provider, operation, upstreamModel, stream) {
    const { scheme, authority, basePath } = provider.endpoint;
    if (operation === 'messages' || operation === 'messages/count_tokens') return nativeTarget(provider, operation, upstreamModel, stream);
    // Model ids contain ':' (anthropic.claude-...-v1:0): escaped in the path as the AWS SDKs do.
    const method = operation === 'embeddings' ? 'invoke' : stream ? 'converse-stream' : 'converse';
    const path = `${basePath}/model/${encodeURIComponent(upstreamModel)}/${method}`;
    return {
      scheme,
      authority,
      path,
      headers: [
        ['content-type', 'application/json'],
        ['accept', stream ? 'application/vnd.amazon.eventstream' : 'application/json'],
        ['accept-encoding', 'identity'],
      ],
    };
  },
  sign,
  /** No credential Secret: fetch the Pod's credentials now (one shared source), not at the first request. */
  warm(provider) {
    if (provider.credential !== undefined) return;
    const source = defaultCredentials();
    // An environment that cannot give credentials is in the log as the configuration loads, not only in clients' 502s.
    if (source instanceof Error) reportCredentialProblem('AWS credentials from the environment', source.message);
    else void Promise.resolve(source.get()).catch(() => undefined);
  },
  chat: bedrockChat,
  embeddings: bedrockEmbeddings,
  nativeMessages: bedrockNativeMessages,
};
