/**
 * Where an `aws-bedrock` provider without a credential Secret gets its AWS credentials: the part of
 * the AWS SDKs' default credential chain that applies to a Pod
 * (https://docs.aws.amazon.com/sdkref/latest/guide/standardized-credentials.html), in the SDKs' order:
 *   1. static keys in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN);
 *   2. the web-identity environment IRSA sets (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), exchanged at
 *      STS by the AWS SDK's own provider (web-identity.ts);
 *   3. the container credentials endpoint EKS Pod Identity and ECS set (AWS_CONTAINER_CREDENTIALS_FULL_URI
 *      or _RELATIVE_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN), fetched by the AWS
 *      SDK's own provider (container-credentials.ts).
 * The SDKs read shared config files and credential processes between 1 and 2, and EC2 instance
 * metadata after 3; a Pod has neither, so Tollgate does not look for them.
 *
 * Credentials that expire are cached and refreshed in the background (../refreshing.ts): a request
 * waits for the source only when no valid credentials exist (the first request, or after failed
 * refreshes let them expire).
 */
import { Refreshing, type Expiring } from '../refreshing.js';
import type { AwsCredentials } from './api.js';
import { containerCredentials, containerCredentialsFromEnv, containerEndpoint } from './container-credentials.js';
import { assumeRoleWithWebIdentity, webIdentityFromEnv } from './web-identity.js';

export type ExpiringCredentials = Expiring<AwsCredentials>;

/** AWS credentials from one source, served from a cache and refreshed before they expire. */
export type RefreshingCredentials = Refreshing<AwsCredentials>;

/** Static keys from the environment, as the SDKs read them; undefined when the two keys are not both set. */
export function envCredentials(env: NodeJS.ProcessEnv = process.env): ExpiringCredentials | undefined {
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = env['AWS_SESSION_TOKEN'];
  const expiration = env['AWS_CREDENTIAL_EXPIRATION'] ? Date.parse(env['AWS_CREDENTIAL_EXPIRATION']) : Number.NaN;
  return {
    value: sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey },
    expiresAt: Number.isNaN(expiration) ? undefined : expiration,
  };
}

/** The first source of the chain that the environment configures, or an error saying what to set. */
export function defaultCredentialsFrom(env: NodeJS.ProcessEnv, now: () => number = Date.now): RefreshingCredentials | Error {
  const fromEnv = envCredentials(env);
  // Static keys are known at once; once expired (AWS_CREDENTIAL_EXPIRATION) they are re-read, and refused, from the same environment.
  if (fromEnv) {
    const reread = (): Promise<ExpiringCredentials> => {
      const again = envCredentials(env);
      return again && (again.expiresAt === undefined || again.expiresAt > now()) ? Promise.resolve(again) : Promise.reject(new Error('AWS_CREDENTIAL_EXPIRATION has passed'));
    };
    return new Refreshing<AwsCredentials>('AWS credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY', reread, now, fromEnv);
  }
  const webIdentity = webIdentityFromEnv(env);
  if (webIdentity) return new Refreshing<AwsCredentials>(`web identity (role ${webIdentity.roleArn})`, () => assumeRoleWithWebIdentity(webIdentity), now);
  const container = containerCredentialsFromEnv(env);
  if (container) {
    const fetchCredentials = containerCredentials(container);
    if (fetchCredentials instanceof Error) return fetchCredentials;
    return new Refreshing<AwsCredentials>(`container credentials (${containerEndpoint(container)})`, fetchCredentials, now);
  }
  return new Error(
    'no credentialSecretRef (AWS credentials JSON) is configured, and neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the web identity environment (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) nor container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI: EKS Pod Identity, ECS) are set',
  );
}

let processSource: RefreshingCredentials | Error | undefined;

/** The process's default credentials (one source, one cache, for every provider without a credential Secret). */
export function defaultCredentials(): RefreshingCredentials | Error {
  processSource ??= defaultCredentialsFrom(process.env);
  return processSource;
}
