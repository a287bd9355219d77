/**
 * A fake Google Compute Engine metadata server, as GKE's Workload Identity metadata server serves it to
 * a Pod, for tests. Built from Google's published reference
 * (https://cloud.google.com/compute/docs/metadata/querying-metadata,
 * https://cloud.google.com/compute/docs/access/authenticate-workloads#applications and
 * https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity#metadata_server). It
 * VERIFIES what it receives like the real server: GET only; the `Metadata-Flavor: Google` header is
 * required (403 otherwise) and a request carrying `X-Forwarded-For` is refused (403), as the real
 * server does to stop proxied requests; unknown paths are 404. Every answer carries
 * `Metadata-Flavor: Google`, which clients check.
 *
 * Served: /computeMetadata/v1/instance (discovery ping), .../instance/service-accounts/default/email,
 * .../instance/service-accounts/default/token (?scopes=a,b) -> {access_token, expires_in, token_type},
 * /computeMetadata/v1/project/project-id. Tokens come from `issue` (for example the fake Vertex AI's
 * mintToken, so the fake API accepts exactly the tokens this server handed out). `refuse` makes the
 * token endpoint answer 403 with that text, as GKE does for a Kubernetes service account that is not
 * allowed to impersonate its Google service account.
 */
import { LoopbackFake } from './fake-listen.js';

export interface GceMetadataBehaviour {
  /** The Google service account the Pod runs as. */
  serviceAccount: string;
  projectId: string;
  /** Token lifetime handed out (expires_in). */
  lifetimeS: number;
  /** When set, the token endpoint answers 403 with this text. */
  refuse: string | undefined;
}

export interface GceMetadataCall {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly flavor: string | undefined;
  status: number;
}

const BASE = '/computeMetadata/v1';

export class FakeGceMetadata extends LoopbackFake {
  readonly calls: GceMetadataCall[] = [];
  readonly behaviour: GceMetadataBehaviour;

  constructor(
    /** Mints an access token valid for `lifetimeS`. */
    private readonly issue: (lifetimeS: number) => string,
    behaviour: Partial<GceMetadataBehaviour> = {},
  ) {
    super();
    this.behaviour = { serviceAccount: 'tollgate@fake-project.iam.gserviceaccount.com', projectId: 'fake-project', lifetimeS: 3599, refuse: undefined, ...behaviour };
  }

  /** host:port, as GCE_METADATA_HOST takes it. */
  get host(): string {
    return `127.0.0.1:${this.portNumber}`;
  }

  /** Calls for access tokens (the discovery ping and other reads left out). */
  tokenCalls(): GceMetadataCall[] {
    return this.calls.filter((c) => c.path.endsWith('/token'));
  }

  async start(): Promise<void> {
    await this.listen((req, res) => {
      const url = new URL(req.url ?? '/', 'http://metadata.google.internal');
      const flavor = req.headers['metadata-flavor'];
      const call: GceMetadataCall = { method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), flavor: typeof flavor === 'string' ? flavor : undefined, status: 200 };
      this.calls.push(call);
      const answer = (status: number, body: string, type = 'application/text'): void => {
        call.status = status;
        res.writeHead(status, { 'metadata-flavor': 'Google', 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      req.resume();
      if (req.headers['x-forwarded-for'] !== undefined) return answer(403, 'Request denied: X-Forwarded-For header is not allowed');
      if (flavor !== 'Google') return answer(403, 'Missing required header "Metadata-Flavor": "Google"');
      if (req.method !== 'GET') return answer(405, 'Method not allowed');
      const b = this.behaviour;
      const sa = `${BASE}/instance/service-accounts/`;
      const account = url.pathname.startsWith(sa) ? url.pathname.slice(sa.length).split('/')[0] : undefined;
      // "default" and the account's own email name the same service account.
      const known = account === 'default' || account === b.serviceAccount;
      switch (url.pathname) {
        case `${BASE}/instance`:
        case `${BASE}/instance/`:
          return answer(200, 'attributes/\nhostname\nid\nservice-accounts/\nzone\n');
        case `${BASE}/project/project-id`:
          return answer(200, b.projectId);
        case `${sa}${account ?? ''}/email`:
          return known ? answer(200, b.serviceAccount) : answer(404, 'Not Found');
        case `${sa}${account ?? ''}/token`: {
          if (!known) return answer(404, 'Not Found');
          if (b.refuse !== undefined) return answer(403, b.refuse);
          let token: string;
          try {
            token = this.issue(b.lifetimeS);
          } catch (err) {
            return answer(500, `could not mint a token: ${err instanceof Error ? err.message : String(err)}`);
          }
          return answer(200, JSON.stringify({ access_token: token, expires_in: b.lifetimeS, token_type: 'Bearer' }), 'application/json');
        }
        default:
          return answer(404, 'Not Found');
      }
    });
  }
}
