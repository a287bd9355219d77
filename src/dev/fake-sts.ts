/**
 * A fake AWS STS for tests: AssumeRoleWithWebIdentity only, built from AWS's published API reference
 * (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html). It VERIFIES
 * what it receives like the real service: a form-encoded POST to / with Action and Version, the
 * expected RoleArn (403 AccessDenied otherwise), a valid RoleSessionName, DurationSeconds within
 * 900..43200 when given, and the expected web identity token (400 InvalidIdentityToken otherwise). It answers with the configured temporary credentials in STS's
 * XML shape, expiring `lifetimeS` from now.
 */
import { LoopbackFake } from './fake-listen.js';

export interface StsBehaviour {
  roleArn: string;
  /** The token the projected service-account token file must hold. */
  token: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  lifetimeS: number;
}

export interface StsCall {
  readonly form: Readonly<Record<string, string>>;
  readonly contentType: string | undefined;
  /** The Authorization header (AssumeRoleWithWebIdentity is unsigned: a client should send none). */
  readonly authorization: string | undefined;
  status: number;
}

const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export class FakeSts extends LoopbackFake {
  readonly calls: StsCall[] = [];

  constructor(readonly behaviour: StsBehaviour) {
    super();
  }

  get url(): string {
    return `http://127.0.0.1:${this.portNumber}`;
  }

  async start(): Promise<void> {
    await this.listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        const call: StsCall = { form, contentType: req.headers['content-type'], authorization: req.headers['authorization'], status: 200 };
        this.calls.push(call);
        const fail = (status: number, code: string, message: string): void => {
          call.status = status;
          res.writeHead(status, { 'content-type': 'text/xml' });
          res.end(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>fake</RequestId></ErrorResponse>`);
        };
        const b = this.behaviour;
        if (req.method !== 'POST' || !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return fail(400, 'InvalidAction', 'expected a form-encoded POST');
        if ((req.url ?? '/').split('?')[0] !== '/') return fail(404, 'UnknownOperation', `no operation at ${req.url ?? ''}`);
        if (form['Action'] !== 'AssumeRoleWithWebIdentity' || form['Version'] !== '2011-06-15') return fail(400, 'InvalidAction', `Could not find operation ${form['Action']} for version ${form['Version']}`);
        if (!SESSION_NAME.test(form['RoleSessionName'] ?? '')) return fail(400, 'ValidationError', "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint");
        const duration = form['DurationSeconds'];
        if (duration !== undefined && !(/^\d+$/.test(duration) && Number(duration) >= 900 && Number(duration) <= 43200)) return fail(400, 'ValidationError', "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint");
        if (form['WebIdentityToken'] !== b.token) return fail(400, 'InvalidIdentityToken', 'Incorrect token audience or signature');
        if (form['RoleArn'] !== b.roleArn) return fail(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
        const expiration = new Date(Date.now() + b.lifetimeS * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(
          `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>` +
            `<SubjectFromWebIdentityToken>system:serviceaccount:default:tollgate</SubjectFromWebIdentityToken>` +
            `<AssumedRoleUser><Arn>${xmlEscape(b.roleArn)}/${xmlEscape(form['RoleSessionName'] ?? '')}</Arn><AssumedRoleId>AROAFAKE:${xmlEscape(form['RoleSessionName'] ?? '')}</AssumedRoleId></AssumedRoleUser>` +
            `<Credentials><SessionToken>${xmlEscape(b.sessionToken)}</SessionToken><SecretAccessKey>${xmlEscape(b.secretAccessKey)}</SecretAccessKey>` +
            `<Expiration>${expiration}</Expiration><AccessKeyId>${xmlEscape(b.accessKeyId)}</AccessKeyId></Credentials>` +
            `<Audience>sts.amazonaws.com</Audience></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
        );
      });
    });
  }
}
