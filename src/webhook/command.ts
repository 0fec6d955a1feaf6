import { createLogger, type Logger } from '../shared/logger.js';
import { CertConfigError, loadCertConfig } from './ca/config.js';
import type { CertificateManager } from './ca/manager.js';
import { NO_CLAIMS } from './lookups/claim-source.js';
import { ConfigError, loadConfig, type ServerConfig } from './config/config.js';
import { createMetrics, type WebhookMetrics } from './server/metrics.js';
import { ManifestError, ManifestSecretSource, type SecretSource } from './lookups/secret-source.js';
import { startWebhookServer, type RunningWebhook } from './server/server.js';

export interface WebhookCommandOptions {
  secretFiles: string[];
}

/** `session-storage webhook`: wiring only (config, secret source, server, signals). */
export async function runWebhook(options: WebhookCommandOptions): Promise<void> {
  const logger = createLogger('webhook');
  const config = await refusingToStart(ConfigError, () => loadConfig());
  if (config === undefined) return;
  const metrics = createMetrics();

  let secrets: SecretSource | undefined;
  if (options.secretFiles.length > 0) {
    secrets = await refusingToStart(ManifestError, () => ManifestSecretSource.fromFiles(options.secretFiles));
    if (secrets === undefined) return;
  }

  // Started after every check that can refuse to start, so a refusal leaves nothing running.
  const certificates = await refusingToStart(CertConfigError, () => startCertificates(logger));
  if (certificates === undefined) return;
  secrets ??= await startKubeSecrets(config.server, metrics, logger);

  // Without a cluster (--secret-file) nothing is known of existing PVCs: every session is new.
  const claims =
    options.secretFiles.length > 0
      ? NO_CLAIMS
      : new (await import('./lookups/kube-claim-source.js')).KubeClaimSource({
          getTimeoutMs: config.server.secretGetTimeoutMs,
          getsPerSecond: config.server.secretGetPerSecond,
        });

  let running: RunningWebhook;
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
  stopOnSignals(running, certificates, logger);
}

/**
 * `start()`, or undefined when it throws a `refusal` (a setting or file that cannot work):
 * its one-line message on stderr and exit code 2.
 */
async function refusingToStart<T>(refusal: new (message: string) => Error, start: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await start();
  } catch (error) {
    if (!(error instanceof refusal)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
    return undefined;
  }
}

// Self-managed mode issues the files the server watches; the server starts right away
// and reports not-ready until they appear.
// The Kubernetes client (a large share of the idle heap: docs/BENCHMARKS.md) and
// selfsigned are imported only when used, so a run with certificate files and
// --secret-file never loads them.
async function startCertificates(logger: Logger): Promise<CertificateManager> {
  if (loadCertConfig().mode === 'files') return { stop: () => undefined };
  return (await import('./ca/manager.js')).startCertificateManager({ logger });
}

async function startKubeSecrets(server: ServerConfig, metrics: WebhookMetrics, logger: Logger): Promise<SecretSource> {
  const { KubeSecretSource } = await import('./lookups/kube-secret-source.js');
  const kube = new KubeSecretSource({
    logger,
    getTimeoutMs: server.secretGetTimeoutMs,
    getsPerSecond: server.secretGetPerSecond,
    onLookup: (result) => metrics.secretCache.inc({ result }),
  });
  kube.start();
  return kube;
}

function stopOnSignals(running: RunningWebhook, certificates: CertificateManager, logger: Logger): void {
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
