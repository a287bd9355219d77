/**
 * A real Kubernetes control plane for integration tests: etcd + kube-apiserver (RBAC on, audit log
 * on) on free loopback ports in a temp dir, with kubectl and helm pointed at it. No Docker, no
 * controller-manager or kubelet: API objects are really created, validated (OpenAPI + CEL) and
 * authorised, but no Pods run. A missing etcd, openssl or binary fails loudly.
 *
 * Certificates, the service-account signing key and the admin token are made fresh per run.
 */
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../src/dev/envoy-config.js';
import OpenAI from 'openai';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { FakeProvider } from '../../src/dev/fake-provider.js';
import { ManagedProcess, freePort, startEnvoy, startGateway, waitFor } from '../../src/dev/local-stack.js';

const execFileP = promisify(execFile);

/** Result of running a CLI (kubectl, helm). */
export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ToolOptions {
  /** Text for stdin (for `kubectl apply -f -`). */
  readonly input?: string;
  /** Kubeconfig to use instead of the admin one. */
  readonly kubeconfig?: string;
  /** Resolve with a non-zero code instead of rejecting. */
  readonly allowFail?: boolean;
}

/** One API server audit event (the fields tests read). */
export interface AuditEvent {
  readonly verb: string;
  readonly user: { readonly username: string };
  readonly objectRef?: {
    readonly resource?: string;
    readonly subresource?: string;
    readonly namespace?: string;
    readonly name?: string;
    readonly apiGroup?: string;
  };
  readonly responseStatus?: { readonly code?: number };
  readonly requestURI: string;
  readonly stage: string;
  readonly stageTimestamp?: string;
}

export interface ControlPlane {
  readonly workDir: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  readonly caFile: string;
  /** Admin kubeconfig (system:masters). */
  readonly kubeconfig: string;
  readonly binDir: string;
  kubectl(args: readonly string[], options?: ToolOptions): Promise<ToolResult>;
  helm(args: readonly string[], options?: ToolOptions): Promise<ToolResult>;
  /** Writes a kubeconfig that authenticates with `token`; returns its path. */
  kubeconfigForToken(token: string, name: string): Promise<string>;
  /** Stops the API server (etcd keeps running). */
  stopApiServer(): Promise<void>;
  /** Starts the API server again on the same port with the same flags and waits for /readyz. */
  startApiServer(): Promise<void>;
  /** API server audit events so far (Metadata level, every user but the API server itself). */
  auditEvents(): Promise<AuditEvent[]>;
  stop(): Promise<void>;
}

/** Directory with kube-apiserver, kubectl and helm (built and cached by test/tools/build-control-plane.sh). */
export async function controlPlaneBin(): Promise<string> {
  let dir = process.env['TOLLGATE_CONTROL_PLANE_BIN'];
  if (!dir) {
    const { stdout } = await execFileP('bash', [join(REPO_ROOT, 'test/tools/build-control-plane.sh')], { maxBuffer: 1 << 20 });
    dir = stdout.trim().split('\n').pop() ?? '';
  }
  for (const bin of ['kube-apiserver', 'kubectl', 'helm']) {
    if (!existsSync(join(dir, bin))) {
      throw new Error(`control plane binary ${bin} missing in "${dir}": run test/tools/build-control-plane.sh`);
    }
  }
  return dir;
}

async function which(cmd: string): Promise<string> {
  try {
    const { stdout } = await execFileP('bash', ['-c', `command -v ${cmd}`]);
    return stdout.trim();
  } catch {
    throw new Error(`${cmd} is not installed; the Kubernetes tests need a real ${cmd} (Debian package ${cmd === 'etcd' ? 'etcd-server' : cmd})`);
  }
}

/** Runs a command; rejects on a non-zero exit unless allowFail. */
export function runTool(command: string, args: readonly string[], env: NodeJS.ProcessEnv, options: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    // A tool that exits before reading its input: report its exit code and stderr, not EPIPE.
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => {
      const result = { code: code ?? -1, stdout, stderr };
      if (result.code !== 0 && !options.allowFail) {
        reject(new Error(`${command} ${args.join(' ')} exited ${result.code}: ${stderr || stdout}`));
      } else resolve(result);
    });
    child.stdin.end(options.input ?? '');
  });
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  await execFileP('openssl', [...args], { cwd });
}

/** CA, API server serving cert, and the service-account signing key pair. */
async function makeCerts(dir: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=tollgate-test-ca'], dir);
  await writeFile(
    join(dir, 'san.cnf'),
    'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' +
      'extendedKeyUsage=serverAuth\n',
  );
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver'], dir);
  await openssl(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt', '-days', '2', '-extfile', 'san.cnf'], dir);
  await openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  await openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

function kubeconfigText(server: string, caFile: string, token: string, user: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: { server: "${server}", certificate-authority: "${caFile}" }
users:
- name: ${user}
  user: { token: "${token}" }
contexts:
- name: test
  context: { cluster: test, user: ${user}, namespace: default }
current-context: test
`;
}

/** GET with the admin token, trusting the test CA. */
function apiGet(server: string, path: string, ca: Buffer, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server}${path}`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const live = new Set<ManagedProcess>();
process.once('exit', () => {
  // Last resort if a test run dies without its after() hooks: never leave etcd or the API server behind.
  for (const p of live) if (p.running) p.child.kill('SIGKILL');
});

function launch(name: string, command: string, args: readonly string[], logFile: string): ManagedProcess {
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const proc = new ManagedProcess(name, child, logFile);
  live.add(proc);
  void proc.waitExit().then(() => live.delete(proc));
  return proc;
}

/** Name of the kind cluster when the suite runs in kind mode (`npm run e2e:kind`), else undefined. */
export const KIND_CLUSTER = process.env['TOLLGATE_E2E_KIND'] || undefined;

/**
 * Starts etcd + kube-apiserver and waits until the API server is ready. Pair with
 * `after(() => cp.stop())`. In kind mode (TOLLGATE_E2E_KIND set) attaches to that cluster instead.
 */
export async function startControlPlane(): Promise<ControlPlane> {
  if (KIND_CLUSTER) return attachKindCluster(KIND_CLUSTER);
  const binDir = await controlPlaneBin();
  const etcdBin = await which('etcd');
  await which('openssl');
  const workDir = await mkdtemp(join(tmpdir(), 'tg-k8s-'));
  const certs = join(workDir, 'pki');
  await mkdir(certs);
  const procs: ManagedProcess[] = [];
  let apiserver: ManagedProcess | undefined;
  const stopAll = async (): Promise<void> => {
    if (apiserver) await apiserver.stop('SIGTERM', 5000).catch(() => undefined);
    for (const p of procs.reverse()) await p.stop('SIGTERM', 5000).catch(() => undefined);
  };
  try {
    await makeCerts(certs);
    const adminToken = randomBytes(24).toString('hex');
    await writeFile(join(workDir, 'tokens.csv'), `${adminToken},admin,admin-uid,"system:masters"\n`);
    await writeFile(
      join(workDir, 'audit-policy.yaml'),
      `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:apiserver"]
- level: Metadata
`,
    );

    const etcdPort = await freePort();
    const peerPort = await freePort();
    const etcd = launch(
      'etcd',
      etcdBin,
      [
        '--name', 'test',
        '--data-dir', join(workDir, 'etcd'),
        '--listen-client-urls', `http://127.0.0.1:${etcdPort}`,
        '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `test=http://127.0.0.1:${peerPort}`,
        '--log-level', 'warn',
      ],
      join(workDir, 'etcd.log'),
    );
    procs.push(etcd);
    await waitFor('etcd /health', async () => {
      if (!etcd.running) throw new Error(`etcd exited; see ${etcd.logFile}`);
      const res = await fetch(`http://127.0.0.1:${etcdPort}/health`);
      return res.ok;
    });

    const port = await freePort();
    const server = `https://127.0.0.1:${port}`;
    const caFile = join(certs, 'ca.crt');
    const ca = await readFile(caFile);
    const apiArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(workDir, 'apiserver-certs')}`,
      `--tls-cert-file=${join(certs, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(certs, 'apiserver.key')}`,
      `--client-ca-file=${caFile}`,
      `--token-auth-file=${join(workDir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(certs, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(certs, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--endpoint-reconciler-type=none',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      `--audit-policy-file=${join(workDir, 'audit-policy.yaml')}`,
      `--audit-log-path=${join(workDir, 'audit.log')}`,
      '--audit-log-format=json',
    ];
    const startApi = async (): Promise<void> => {
      const proc = launch('kube-apiserver', join(binDir, 'kube-apiserver'), apiArgs, join(workDir, 'kube-apiserver.log'));
      apiserver = proc;
      await waitFor(
        'kube-apiserver /readyz',
        async () => {
          if (!proc.running) throw new Error(`kube-apiserver exited; see ${proc.logFile}`);
          const res = await apiGet(server, '/readyz', ca, adminToken);
          return res.status === 200;
        },
        90_000,
      ).catch(async (err: unknown) => {
        const log = await readFile(proc.logFile, 'utf8').catch(() => '');
        throw new Error(`${String(err)}\n--- kube-apiserver log (tail) ---\n${log.split('\n').slice(-30).join('\n')}`);
      });
    };
    await startApi();

    const kubeconfig = join(workDir, 'admin.kubeconfig');
    await writeFile(kubeconfig, kubeconfigText(server, caFile, adminToken, 'admin'));
    const helmHome = join(workDir, 'helm');
    const toolEnv = {
      HELM_CACHE_HOME: join(helmHome, 'cache'),
      HELM_CONFIG_HOME: join(helmHome, 'config'),
      HELM_DATA_HOME: join(helmHome, 'data'),
    };

    const cp: ControlPlane = {
      workDir,
      server,
      caFile,
      kubeconfig,
      binDir,
      kubectl: (args, options = {}) =>
        runTool(join(binDir, 'kubectl'), ['--kubeconfig', options.kubeconfig ?? kubeconfig, ...args], toolEnv, options),
      helm: (args, options = {}) =>
        runTool(join(binDir, 'helm'), ['--kubeconfig', options.kubeconfig ?? kubeconfig, ...args], toolEnv, options),
      kubeconfigForToken: async (token, name) => {
        const file = join(workDir, `${name}.kubeconfig`);
        await writeFile(file, kubeconfigText(server, caFile, token, name));
        return file;
      },
      stopApiServer: async () => {
        // kube-apiserver can linger after SIGTERM with watches open; a crash is the harder case anyway.
        await apiserver?.stop('SIGTERM', 2000);
      },
      startApiServer: startApi,
      auditEvents: async () => {
        const text = await readFile(join(workDir, 'audit.log'), 'utf8').catch(() => '');
        return text
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as AuditEvent);
      },
      stop: async () => {
        await stopAll();
        if (!process.env['TOLLGATE_KEEP_TEST_DIRS']) await rm(workDir, { recursive: true, force: true, maxRetries: 5 });
      },
    };
    return cp;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The Helm chart against the control plane: install it, then run the pod's two processes locally.

export interface InstallOptions {
  readonly namespace: string;
  readonly release: string;
  /** `--set` values. */
  readonly set?: readonly string[];
}

/** `helm install` of charts/tollgate (CRDs, RBAC, ConfigMaps, Deployment... really created). */
export async function installChart(cp: ControlPlane, options: InstallOptions): Promise<void> {
  await cp.kubectl(['create', 'namespace', options.namespace]);
  const set = (options.set ?? []).flatMap((s) => ['--set', s]);
  if (KIND_CLUSTER) {
    // A real cluster: the pod runs the built image; traffic enters through the NodePort kind maps.
    const image = process.env['TOLLGATE_E2E_IMAGE'] ?? 'tollgate:e2e';
    const [repository, tag] = image.split(':');
    const kindSet = [`image.repository=${repository}`, `image.tag=${tag ?? 'latest'}`, 'image.pullPolicy=Never', 'replicaCount=1', 'tollgate.logLevel=debug', 'service.type=NodePort', `service.nodePort=${KIND_NODE_PORT}`];
    await cp.helm(['install', options.release, join(REPO_ROOT, 'charts/tollgate'), '--namespace', options.namespace, ...set, ...kindSet.flatMap((s) => ['--set', s]), '--wait', '--timeout', '5m']);
    return;
  }
  // No --wait: this control plane runs no Pods (no kubelet); the test runs the pod's processes.
  await cp.helm(['install', options.release, join(REPO_ROOT, 'charts/tollgate'), '--namespace', options.namespace, ...set]);
}

/** `helm upgrade --reuse-values` replacing gateway.modelMappings. */
async function upgradeMappings(cp: ControlPlane, options: { namespace: string; release: string }, mappings: Readonly<Record<string, string>>): Promise<void> {
  const file = join(cp.workDir, `mappings-${Date.now()}.yaml`);
  await writeFile(file, stringifyYaml({ gateway: { modelMappings: mappings } }));
  await cp.helm(['upgrade', options.release, join(REPO_ROOT, 'charts/tollgate'), '--namespace', options.namespace, '--reuse-values', '-f', file]);
}

export interface EnvoyLocalPorts {
  readonly listenPort: number;
  readonly adminPort: number;
  readonly healthPort: number;
  readonly socket: string;
  /** Replaces /etc/tollgate/tls (TLS cert directory in the pod). */
  readonly tlsDir?: string;
}

/**
 * Adapts the Envoy bootstrap the chart rendered for the pod to this machine: loopback addresses,
 * free ports, the local ext_proc socket. Everything else (filters, processing modes, clusters,
 * routes, local replies) is used exactly as the chart rendered it.
 */
export function adaptChartEnvoyConfig(text: string, ports: EnvoyLocalPorts): string {
  let out = text
    .replaceAll('/run/tollgate/extproc.sock', ports.socket)
    .replaceAll('/run/tollgate/mcp.sock', join(dirname(ports.socket), 'mcp.sock'))
    .replaceAll('/etc/tollgate/tls', ports.tlsDir ?? '/etc/tollgate/tls');
  const doc = parseYaml(out) as EnvoyBootstrap;
  doc.admin.address.socket_address.port_value = ports.adminPort;
  for (const l of doc.static_resources.listeners) {
    if (!l.address) continue; // internal listeners (tollgate_attempt) have no network address
    l.address.socket_address.address = '127.0.0.1';
    l.address.socket_address.port_value = l.name === 'envoy_health' ? ports.healthPort : ports.listenPort;
  }
  for (const c of doc.static_resources.clusters) {
    if (c.name !== 'envoy_admin') continue;
    const ep = c.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address;
    if (ep) ep.port_value = ports.adminPort;
  }
  out = stringifyYaml(doc);
  return out;
}

/** The parts of an Envoy bootstrap the adapter touches. */
interface EnvoyBootstrap {
  admin: { address: { socket_address: { address: string; port_value: number } } };
  static_resources: {
    listeners: { name: string; address?: { socket_address: { address: string; port_value: number } } }[];
    clusters: {
      name: string;
      load_assignment?: {
        endpoints?: { lb_endpoints?: { endpoint?: { address?: { socket_address?: { port_value: number } } } }[] }[];
      };
    }[];
  };
}

export interface ChartGateway {
  readonly baseUrl: string;
  /** HTTP status of Tollgate's /readyz (works while the API server is down). */
  tollgateReady(): Promise<number>;
  /** HTTP status of Envoy's /ready through the chart's health listener. */
  envoyReady(): Promise<number>;
  /** Tollgate's JSON log lines so far. */
  logs(): Promise<Record<string, unknown>[]>;
  /**
   * `helm upgrade` with new `gateway.modelMappings` values, then lets the pod see the new ConfigMap:
   * locally by swapping the mounted file as the kubelet does (write + rename); in kind the kubelet
   * does it itself (within about a minute).
   */
  setGlobalMappings(mappings: Readonly<Record<string, string>>): Promise<void>;
  /** Freezes / thaws the Tollgate process (SIGSTOP / SIGCONT), so it misses events. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  client(apiKey: string): OpenAI;
  stop(): Promise<void>;
}

/**
 * Runs the chart's pod locally: Tollgate with `--source kubernetes` authenticated as the chart's
 * ServiceAccount (a TokenRequest token, so RBAC is exactly what the chart grants) with the args
 * the chart's Deployment gives it, and a real Envoy with the bootstrap from the chart's ConfigMap.
 */
export async function startChartGateway(
  cp: ControlPlane,
  options: { namespace: string; release: string; name: string; /** 0 for the first replica, 1 for a second... */ replica?: number },
): Promise<ChartGateway> {
  if (KIND_CLUSTER) return kindChartGateway(cp, options, options.replica ?? 0);
  const { namespace: ns, release } = options;
  const fullname = `${release}-tollgate`;
  const workDir = join(cp.workDir, options.name);
  await mkdir(workDir, { recursive: true });
  const token = (await cp.kubectl(['create', 'token', fullname, '-n', ns, '--duration=3600s'])).stdout.trim();
  const kubeconfig = await cp.kubeconfigForToken(token, `sa-${options.name}`);

  // The Tollgate container's args from the Deployment, with the pod paths mapped to local ones.
  const deployment = JSON.parse((await cp.kubectl(['get', 'deployment', fullname, '-n', ns, '-o', 'json'])).stdout) as {
    spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } };
  };
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'tollgate');
  if (!container?.args) throw new Error('chart Deployment has no tollgate container args');
  const gatewayFile = join(workDir, 'gateway', 'gateway.yaml');
  await mkdir(join(workDir, 'gateway'), { recursive: true });
  await writeFile(gatewayFile, (await cp.kubectl(['get', 'configmap', `${fullname}-gateway`, '-n', ns, '-o', 'jsonpath={.data.gateway\\.yaml}'])).stdout);
  const ports = { listenPort: await freePort(), adminPort: await freePort(), healthPort: await freePort() };
  const args = container.args
    .filter((a) => !a.startsWith('--extproc-address=') && !a.startsWith('--mcp-address=') && !a.startsWith('--admin-port=') && !a.startsWith('--pod-token-file='))
    .map((a) => (a.startsWith('--gateway-config=') ? `--gateway-config=${gatewayFile}` : a))
    .map((a) => (a.startsWith('--envoy-admin-url=') ? `--envoy-admin-url=http://127.0.0.1:${ports.adminPort}` : a));

  const gw = await startGateway({
    workDir,
    extraArgs: [...args, `--namespace=${ns}`],
    env: { KUBECONFIG: kubeconfig, TOLLGATE_LOG_LEVEL: 'debug' },
  });
  const stopGw = (): Promise<void> => gw.process.stop();
  try {
    const envoyText = (await cp.kubectl(['get', 'configmap', `${fullname}-envoy`, '-n', ns, '-o', 'jsonpath={.data.envoy\\.yaml}'])).stdout;
    const envoy = await startEnvoy({
      workDir,
      extprocSocket: gw.socket,
      listenPort: ports.listenPort,
      adminPort: ports.adminPort,
      configText: adaptChartEnvoyConfig(envoyText, { ...ports, socket: gw.socket }),
    });
    const baseUrl = `http://127.0.0.1:${envoy.port}`;
    return {
      baseUrl,
      pause: async () => {
        gw.process.child.kill('SIGSTOP');
      },
      resume: async () => {
        gw.process.child.kill('SIGCONT');
      },
      setGlobalMappings: async (mappings) => {
        await upgradeMappings(cp, options, mappings);
        const text = (await cp.kubectl(['get', 'configmap', `${fullname}-gateway`, '-n', ns, '-o', 'jsonpath={.data.gateway\\.yaml}'])).stdout;
        const tmp = join(workDir, 'gateway', '..gateway.yaml.tmp');
        await writeFile(tmp, text);
        await rename(tmp, gatewayFile);
      },
      tollgateReady: async () => (await fetch(`http://127.0.0.1:${gw.adminPort}/readyz`)).status,
      envoyReady: async () => (await fetch(`http://127.0.0.1:${ports.healthPort}/ready`)).status,
      logs: async () =>
        (await readFile(gw.process.logFile, 'utf8'))
          .split('\n')
          .slice(0, -1) // the text after the last newline may be half a line still being written
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      client: (apiKey) => new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0, timeout: 30_000 }),
      stop: async () => {
        await envoy.process.stop().catch(() => undefined);
        await stopGw().catch(() => undefined);
      },
    };
  } catch (err) {
    await stopGw();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// kind mode (`npm run e2e:kind`, machines with Docker): the same suite against a kind cluster.

/** NodePort of the gateway Service, mapped to the host by kind-config.yaml. */
export const KIND_NODE_PORT = 30080;

/** Base URL of a fake provider as the gateway pods reach it (the host, in kind mode). */
export function fakeUrl(fake: FakeProvider): string {
  const host = process.env['TOLLGATE_E2E_HOST_IP'];
  return KIND_CLUSTER && host ? `http://${host}:${fake.port}/v1` : fake.url;
}

/** Address fake providers listen on: all interfaces in kind mode (pods call them), else loopback. */
export function fakeListenHost(): string {
  return KIND_CLUSTER ? '0.0.0.0' : '127.0.0.1';
}

async function onPath(cmd: string): Promise<string> {
  const dir = process.env['TOLLGATE_CONTROL_PLANE_BIN'];
  if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  return which(cmd);
}

async function attachKindCluster(cluster: string): Promise<ControlPlane> {
  const workDir = await mkdtemp(join(tmpdir(), 'tg-kind-'));
  const kubectlBin = await onPath('kubectl');
  const helmBin = await onPath('helm');
  const node = `${cluster}-control-plane`;
  const kubeconfig = join(workDir, 'kind.kubeconfig');
  await writeFile(kubeconfig, (await runTool('kind', ['get', 'kubeconfig', '--name', cluster], {})).stdout);
  const kubectl = (args: readonly string[], options: ToolOptions = {}): Promise<ToolResult> =>
    runTool(kubectlBin, ['--kubeconfig', options.kubeconfig ?? kubeconfig, ...args], {}, options);
  const server = (await kubectl(['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'])).stdout;
  const apiReady = async (): Promise<boolean> => (await kubectl(['get', '--raw', '/readyz'], { allowFail: true })).code === 0;
  return {
    workDir,
    server,
    caFile: '',
    kubeconfig,
    binDir: dirname(kubectlBin),
    kubectl,
    helm: (args, options = {}) => runTool(helmBin, ['--kubeconfig', options.kubeconfig ?? kubeconfig, ...args], {}, options),
    kubeconfigForToken: () => Promise.reject(new Error('kind mode runs the gateway in the cluster; no local token needed')),
    stopApiServer: async () => {
      // Stop the static pod's container; the kubelet starts it again shortly (like a crash).
      await runTool('docker', ['exec', node, 'sh', '-c', 'crictl ps -q --name kube-apiserver | xargs -r crictl stop'], {});
      await waitFor('kube-apiserver to go away', async () => !(await apiReady()), 30_000);
    },
    startApiServer: () => waitFor('kube-apiserver back (kubelet restart)', apiReady, 120_000),
    auditEvents: async () => {
      const { stdout } = await runTool('docker', ['exec', node, 'cat', '/var/log/kubernetes/audit.log'], {}, { allowFail: true });
      return stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as AuditEvent);
    },
    stop: () => rm(workDir, { recursive: true, force: true }),
  };
}

/**
 * One of the chart's pods as deployed in kind. Replica 0 takes traffic through the NodePort;
 * further replicas are scaled up and reached through `kubectl port-forward` to that pod.
 */
async function kindChartGateway(cp: ControlPlane, options: { namespace: string; release: string }, replica: number): Promise<ChartGateway> {
  const ns = options.namespace;
  const selector = `app.kubernetes.io/instance=${options.release}`;
  const deployment = `deployment/${options.release}-tollgate`;
  if (replica > 0) {
    await cp.kubectl(['scale', deployment, '-n', ns, `--replicas=${replica + 1}`]);
    await cp.kubectl(['rollout', 'status', deployment, '-n', ns, '--timeout=180s']);
  }
  const pods = JSON.parse((await cp.kubectl(['get', 'pods', '-n', ns, '-l', selector, '-o', 'json'])).stdout) as {
    items: { metadata: { name: string; creationTimestamp: string; deletionTimestamp?: string }; status: { podIP?: string } }[];
  };
  const live = pods.items.filter((p) => !p.metadata.deletionTimestamp).sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp));
  const pod = live[replica];
  if (!pod?.status.podIP) throw new Error(`no running pod for replica ${replica}`);
  const podIp = pod.status.podIP;
  const node = `${KIND_CLUSTER}-control-plane`;
  const curl = async (url: string): Promise<number> => {
    const r = await runTool('docker', ['exec', node, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', url], {}, { allowFail: true });
    return Number(r.stdout) || 0;
  };
  let baseUrl = `http://127.0.0.1:${KIND_NODE_PORT}`;
  let forward: ManagedProcess | undefined;
  if (replica > 0) {
    const port = await freePort();
    forward = launch('port-forward', join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfig, 'port-forward', '-n', ns, `pod/${pod.metadata.name}`, `${port}:8080`], join(cp.workDir, `port-forward-${replica}.log`));
    await waitFor('kubectl port-forward', async () => (await readFile(join(cp.workDir, `port-forward-${replica}.log`), 'utf8')).includes('Forwarding from'));
    baseUrl = `http://127.0.0.1:${port}`;
  }
  // The Tollgate container's main process, signalled from the node (the test owns this cluster).
  const signal = async (sig: string): Promise<void> => {
    const container = (await runTool('docker', ['exec', node, 'crictl', 'ps', '-q', '--name', 'tollgate', '--pod', (await runTool('docker', ['exec', node, 'crictl', 'pods', '-q', '--name', pod.metadata.name], {})).stdout.trim()], {})).stdout.trim();
    const pid = (await runTool('docker', ['exec', node, 'crictl', 'inspect', '-o', 'go-template', '--template', '{{.info.pid}}', container], {})).stdout.trim();
    await runTool('docker', ['exec', node, 'kill', `-${sig}`, pid], {});
  };
  return {
    baseUrl,
    pause: () => signal('STOP'),
    resume: () => signal('CONT'),
    setGlobalMappings: (mappings) => upgradeMappings(cp, options, mappings),
    tollgateReady: () => curl(`http://${podIp}:9090/readyz`),
    envoyReady: () => curl(`http://${podIp}:19001/ready`),
    logs: async () =>
      (await cp.kubectl(['logs', '-n', ns, `pod/${pod.metadata.name}`, '-c', 'tollgate', '--tail=-1'])).stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    client: (apiKey) => new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0, timeout: 30_000 }),
    stop: async () => {
      await forward?.stop();
      // Deleting the pod sends SIGTERM to its containers, as stopping a local replica does.
      await cp.kubectl(['delete', 'pod', pod.metadata.name, '-n', ns, '--wait=false'], { allowFail: true });
    },
  };
}
