/**
 * A fake Google Security Token Service (sts.googleapis.com/v1/token) for workload identity
 * federation tests, built from Google's published reference
 * (https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token, RFC 8693 token exchange).
 * It VERIFIES what it receives like the real service: a form-encoded POST to /v1/token with
 * grant_type token-exchange, requested_token_type access_token, the workload identity pool
 * provider's `audience`, a supported subject_token_type and the external token the provider trusts
 * (`subjectToken`; 400 invalid_grant otherwise), and a scope. It answers with a federated access
 * token minted by `issue` (the fake Vertex AI's mintToken, so that API accepts it).
 */
import { LoopbackFake } from './fake-listen.js';

export interface GoogleStsBehaviour {
  /** //iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/providers/<provider> */
  audience: string;
  /** The external (for example Kubernetes OIDC) token the pool provider trusts. */
  subjectToken: string;
  lifetimeS: number;
}

export interface GoogleStsCall {
  readonly form: Readonly<Record<string, string>>;
  status: number;
}

const SUBJECT_TOKEN_TYPES: ReadonlySet<string> = new Set(['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:aws:token-type:aws4_request', 'urn:ietf:params:oauth:token-type:saml2']);

export class FakeGoogleSts extends LoopbackFake {
  readonly calls: GoogleStsCall[] = [];
  readonly behaviour: GoogleStsBehaviour;

  constructor(
    private readonly issue: (lifetimeS: number) => string,
    behaviour: Pick<GoogleStsBehaviour, 'audience' | 'subjectToken'> & Partial<GoogleStsBehaviour>,
  ) {
    super();
    this.behaviour = { lifetimeS: 3600, ...behaviour };
  }

  /** The token_url of an external_account credential file. */
  get tokenUrl(): string {
    return `http://127.0.0.1:${this.portNumber}/v1/token`;
  }

  async start(): Promise<void> {
    await this.listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        const call: GoogleStsCall = { form, status: 200 };
        this.calls.push(call);
        const send = (status: number, body: Record<string, unknown>): void => {
          call.status = status;
          const text = JSON.stringify(body);
          res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        };
        const deny = (error: string, description: string): void => send(400, { error, error_description: description });
        const b = this.behaviour;
        if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/v1/token') return send(404, { error: { code: 404, message: 'Not Found', status: 'NOT_FOUND' } });
        if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return deny('invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
        if (form['grant_type'] !== 'urn:ietf:params:oauth:grant-type:token-exchange') return deny('unsupported_grant_type', `Invalid value for "grant_type": ${form['grant_type'] ?? ''}`);
        if (form['requested_token_type'] !== 'urn:ietf:params:oauth:token-type:access_token') return deny('invalid_request', 'Invalid value for "requested_token_type"');
        if (!SUBJECT_TOKEN_TYPES.has(form['subject_token_type'] ?? '')) return deny('invalid_request', 'Invalid value for "subject_token_type"');
        if (form['audience'] !== b.audience) return deny('invalid_target', 'The target service indicated by the "audience" parameters is invalid.');
        if (!form['scope']) return deny('invalid_scope', 'Scope is required');
        if (form['subject_token'] !== b.subjectToken) return deny('invalid_grant', 'The given subject token is invalid or expired.');
        send(200, { access_token: this.issue(b.lifetimeS), issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: b.lifetimeS });
      });
    });
  }
}
