import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { Logger } from '../../shared/logger.js';
import type { AdmissionDeps } from '../admission/admission.js';
import { createApp, createMetricsApp } from './app.js';
import type { ServerConfig } from '../config/config.js';
import { recordServingCertificate, type WebhookMetrics } from './metrics.js';
import { TlsFiles } from './tls-files.js';
import { guardConnections, type GuardedConnections } from '../../shared/connection-guard.js';
import { sleep } from '../../shared/sleep.js';

export interface WebhookServerOptions {
  server: ServerConfig;
  deps: AdmissionDeps;
  metrics: WebhookMetrics;
  logger: Logger;
  tlsPollMs?: number;
}

// TLS 1.3, and for TLS 1.2 only forward-secret AEAD suites: no CBC, no SHA-1 MAC. Every
// Kubernetes API server (Go's crypto/tls) offers these, for ECDSA and RSA certificates.
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

// Given again with every certificate reload: setSecureContext replaces the whole context.
const TLS_POLICY: SecureContextOptions & TlsOptions = { minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, honorCipherOrder: true };

export interface RunningWebhook {
  server: Server;
  port: number;
  metricsServer: HttpServer;
  metricsPort: number;
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
      server.setSecureContext({ ...TLS_POLICY, ...pair });
      recordServingCertificate(options.metrics, pair.cert);
    },
  });
  const ready = () => !draining && tls.loaded() && deps.secrets.ready();
  const app = createApp({ deps, metrics: options.metrics, logger, bodyLimit: config.bodyLimit, ready });
  const limits = socketLimits(config);
  // No certificate yet is fine: handshakes fail until the files appear, and /readyz says so.
  const server = createServer({ ...TLS_POLICY, ...limits, handshakeTimeout: limits.headersTimeout }, app);
  const connectionLimits = { max: config.maxConnections, perSource: config.maxConnectionsPerSource };
  const connections = guardConnections(server, connectionLimits);
  const metricsServer = createHttpServer(limits, createMetricsApp(options.metrics, ready));
  const metricsConnections = guardConnections(metricsServer, connectionLimits);
  await tls.start();

  try {
    await listen(server, config.port, config.address);
    await listen(metricsServer, config.metricsPort, config.address).catch((error: unknown) => {
      server.close();
      throw error;
    });
  } catch (error) {
    tls.close();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const metricsPort = (metricsServer.address() as AddressInfo).port;
  logger.info({ address: config.address, port, metricsPort, tlsLoaded: tls.loaded() }, 'webhook listening');

  const shutdown = async () => {
    draining = true;
    await drain(config, { server, connections }, { server: metricsServer, connections: metricsConnections });
    tls.close();
    deps.secrets.close();
  };
  return { server, port, metricsServer, metricsPort, tls, ready, shutdown };
}

// Slow or idle clients cannot hold sockets for long, and idle ones never keep a new
// connection out (connection-guard.ts): the API server's calls are short and few at a time.
function socketLimits(config: ServerConfig) {
  return {
    headersTimeout: config.headersTimeoutSeconds * 1000,
    requestTimeout: config.requestTimeoutSeconds * 1000,
    // Node checks the two timeouts above only this often (30 s by default).
    connectionsCheckingInterval: Math.min(1000, config.headersTimeoutSeconds * 500),
  };
}

/** Stops taking connections, lets in-flight reviews finish (bounded), then closes both servers. */
async function drain(config: ServerConfig, webhook: Guarded<Server>, metrics: Guarded<HttpServer>): Promise<void> {
  // Endpoints controllers need a moment to stop routing to a pod that is going away.
  await sleep(config.shutdownDelaySeconds * 1000);
  const closed = new Promise<void>((resolve) => webhook.server.close(() => resolve()));
  webhook.connections.closeIdle();
  const forced = setTimeout(() => webhook.connections.closeAll(), config.drainTimeoutSeconds * 1000);
  await closed;
  clearTimeout(forced);
  const metricsClosed = new Promise<void>((resolve) => metrics.server.close(() => resolve()));
  metrics.connections.closeAll();
  await metricsClosed;
}

interface Guarded<S> {
  server: S;
  connections: GuardedConnections;
}

function listen(server: Server | HttpServer, port: number, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

