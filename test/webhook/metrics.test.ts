import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/logger.js';
import { VERSION } from '../../src/shared/version.js';
import { generateServingCertificates } from '../../src/webhook/certs.js';
import { createMetrics } from '../../src/webhook/metrics.js';
import { ManifestSecretSource } from '../../src/webhook/secret-source.js';
import { startWebhookServer, type RunningWebhook } from '../../src/webhook/server.js';
import { defaultConfig } from './fixtures.js';
import { NO_CLAIMS } from '../../src/webhook/claim-source.js';

const quiet = createLogger('webhook', new Writable({ write: (_c, _e, done) => done() }));
let running: RunningWebhook | undefined;
let directory: string | undefined;

afterEach(async () => {
  await running?.shutdown();
  running = undefined;
  if (directory) rmSync(directory, { recursive: true, force: true });
});

describe('webhook metrics', () => {
  it('report the build and the expiry of the serving certificate the server loaded', async () => {
    directory = mkdtempSync(join(tmpdir(), 'webhook-metrics-'));
    const certDir = join(directory, 'certs');
    mkdirSync(certDir);
    const material = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
    writeFileSync(join(certDir, 'tls.key'), material.key);
    writeFileSync(join(certDir, 'tls.crt'), material.cert);
    const config = defaultConfig({
      ADDRESS: '127.0.0.1',
      PORT: '0',
      TLS_CERT_FILE: join(certDir, 'tls.crt'),
      TLS_KEY_FILE: join(certDir, 'tls.key'),
      SHUTDOWN_DELAY_SECONDS: '0',
    });
    const metrics = createMetrics();
    running = await startWebhookServer({
      server: config.server,
      deps: { config: config.mutation, policy: config.policy, secrets: new ManifestSecretSource([]), claims: NO_CLAIMS },
      metrics,
      logger: quiet,
      tlsPollMs: 100,
    });
    const body = await metrics.registry.metrics();
    const notAfter = Date.parse(new X509Certificate(material.cert).validTo) / 1000;
    expect(body).toContain(`session_storage_webhook_serving_certificate_expiry_timestamp_seconds ${notAfter}`);
    expect(body).toContain(`session_storage_webhook_build_info{version="${VERSION}",node_version="${process.version}"} 1`);
  });
});
