/**
 * AWS credentials from the container credentials endpoint
 * (https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html): EKS Pod
 * Identity (https://docs.aws.amazon.com/eks/latest/userguide/pod-identities.html) sets
 * AWS_CONTAINER_CREDENTIALS_FULL_URI (http://169.254.170.23/v1/credentials, the node's Pod Identity
 * Agent) and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (a projected service-account token the kubelet
 * rotates); ECS task roles set AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (appended to
 * http://169.254.170.2). The endpoint answers a GET, authorised by the token when one is configured,
 * with {AccessKeyId, SecretAccessKey, Token, Expiration}.
 *
 * The request, the allowed hosts (HTTPS, loopback, 169.254.170.2, 169.254.170.23, fd00:ec2::23),
 * the token file (read asynchronously at every fetch, so a rotated token is used) and retries (3,
 * 1 s apart, 1 s timeout) are the AWS SDK's own provider: @aws-sdk/credential-provider-http `fromHttp`.
 * Precedence is the SDK's too: RELATIVE_URI over FULL_URI, the token file over the token value. We
 * resolve it from the environment we are given and pass every option explicitly (empty strings for
 * the unused ones), so fromHttp never falls back to process.env and never warns on the console.
 * Caching and background refresh: credentials.ts.
 */
import { fromHttp } from '@aws-sdk/credential-provider-http';
import type { ExpiringCredentials } from './credentials.js';

/** ECS's link-local host, which a RELATIVE_URI is appended to (as fromHttp does). */
const ECS_HOST = 'http://169.254.170.2';

export interface ContainerCredentialsConfig {
  /** Exactly one of the two is non-empty (RELATIVE_URI wins when both are set, as in the SDKs). */
  readonly relativeUri: string;
  readonly fullUri: string;
  /** Exactly one or neither is non-empty (the file wins when both are set). */
  readonly tokenFile: string;
  readonly token: string;
}

/** The container credentials settings of an environment; undefined when neither URI is set. */
export function containerCredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): ContainerCredentialsConfig | undefined {
  const relativeUri = env['AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'] ?? '';
  const fullUri = relativeUri ? '' : (env['AWS_CONTAINER_CREDENTIALS_FULL_URI'] ?? '');
  if (!relativeUri && !fullUri) return undefined;
  const tokenFile = env['AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'] ?? '';
  return { relativeUri, fullUri, tokenFile, token: tokenFile ? '' : (env['AWS_CONTAINER_AUTHORIZATION_TOKEN'] ?? '') };
}

/** Where the credentials are fetched from, for messages (the URL holds no secret; the token is never shown). */
export function containerEndpoint(config: ContainerCredentialsConfig): string {
  return config.relativeUri ? `${ECS_HOST}${config.relativeUri}` : config.fullUri;
}

/** What went wrong, from the SDK's error: the endpoint's status and its Code/Message, never the token. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const { Code: code, Message: message } = err as { Code?: unknown; Message?: unknown };
  const detail = [code, message].filter((x): x is string => typeof x === 'string' && x !== '').join(': ');
  return `the container credentials endpoint failed: ${err.message}${detail ? ` (${detail})` : ''}`;
}

/**
 * A fetcher of container credentials for `config`, or an error when the SDK refuses the endpoint
 * (a plain-HTTP host that is neither loopback nor one of AWS's link-local agents).
 */
export function containerCredentials(config: ContainerCredentialsConfig): (() => Promise<ExpiringCredentials>) | Error {
  let provider: ReturnType<typeof fromHttp>;
  try {
    provider = fromHttp({
      awsContainerCredentialsRelativeUri: config.relativeUri,
      awsContainerCredentialsFullUri: config.fullUri,
      awsContainerAuthorizationTokenFile: config.tokenFile,
      awsContainerAuthorizationToken: config.token,
    });
  } catch (err) {
    return new Error(`AWS_CONTAINER_CREDENTIALS_* names ${containerEndpoint(config)}, which the AWS SDK does not accept: ${err instanceof Error ? err.message : String(err)}`);
  }
  return async () => {
    let identity;
    try {
      identity = await provider();
    } catch (err) {
      throw new Error(describe(err));
    }
    if (!identity.expiration) throw new Error('the container credentials endpoint answered without an Expiration');
    return {
      value: identity.sessionToken
        ? { accessKeyId: identity.accessKeyId, secretAccessKey: identity.secretAccessKey, sessionToken: identity.sessionToken }
        : { accessKeyId: identity.accessKeyId, secretAccessKey: identity.secretAccessKey },
      expiresAt: identity.expiration.getTime(),
    };
  };
}
