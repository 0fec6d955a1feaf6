import { NO_CLAIMS } from '../../src/webhook/claim-source.js';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/logger.js';
import { generateServingCertificates, type ServingCertificates } from '../../src/webhook/certs.js';
import { createMetrics } from '../../src/webhook/metrics.js';
import { ManifestSecretSource } from '../../src/webhook/secret-source.js';
import { startWebhookServer, type RunningWebhook } from '../../src/webhook/server.js';
import { defaultConfig, loadReview } from './fixtures.js';

const quiet = createLogger('webhook', new Writable({ write: (_c, _e, done) => done() }));
let running: RunningWebhook | undefined;
let directory: string | undefined;

afterEach(async () => {
  await running?.shutdown();
  running = undefined;
  if (directory) rmSync(directory, { recursive: true, force: true });
});

async function start() {
  directory = mkdtempSync(join(tmpdir(), 'webhook-tls-'));
  const config = defaultConfig({
    ADDRESS: '127.0.0.1',
    PORT: '0',
    TLS_CERT_FILE: join(directory, 'certs', 'tls.crt'),
    TLS_KEY_FILE: join(directory, 'certs', 'tls.key'),
    SHUTDOWN_DELAY_SECONDS: '0',
  });
  running = await startWebhookServer({
    server: config.server,
    deps: { config: config.mutation, policy: config.policy, secrets: new ManifestSecretSource([]), claims: NO_CLAIMS },
    metrics: createMetrics(),
    logger: quiet,
    tlsPollMs: 100,
  });
  return { running, certDir: join(directory, 'certs') };
}

// Written the way cert managers do: to a temporary name, then renamed over the old file.
function install(certDir: string, material: ServingCertificates) {
  for (const [name, content] of [['tls.key', material.key], ['tls.crt', material.cert]] as const) {
    writeFileSync(join(certDir, `.${name}.tmp`), content);
    renameSync(join(certDir, `.${name}.tmp`), join(certDir, name));
  }
}

function get(port: number, path: string, ca: string): Promise<{ status: number; body: string; cert: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cert: (res.socket as import('node:tls').TLSSocket).getPeerCertificate() }));
    });
    req.on('error', reject);
    req.end();
  });
}

function postReview(port: number, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(loadReview('create-session-pod'));
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('the HTTPS server', { timeout: 30_000 }, () => {
  it('starts before its certificate exists, serves once it appears and rotates it without a restart', async () => {
    const { running, certDir } = await start();
    expect(running.ready()).toBe(false);
    const first = await generateServingCertificates({ service: 'session-storage-webhook', namespace: 'ambient', dev: true });
    await expect(get(running.port, '/healthz', first.caCert)).rejects.toThrow();

    mkdirSync(certDir);
    install(certDir, first);
    await until(() => running.ready());
    const served = await get(running.port, '/readyz', first.caCert);
    expect(served).toMatchObject({ status: 200, body: 'ready' });
    const review = await postReview(running.port, first.caCert);
    expect(review.status).toBe(200);
    expect(JSON.parse(review.body).response.uid).toBe('705ab4f5-6393-11e8-b7cc-42010a800002');

    const second = await generateServingCertificates({ service: 'session-storage-webhook', namespace: 'ambient', dev: true });
    install(certDir, second);
    await until(async () => (await get(running.port, '/healthz', second.caCert).catch(() => undefined))?.status === 200);
    await expect(get(running.port, '/healthz', first.caCert)).rejects.toThrow();
  });

  it('keeps serving the old certificate while the new pair is half written', async () => {
    const { running, certDir } = await start();
    mkdirSync(certDir);
    const first = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
    install(certDir, first);
    await until(() => running.ready());
    const second = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
    writeFileSync(join(certDir, 'tls.crt'), second.cert);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await get(running.port, '/healthz', first.caCert)).status).toBe(200);
  });

  it('accepts TLS 1.2 and rejects TLS 1.1', async () => {
    const { running, certDir } = await start();
    mkdirSync(certDir);
    const material = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
    install(certDir, material);
    await until(() => running.ready());
    const handshake = (version: 'TLSv1.1' | 'TLSv1.2') =>
      new Promise<string>((resolve, reject) => {
        // SECLEVEL=0 so the client is willing to offer 1.1: the refusal must come from the server.
        const socket = connect({ host: '127.0.0.1', port: running.port, ca: material.caCert, minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' });
        socket.once('secureConnect', () => {
          resolve(socket.getProtocol() ?? '');
          socket.end();
        });
        socket.once('error', reject);
      });
    await expect(handshake('TLSv1.2')).resolves.toBe('TLSv1.2');
    await expect(handshake('TLSv1.1')).rejects.toThrow(/protocol version|unsupported protocol/i);
  });

  it('stops being ready at once on shutdown and then refuses connections', async () => {
    const { running, certDir } = await start();
    mkdirSync(certDir);
    const material = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
    install(certDir, material);
    await until(() => running.ready());
    const stopped = running.shutdown();
    expect(running.ready()).toBe(false);
    await stopped;
    await expect(get(running.port, '/healthz', material.caCert)).rejects.toThrow(/ECONNREFUSED/);
  });
});
