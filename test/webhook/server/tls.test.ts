import { NO_CLAIMS } from '../../../src/webhook/lookups/claim-source.js';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { generate } from 'selfsigned';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/shared/logger.js';
import { VERSION } from '../../../src/shared/version.js';
import { generateServingCertificates, type ServingCertificates } from '../../../src/webhook/ca/certs.js';
import { createMetrics } from '../../../src/webhook/server/metrics.js';
import { ManifestSecretSource } from '../../../src/webhook/lookups/secret-source.js';
import { startWebhookServer, type RunningWebhook } from '../../../src/webhook/server/server.js';
import { defaultConfig, loadReview } from '../fixtures.js';

const quiet = createLogger('webhook', new Writable({ write: (_c, _e, done) => done() }));
let running: RunningWebhook | undefined;
let directory: string | undefined;

afterEach(async () => {
  await running?.shutdown();
  running = undefined;
  if (directory) rmSync(directory, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}) {
  directory = mkdtempSync(join(tmpdir(), 'webhook-tls-'));
  const config = defaultConfig({
    ...env,
    ADDRESS: '127.0.0.1',
    PORT: '0',
    METRICS_PORT: '0',
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

  async function serving(env: Record<string, string> = {}, keyType: 'ec' | 'rsa' = 'ec') {
    const { running, certDir } = await start(env);
    mkdirSync(certDir);
    let material: ServingCertificates;
    if (keyType === 'ec') {
      material = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
    } else {
      // Clusters may bring their own RSA certificate (TLS_CERT_FILE from cert-manager or a CA of theirs).
      const pair = await generate([{ name: 'commonName', value: 'localhost' }], {
        keyType: 'rsa',
        keySize: 2048,
        algorithm: 'sha256',
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
      });
      material = { caCert: pair.cert, cert: pair.cert, key: pair.private };
    }
    install(certDir, material);
    await until(() => running.ready());
    return { running, material };
  }

  function handshake(port: number, ca: string, ciphers: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers });
      socket.once('secureConnect', () => {
        resolve(socket.getCipher().standardName);
        socket.end();
      });
      socket.once('error', reject);
    });
  }

  // CBC suites with a SHA-1 MAC are what scanners flag (Lucky13, no AEAD); a client that
  // offers nothing else must not get a session.
  it.each(['rsa', 'ec'] as const)('refuses TLS 1.2 clients offering only CBC-SHA1 suites (%s certificate) and serves AEAD ones', async (keyType) => {
    const { running, material } = await serving({}, keyType);
    const auth = keyType === 'rsa' ? 'RSA' : 'ECDSA';
    await expect(handshake(running.port, material.caCert, `ECDHE-${auth}-AES128-SHA`)).rejects.toThrow(/handshake failure|no shared cipher/i);
    await expect(handshake(running.port, material.caCert, `ECDHE-${auth}-AES256-SHA`)).rejects.toThrow(/handshake failure|no shared cipher/i);
    await expect(handshake(running.port, material.caCert, `ECDHE-${auth}-AES128-GCM-SHA256`)).resolves.toBe(`TLS_ECDHE_${auth}_WITH_AES_128_GCM_SHA256`);
  });

  it('keeps refusing CBC-SHA1 after the certificate is rotated', async () => {
    const { running, material } = await serving();
    const next = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
    install(join(directory!, 'certs'), next);
    await until(async () => (await get(running.port, '/healthz', next.caCert).catch(() => undefined))?.status === 200);
    await expect(handshake(running.port, next.caCert, 'ECDHE-ECDSA-AES128-SHA')).rejects.toThrow(/handshake failure|no shared cipher/i);
    expect(material.caCert).not.toBe(next.caCert);
  });

  function open(port: number, ca: string): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca });
      socket.once('secureConnect', () => resolve(socket));
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed before the handshake')));
    });
  }

  it('past MAX_CONNECTIONS closes the oldest idle connection to take the new one, and refuses none while one is idle', async () => {
    const { running, material } = await serving({ MAX_CONNECTIONS: '2' });
    const first = await open(running.port, material.caCert);
    const firstClosed = new Promise((resolve) => first.once('close', resolve));
    const second = await open(running.port, material.caCert);
    const third = await open(running.port, material.caCert);
    await firstClosed;
    expect(second.destroyed).toBe(false);
    second.destroy();
    third.destroy();
  });

  it('drops a client that never finishes its request headers (HEADERS_TIMEOUT_SECONDS)', async () => {
    const { running, material } = await serving({ HEADERS_TIMEOUT_SECONDS: '1', REQUEST_TIMEOUT_SECONDS: '2' });
    const socket = await open(running.port, material.caCert);
    const started = Date.now();
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.write('POST /mutate HTTP/1.1\r\nHost: webhook\r\ncontent-type: application/json\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('reports the build and the expiry of the serving certificate it loaded in /metrics', async () => {
    const { running, material } = await serving();
    const body = await (await fetch(`http://127.0.0.1:${running.metricsPort}/metrics`)).text();
    const notAfter = Date.parse(new X509Certificate(material.cert).validTo) / 1000;
    expect(body).toContain(`session_storage_webhook_serving_certificate_expiry_timestamp_seconds ${notAfter}`);
    expect(body).toContain(`session_storage_webhook_build_info{version="${VERSION}",node_version="${process.version}"} 1`);
  });

  it('serves /metrics over plain HTTP on METRICS_PORT only, not on the admission port', async () => {
    const { running, material } = await serving();
    expect(running.metricsPort).not.toBe(running.port);
    const metrics = await fetch(`http://127.0.0.1:${running.metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('session_storage_webhook_reviews_total');
    expect((await get(running.port, '/metrics', material.caCert)).status).toBe(404);
  });
});
