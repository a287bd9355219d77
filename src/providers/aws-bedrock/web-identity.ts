/**
 * AWS credentials from the standard web-identity environment (IRSA: IAM Roles for Service Accounts,
 * https://docs.aws.amazon.com/eks/latest/userguide/iam-roles-for-service-accounts.html). EKS's pod
 * identity webhook sets AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (a projected service-account
 * token the kubelet rotates); the token is exchanged for temporary credentials with STS
 * AssumeRoleWithWebIdentity (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html)
 * by the AWS SDK's own provider (@aws-sdk/credential-provider-web-identity `fromWebToken`, which runs
 * the SDK's STS client: request serialisation, XML parsing, retries of throttling and 5xx answers).
 *
 * The token file is read here, asynchronously, on every exchange (the SDK's `fromTokenFile` reads it
 * with readFileSync): a rotated token is picked up at the next refresh and the event loop never
 * blocks. Caching and background refresh: credentials.ts.
 *
 * STS endpoint: the SDK resolves AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL, then the regional
 * endpoint of the region (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
 * We read the same variables from the environment we are given and pass them as the STS client's
 * `endpoint` and `region`, so what is configured is what is used and can be tested without touching
 * process.env. Region: AWS_REGION, else AWS_DEFAULT_REGION, else the SDK's default.
 */
import { readFile } from 'node:fs/promises';
import { fromWebToken } from '@aws-sdk/credential-provider-web-identity';
import type { ExpiringCredentials } from './credentials.js';

/** One STS exchange may take this long (connect + answer) before the refresh fails and is retried later. */
const STS_CONNECT_TIMEOUT_MS = 5_000;
const STS_REQUEST_TIMEOUT_MS = 10_000;

export interface WebIdentityConfig {
  readonly roleArn: string;
  readonly tokenFile: string;
  readonly sessionName: string;
  /** STS region; undefined: the SDK's default resolution (AWS_REGION, profile, us-east-1). */
  readonly region: string | undefined;
  /** Base URL of STS when configured (AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL); else the regional endpoint. */
  readonly stsEndpoint: string | undefined;
}

/** The web-identity settings of an environment; undefined when AWS_ROLE_ARN or the token file is not set. */
export function webIdentityFromEnv(env: NodeJS.ProcessEnv = process.env): WebIdentityConfig | undefined {
  const roleArn = env['AWS_ROLE_ARN'];
  const tokenFile = env['AWS_WEB_IDENTITY_TOKEN_FILE'];
  if (!roleArn || !tokenFile) return undefined;
  const ignoreEndpoints = (env['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS'] ?? '').toLowerCase() === 'true';
  return {
    roleArn,
    tokenFile,
    sessionName: env['AWS_ROLE_SESSION_NAME'] || `tollgate-${process.pid}`,
    region: env['AWS_REGION'] || env['AWS_DEFAULT_REGION'] || undefined,
    stsEndpoint: ignoreEndpoints ? undefined : env['AWS_ENDPOINT_URL_STS'] || env['AWS_ENDPOINT_URL'] || undefined,
  };
}

/** The parts of an SDK service error we report: STS's error code and HTTP status, never the token. */
function describeStsError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === undefined ? `STS AssumeRoleWithWebIdentity failed: ${err.message}` : `STS AssumeRoleWithWebIdentity failed (${status} ${err.name}): ${err.message}`;
}

/** One AssumeRoleWithWebIdentity exchange with the token file's current content. */
export async function assumeRoleWithWebIdentity(config: WebIdentityConfig): Promise<ExpiringCredentials> {
  const token = (await readFile(config.tokenFile, 'utf8')).trim();
  if (token === '') throw new Error(`the web identity token file ${config.tokenFile} is empty`);
  const provider = fromWebToken({
    roleArn: config.roleArn,
    roleSessionName: config.sessionName,
    webIdentityToken: token,
    clientConfig: {
      ...(config.region ? { region: config.region } : {}),
      ...(config.stsEndpoint ? { endpoint: config.stsEndpoint } : {}),
      requestHandler: { connectionTimeout: STS_CONNECT_TIMEOUT_MS, requestTimeout: STS_REQUEST_TIMEOUT_MS },
    },
  });
  let identity;
  try {
    identity = await provider();
  } catch (err) {
    throw new Error(describeStsError(err));
  }
  if (!identity.sessionToken || !identity.expiration) throw new Error('STS AssumeRoleWithWebIdentity answered without SessionToken and Expiration');
  return {
    value: { accessKeyId: identity.accessKeyId, secretAccessKey: identity.secretAccessKey, sessionToken: identity.sessionToken },
    expiresAt: identity.expiration.getTime(),
  };
}
