import { createLogger } from '../shared/logger.js';
import { CertConfigError, loadCertConfig } from './ca/config.js';
import type { CertificateManager } from './ca/manager.js';
import { NO_CLAIMS } from './lookups/claim-source.js';
import { ConfigError, loadConfig } from './config/config.js';
import { createMetrics } from './server/metrics.js';
import { ManifestError, ManifestSecretSource, type SecretSource } from './lookups/secret-source.js';
import { startWebhookServer } from './server/server.js';

export interface WebhookCommandOptions {
  secretFiles: string[];
}

/** `session-storage webhook`: wiring only (config, secret source, server, signals). */
export async function runWebhook(options: WebhookCommandOptions): Promise<void> {
  const logger = createLogger('webhook');
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const metrics = createMetrics();

  let secrets: SecretSource | undefined;
  if (options.secretFiles.length > 0) {
    try {
      secrets = await ManifestSecretSource.fromFiles(options.secretFiles);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return;
    }
  }

  // Started after every check that can refuse to start, so a refusal leaves nothing running.
  // Self-managed mode issues the files the server watches; the server starts right away
  // and reports not-ready until they appear.
  // The Kubernetes client (about half the idle heap) and selfsigned are imported only when
  // used, so a run with certificate files and --secret-file never loads them.
  let certificates: CertificateManager;
  try {
    certificates =
      loadCertConfig().mode === 'files'
        ? { stop: () => undefined }
        : (await import('./ca/manager.js')).startCertificateManager({ logger });
  } catch (error) {
    if (!(error instanceof CertConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
    return;
  }

  if (secrets === undefined) {
    const { KubeSecretSource } = await import('./lookups/kube-secret-source.js');
    const kube = new KubeSecretSource({
      logger,
      getTimeoutMs: config.server.secretGetTimeoutMs,
      getsPerSecond: config.server.secretGetPerSecond,
      onLookup: (result) => metrics.secretCache.inc({ result }),
    });
    kube.start();
    secrets = kube;
  }

  // Without a cluster (--secret-file) nothing is known of existing PVCs: every session is new.
  const claims =
    options.secretFiles.length > 0
      ? NO_CLAIMS
      : new (await import('./lookups/kube-claim-source.js')).KubeClaimSource({
          getTimeoutMs: config.server.secretGetTimeoutMs,
          getsPerSecond: config.server.secretGetPerSecond,
        });

  let running;
  try {
    running = await startWebhookServer({
      server: config.server,
      deps: { config: config.mutation, policy: config.policy, secrets, claims },
      metrics,
      logger,
    });
  } catch (error) {
    // The message names the address and port that failed: the admission or the metrics one.
    process.stderr.write(`cannot listen: ${(error as Error).message}\n`);
    certificates.stop();
    secrets.close();
    process.exitCode = 1;
    return;
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining before exit');
    certificates.stop();
    void running.shutdown().then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
