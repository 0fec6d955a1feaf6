import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import type { AdmissionDeps } from './admission.js';
import { createApp } from './app.js';
import type { ServerConfig } from './config.js';
import { recordServingCertificate, type WebhookMetrics } from './metrics.js';
import { TlsFiles } from './tls-files.js';
import { sleep } from '../shared/sleep.js';

export interface WebhookServerOptions {
  server: ServerConfig;
  deps: AdmissionDeps;
  metrics: WebhookMetrics;
  logger: Logger;
  tlsPollMs?: number;
}

export interface RunningWebhook {
  server: Server;
  port: number;
  tls: TlsFiles;
  ready: () => boolean;
  /** stop taking new connections, let in-flight reviews finish, then close */
  shutdown: () => Promise<void>;
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<RunningWebhook> {
  const { server: config, deps, logger } = options;
  let draining = false;
  const tls = new TlsFiles({
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    logger,
    pollMs: options.tlsPollMs,
    onLoad: (pair) => {
      server.setSecureContext(pair);
      recordServingCertificate(options.metrics, pair.cert);
    },
  });
  const ready = () => !draining && tls.loaded() && deps.secrets.ready();
  const app = createApp({ deps, metrics: options.metrics, logger, bodyLimit: config.bodyLimit, ready });
  // No certificate yet is fine: handshakes fail until the files appear, and /readyz says so.
  const server = createServer({ minVersion: 'TLSv1.2' }, app);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await tls.start();

  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => {
      tls.close();
      reject(error);
    };
    server.once('error', failed);
    server.listen(config.port, config.address, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ address: config.address, port, tlsLoaded: tls.loaded() }, 'webhook listening');

  const shutdown = async () => {
    draining = true;
    // Endpoints controllers need a moment to stop routing to a pod that is going away.
    await sleep(config.shutdownDelaySeconds * 1000);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const forced = setTimeout(() => server.closeAllConnections(), config.drainTimeoutSeconds * 1000);
    await closed;
    clearTimeout(forced);
    tls.close();
    deps.secrets.close();
  };
  return { server, port, tls, ready, shutdown };
}

