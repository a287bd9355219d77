/**
 * AWS credentials from the standard web-identity environment (IRSA: IAM Roles for Service Accounts,
 * https://docs.aws.amazon.com/eks/latest/userguide/iam-roles-for-service-accounts.html). EKS's pod
 * identity webhook sets AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (a projected service-account
 * token the kubelet rotates); the token is exchanged for temporary credentials with STS
 * AssumeRoleWithWebIdentity (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html),
 * an unsigned POST of form parameters answered in XML.
 *
 * Credentials are fetched once and reused; when they have less than REFRESH_BEFORE_MS left, the next
 * request starts a refresh in the background (re-reading the token file) and still signs with the
 * valid ones, so a request waits for STS only when no valid credentials exist (the first request, or
 * after failed refreshes let them expire). The STS endpoint is AWS_ENDPOINT_URL_STS when set (as the
 * AWS SDKs honour it), else the regional endpoint of AWS_REGION / AWS_DEFAULT_REGION, else the global one.
 */
import { readFile } from 'node:fs/promises';
import type { AwsCredentials } from './api.js';

/** Refresh this long before expiry (STS credentials live an hour by default). */
export const REFRESH_BEFORE_MS = 5 * 60_000;
const STS_TIMEOUT_MS = 10_000;

export interface WebIdentityConfig {
  readonly roleArn: string;
  readonly tokenFile: string;
  readonly sessionName: string;
  /** Base URL of STS, for example https://sts.eu-central-1.amazonaws.com. */
  readonly stsEndpoint: string;
}

/** The web-identity settings of an environment; undefined when AWS_ROLE_ARN or the token file is not set. */
export function webIdentityFromEnv(env: NodeJS.ProcessEnv = process.env): WebIdentityConfig | undefined {
  const roleArn = env['AWS_ROLE_ARN'];
  const tokenFile = env['AWS_WEB_IDENTITY_TOKEN_FILE'];
  if (!roleArn || !tokenFile) return undefined;
  const region = env['AWS_REGION'] || env['AWS_DEFAULT_REGION'];
  const stsEndpoint = env['AWS_ENDPOINT_URL_STS'] || env['AWS_ENDPOINT_URL'] || (region ? `https://sts.${region}.amazonaws.com` : 'https://sts.amazonaws.com');
  return { roleArn, tokenFile, sessionName: env['AWS_ROLE_SESSION_NAME'] || `tollgate-${process.pid}`, stsEndpoint };
}

const XML_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** The text of the first <tag>…</tag> (STS answers are flat enough for this; values are unescaped). */
function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m?.[1]?.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => XML_ENTITIES[e] ?? '');
}

export interface TemporaryCredentials {
  readonly credentials: AwsCredentials;
  readonly expiresAt: number;
}

/** One AssumeRoleWithWebIdentity call; rejects with STS's error code and message (never the token). */
export async function assumeRoleWithWebIdentity(config: WebIdentityConfig): Promise<TemporaryCredentials> {
  const token = (await readFile(config.tokenFile, 'utf8')).trim();
  if (token === '') throw new Error(`the web identity token file ${config.tokenFile} is empty`);
  const form = new URLSearchParams({
    Action: 'AssumeRoleWithWebIdentity',
    Version: '2011-06-15',
    RoleArn: config.roleArn,
    RoleSessionName: config.sessionName,
    WebIdentityToken: token,
  });
  const res = await fetch(config.stsEndpoint.replace(/\/+$/, '') + '/', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', accept: 'application/xml' },
    body: form.toString(),
    signal: AbortSignal.timeout(STS_TIMEOUT_MS),
  });
  const xml = await res.text();
  if (!res.ok) {
    throw new Error(`STS AssumeRoleWithWebIdentity failed (${res.status} ${xmlText(xml, 'Code') ?? 'no error code'}): ${xmlText(xml, 'Message') ?? 'no message'}`);
  }
  const accessKeyId = xmlText(xml, 'AccessKeyId');
  const secretAccessKey = xmlText(xml, 'SecretAccessKey');
  const sessionToken = xmlText(xml, 'SessionToken');
  const expiration = Date.parse(xmlText(xml, 'Expiration') ?? '');
  if (!accessKeyId || !secretAccessKey || !sessionToken || Number.isNaN(expiration)) {
    throw new Error('STS AssumeRoleWithWebIdentity answered without AccessKeyId, SecretAccessKey, SessionToken and Expiration');
  }
  return { credentials: { accessKeyId, secretAccessKey, sessionToken }, expiresAt: expiration };
}

export class WebIdentityCredentials {
  private current: TemporaryCredentials | undefined;
  private refreshing: Promise<AwsCredentials> | undefined;

  constructor(
    readonly config: WebIdentityConfig,
    private readonly now: () => number = Date.now,
    private readonly fetchCredentials: (c: WebIdentityConfig) => Promise<TemporaryCredentials> = assumeRoleWithWebIdentity,
  ) {}

  /** Valid credentials now (synchronously) when cached; otherwise the pending STS call. */
  get(): AwsCredentials | Promise<AwsCredentials> {
    const current = this.current;
    const left = current ? current.expiresAt - this.now() : 0;
    if (current && left > 0) {
      if (left < REFRESH_BEFORE_MS) void this.refresh().catch(() => undefined);
      return current.credentials;
    }
    return this.refresh();
  }

  private refresh(): Promise<AwsCredentials> {
    this.refreshing ??= this.fetchCredentials(this.config).then(
      (fresh) => {
        this.refreshing = undefined;
        this.current = fresh;
        return fresh.credentials;
      },
      (err: unknown) => {
        this.refreshing = undefined;
        throw err instanceof Error ? err : new Error(String(err));
      },
    );
    return this.refreshing;
  }
}

let processSource: WebIdentityCredentials | Error | undefined;

/** The process's web-identity credentials (one source for every provider without a credential Secret). */
export function webIdentityCredentials(): WebIdentityCredentials | Error {
  if (!processSource) {
    const config = webIdentityFromEnv();
    processSource = config
      ? new WebIdentityCredentials(config)
      : new Error('no credentialSecretRef (AWS credentials JSON) is configured and the web identity environment (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) is not set');
  }
  return processSource;
}
