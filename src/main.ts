/** Wires the processes together: config source -> store -> ext_proc server, plus admin server. */
import { FileConfigSource } from './config/file-source.js';
import { ConfigStore } from './config/store.js';
import { startExtProcServer, stopExtProcServer } from './extproc/server.js';
import { recordRequest } from './observability/access-log.js';
import { startAdminServer } from './observability/http-server.js';
import { createLogger } from './observability/logger.js';
import { readSettings } from './settings.js';

async function main(): Promise<void> {
  const logger = createLogger();
  const settings = readSettings(process.argv.slice(2));
  const store = new ConfigStore();
  const source = new FileConfigSource({ directory: settings.configDir, store, logger: logger.child({ component: 'config' }) });
  await source.start();

  const accessLogger = logger.child({ component: 'access' });
  const { server } = await startExtProcServer(settings.extprocAddress, {
    store,
    logger: logger.child({ component: 'extproc' }),
    onFinalize: (ctx, outcome) => recordRequest(accessLogger, ctx, outcome),
  });
  const admin = await startAdminServer({ host: settings.adminHost, port: settings.adminPort, ready: () => store.ready });
  logger.info({ extproc: settings.extprocAddress, admin: `${settings.adminHost}:${admin.port}` }, 'tollgate ready');

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: settings.shutdownGraceMs }, 'shutting down; letting open streams finish');
    source.stop();
    void stopExtProcServer(server, settings.shutdownGraceMs).then(() => {
      admin.server.close();
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  const logger = createLogger();
  logger.fatal({ err }, 'tollgate failed to start');
  logger.flush();
  process.exitCode = 1;
});
