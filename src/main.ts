/** Wires the processes together: config source -> store -> ext_proc server, plus admin server. */
import type pg from 'pg';
import { AdminAuthorizer, createPodCredential, operatorCredentialFromFile } from './admin/authorizer.js';
import { FileConfigSource } from './config/file-source.js';
import { KubeConfig } from '@kubernetes/client-node';
import { EndpointSliceDiscovery } from './controller/endpoint-slices.js';
import { KubernetesConfigSource } from './controller/source.js';
import { ConfigStore } from './config/store.js';
import { inflightRequests, startExtProcServer, stopExtProcServer } from './extproc/server.js';
import { Drainer } from './lifecycle/drain.js';
import { GuardrailStep } from './guardrails/step.js';
import { Shutdown } from './lifecycle/shutdown.js';
import { recordRequest } from './observability/access-log.js';
import { closeAdminServer, startAdminServer } from './observability/http-server.js';
import { createLogger } from './observability/logger.js';
import { HealthTracker } from './routing/health.js';
import { pickerPool } from './routing/picker.js';
import { ResilientRouter } from './routing/router.js';
import { createLimits } from './ratelimit/setup.js';
import { startLedger } from './ledger/setup.js';
import { RedisCancelRelay } from './mcp/cancel-relay.js';
import { McpListener } from './mcp/listener.js';
import { RedisSseRelay } from './mcp/sse-relay.js';
import { SessionSealer } from './mcp/session.js';
import { UpstreamPool } from './mcp/upstreams.js';
import type { DiscoveryView } from './controller/mcp-status.js';
import { keyStatusReader, type KeyStatusView } from './usage/status.js';
import { readSettings } from './settings.js';
import { reportCredentialEvents } from './providers/refreshing.js';
import { warmCredentials } from './providers/registry.js';
import { MemoryResponseDirectory, RedisResponseDirectory, type ResponseDirectory } from './responses/directory.js';

async function main(): Promise<void> {
  const logger = createLogger();
  const settings = readSettings(process.argv.slice(2));
  const store = new ConfigStore();
  // Expiring provider credentials (IRSA, Workload Identity, Vertex keys) are fetched as each configuration loads.
  store.onSwap(warmCredentials);
  const configLogger = logger.child({ component: 'config' });
  // Cloud credentials without a Secret (IRSA, Workload Identity): why a fetch failed goes to the log, not to clients.
  const credentialLogger = logger.child({ component: 'credentials' });
  reportCredentialEvents({
    refreshed: (source, expiresAt) => credentialLogger.info({ source, ...(expiresAt === undefined ? {} : { expiresAt: new Date(expiresAt).toISOString() }) }, 'provider credentials fetched'),
    failed: (source, error) => credentialLogger.warn({ source, error }, 'provider credentials could not be fetched'),
  });
  const src = settings.source;
  const kubeConfig = src.kind === 'kubernetes' ? loadKubeConfig() : undefined;
  // Self-hosted endpoints (ModelProvider spec.service) come from EndpointSlices in Kubernetes mode.
  const endpoints =
    src.kind === 'kubernetes' && kubeConfig
      ? new EndpointSliceDiscovery({ kubeConfig, namespace: src.namespace, logger: logger.child({ component: 'discovery' }) })
      : undefined;
  // Set once the limits runtime exists (below); the status writer only runs after the first sync.
  let readKeyStatus: ((name: string) => Promise<KeyStatusView | undefined>) | undefined;
  // Set once the MCP upstream pool exists (below).
  let probeMcp: ((name: string) => Promise<DiscoveryView | undefined>) | undefined;
  const source =
    src.kind === 'kubernetes'
      ? new KubernetesConfigSource({
          store,
          ...(kubeConfig ? { kubeConfig } : {}),
          logger: configLogger,
          namespace: src.namespace,
          secretSelector: src.secretSelector,
          ...(src.gatewayConfigFile ? { gatewayConfigFile: src.gatewayConfigFile } : {}),
          ...(src.leaseName ? { leaseName: src.leaseName } : {}),
          mcpStatus: { probe: (name: string) => (probeMcp ? probeMcp(name) : Promise.resolve(undefined)), intervalMs: 30_000 },
          usageStatus: { read: (name: string) => (readKeyStatus ? readKeyStatus(name) : Promise.resolve(undefined)), intervalMs: settings.limits.usageStatusMs },
        })
      : new FileConfigSource({ directory: src.configDir, store, logger: configLogger });
  // Admin first: liveness answers while the first config load (or Kubernetes sync) is pending.
  let serving = false;
  const lifecycleLogger = logger.child({ component: 'lifecycle' });
  const drainer = new Drainer({
    logger: lifecycleLogger,
    inflight: inflightRequests,
    envoyAdminUrl: settings.envoyAdminUrl,
    graceMs: settings.shutdownGraceMs,
  });
  // Set once everything is up; until then SIGTERM ends the process at once (nothing is served yet)
  // and POST /drain answers 500.
  let shutdown: Shutdown | undefined;
  const authorizer = new AdminAuthorizer([
    ...(settings.podTokenFile ? [await createPodCredential(settings.podTokenFile)] : []),
    ...(settings.adminTokenFile ? [await operatorCredentialFromFile(settings.adminTokenFile)] : []),
  ]);
  // Set once the ledger exists (below); the reports route answers 503 until then.
  let ledgerPool: (() => pg.Pool | undefined) | undefined;
  const admin = await startAdminServer({
    host: settings.adminHost,
    port: settings.adminPort,
    readiness: () => (drainer.draining ? { ready: false, reason: 'draining' } : serving && store.ready ? { ready: true } : { ready: false, reason: 'starting' }),
    authorizer,
    drain: (reason) => (shutdown ? shutdown.begin(reason) : Promise.reject(new Error('not started yet'))),
    logger: logger.child({ component: 'admin' }),
    usageReports: () => ledgerPool?.(),
  });
  await Promise.all([source.start(), endpoints?.start()]).catch((err: unknown) => {
    admin.server.close();
    throw err;
  });

  const accessLogger = logger.child({ component: 'access' });
  const routingLogger = logger.child({ component: 'routing' });
  const router = new ResilientRouter({
    health: new HealthTracker({ logger: routingLogger }),
    logger: routingLogger,
    picker: pickerPool(routingLogger),
    ...(endpoints ? { endpoints } : {}),
  });
  const limits = await createLimits(settings.limits, logger, store);
  readKeyStatus = keyStatusReader(store, limits.accountant);
  // The usage ledger's one writer: the status Lease holder in Kubernetes mode, else a Redis lock.
  const ledger = startLedger(settings.limits, logger, store, src.kind === 'kubernetes' && src.leaseName && source instanceof KubernetesConfigSource ? () => source.leading : undefined);
  ledgerPool = () => ledger?.pool;
  // Where stored Responses API responses live: shared through Redis by every replica, else in-process.
  const responsesLogger = logger.child({ component: 'responses' });
  // A Redis outage fails every lookup: warn at most once per 10 s, with how many failed meanwhile.
  let lastWarnMs = 0;
  let failed = 0;
  const directoryFailed = (op: string, err: unknown): void => {
    failed++;
    const now = Date.now();
    if (now - lastWarnMs < 10_000) return;
    lastWarnMs = now;
    responsesLogger.warn({ op, failed, err: err instanceof Error ? err.message : String(err) }, 'response directory: redis failed');
    failed = 0;
  };
  const responses: ResponseDirectory = limits.redis
    ? new RedisResponseDirectory(limits.redis, settings.limits.redisPrefix, settings.responses.ttlMs, Math.min(settings.responses.maxEntries, 10_000), directoryFailed)
    : new MemoryResponseDirectory(settings.responses.ttlMs, settings.responses.maxEntries);
  const { server } = await startExtProcServer(settings.extprocAddress, {
    store,
    responses,
    limits: limits.step,
    guardrails: new GuardrailStep({ logger: logger.child({ component: 'guardrails' }) }),
    logger: logger.child({ component: 'extproc' }),
    onFinalize: (ctx, outcome) => recordRequest(accessLogger, ctx, outcome),
    router,
  });
  // The MCP listener (Envoy routes /mcp to it): same store, key index, limiter and usage accountant.
  const mcpLogger = logger.child({ component: 'mcp' });
  if (!settings.mcp.sessionSecret) mcpLogger.warn('TOLLGATE_MCP_SESSION_SECRET is not set: MCP sessions are sealed with a per-process key and survive only on this replica');
  const upstreams = new UpstreamPool(mcpLogger);
  probeMcp = async (name) => {
    const server = store.current()?.mcp.servers.get(name);
    if (!server) return undefined;
    await upstreams.tools(server).catch(() => undefined); // the result is in health()
    return upstreams.health(server);
  };
  const mcp = new McpListener({
    store,
    maxBodyBytes: settings.mcp.maxBodyBytes,
    sessions: new SessionSealer(settings.mcp.sessionSecret),
    // A client's cancellation may reach another replica than the one running its call.
    ...(limits.redis ? { cancels: new RedisCancelRelay(limits.redis, settings.limits.redisPrefix, mcpLogger) } : {}),
    // An HTTP+SSE client's POST may reach another replica than the one holding its stream.
    ...(limits.redis ? { sseRelay: new RedisSseRelay(limits.redis, settings.limits.redisPrefix, mcpLogger, settings.mcp.maxBodyBytes) } : {}),
    upstreams,
    limiter: limits.limiter,
    accountant: limits.accountant,
    logger: mcpLogger,
  });
  await mcp.start(settings.mcp.address);
  serving = true;
  logger.info({ extproc: settings.extprocAddress, mcp: settings.mcp.address, admin: `${settings.adminHost}:${admin.port}` }, 'tollgate ready');

  let sourceStopped: Promise<unknown> = Promise.resolve();
  shutdown = new Shutdown({
    logger: lifecycleLogger,
    drainer,
    // Stop watching config now (the last snapshot keeps serving) and hand the status Lease to
    // another replica; bounded, so an unreachable API server cannot hold up the exit.
    onBegin: () => {
      sourceStopped = Promise.race([Promise.resolve(source.stop()), new Promise((r) => setTimeout(r, 3000).unref())]);
    },
    // Keep serving while Envoy drains (late requests still get answers), then close, flush buffered
    // usage records, and answer the preStop caller before the admin port closes.
    stop: async () => {
      await Promise.all([stopExtProcServer(server, 1000), mcp.stop(), sourceStopped, endpoints?.stop()]);
      await limits.close();
      await ledger?.close();
      await closeAdminServer(admin.server, 2000);
    },
    exit: (code) => process.exit(code),
  });
  process.on('SIGTERM', () => void shutdown?.begin('SIGTERM'));
  process.on('SIGINT', () => void shutdown?.begin('SIGINT'));
}

function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

main().catch((err: unknown) => {
  const logger = createLogger();
  logger.fatal({ err }, 'tollgate failed to start');
  logger.flush();
  process.exitCode = 1;
});
