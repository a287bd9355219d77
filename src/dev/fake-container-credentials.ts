/**
 * A fake container credentials endpoint for tests: the EKS Pod Identity Agent
 * (http://169.254.170.23/v1/credentials) or ECS's (169.254.170.2), built from AWS's published
 * description of the container credential provider
 * (https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html,
 * https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html). It VERIFIES what it
 * receives like the agent: a GET of its one path (404 otherwise), an Authorization header equal to the
 * service-account token it expects (400 when missing, 401 when it is another token; answers carry
 * AWS's {Code, Message} body). It answers with the configured temporary credentials,
 * {AccessKeyId, SecretAccessKey, Token, AccountId, Expiration}, expiring `lifetimeS` from now
 * (RFC 3339, whole seconds, as the agent writes it).
 */
import { LoopbackFake } from './fake-listen.js';

export interface ContainerCredentialsBehaviour {
  /** The token the request's Authorization header must carry; undefined: none required (ECS without a token). */
  token: string | undefined;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  lifetimeS: number;
  /** The path the credentials are served at. */
  path: string;
}

export interface ContainerCredentialsCall {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  status: number;
}

export class FakeContainerCredentials extends LoopbackFake {
  readonly calls: ContainerCredentialsCall[] = [];
  readonly behaviour: ContainerCredentialsBehaviour;

  constructor(behaviour: Partial<ContainerCredentialsBehaviour> & Pick<ContainerCredentialsBehaviour, 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>) {
    super();
    this.behaviour = { token: undefined, lifetimeS: 6 * 3600, path: '/v1/credentials', ...behaviour };
  }

  /** The AWS_CONTAINER_CREDENTIALS_FULL_URI of this fake (loopback: a host the AWS SDK accepts over HTTP). */
  get url(): string {
    return `http://127.0.0.1:${this.portNumber}${this.behaviour.path}`;
  }

  async start(): Promise<void> {
    await this.listen((req, res) => {
      const call: ContainerCredentialsCall = { method: req.method ?? '', path: req.url ?? '', authorization: req.headers['authorization'], status: 200 };
      this.calls.push(call);
      req.resume();
      const answer = (status: number, body: Record<string, unknown>): void => {
        call.status = status;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const b = this.behaviour;
      if (req.method !== 'GET') return answer(405, { Code: 'MethodNotAllowed', Message: 'only GET is supported' });
      if (call.path !== b.path) return answer(404, { Code: 'NotFound', Message: `no credentials at ${call.path}` });
      if (b.token !== undefined) {
        if (call.authorization === undefined || call.authorization === '') return answer(400, { Code: 'InvalidToken', Message: 'Service account token cannot be empty' });
        if (call.authorization !== b.token) return answer(401, { Code: 'AccessDeniedException', Message: 'Service account token is invalid' });
      }
      const expiration = new Date(Date.now() + b.lifetimeS * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      answer(200, { AccessKeyId: b.accessKeyId, SecretAccessKey: b.secretAccessKey, Token: b.sessionToken, AccountId: '123456789012', Expiration: expiration });
    });
  }
}
