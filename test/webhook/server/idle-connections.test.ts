import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/shared/logger.js';
import { generateServingCertificates } from '../../../src/webhook/ca/certs.js';
import { NO_CLAIMS } from '../../../src/webhook/lookups/claim-source.js';
import { createMetrics } from '../../../src/webhook/server/metrics.js';
import { ManifestSecretSource } from '../../../src/webhook/lookups/secret-source.js';
import { startWebhookServer, type RunningWebhook } from '../../../src/webhook/server/server.js';
import { defaultConfig, loadReview } from '../fixtures.js';

// What a client that wants admission to stop can do without any credential: open TCP
// connections to port 8443 and never send a byte. With failurePolicy Fail, a webhook that
// stops answering stops every session pod.

const quiet = createLogger('webhook', new Writable({ write: (_c, _e, done) => done() }));
let running: RunningWebhook | undefined;
let directory: string | undefined;
const held: Socket[] = [];
let holding = false;

afterEach(async () => {
  holding = false;
  for (const socket of held.splice(0)) socket.destroy();
  const [stopping, leftDirectory] = [running, directory];
  running = undefined;
  directory = undefined;
  await stopping?.shutdown();
  if (leftDirectory) rmSync(leftDirectory, { recursive: true, force: true });
});

async function serving(env: Record<string, string> = {}) {
  directory = mkdtempSync(join(tmpdir(), 'webhook-idle-'));
  const certDir = join(directory, 'certs');
  mkdirSync(certDir);
  const material = await generateServingCertificates({ service: 'w', namespace: 'n', dev: true });
  writeFileSync(join(certDir, 'tls.key'), material.key);
  writeFileSync(join(certDir, 'tls.crt'), material.cert);
  const config = defaultConfig({
    ...env,
    ADDRESS: '127.0.0.1',
    PORT: '0',
    METRICS_PORT: '0',
    TLS_CERT_FILE: join(certDir, 'tls.crt'),
    TLS_KEY_FILE: join(certDir, 'tls.key'),
    SHUTDOWN_DELAY_SECONDS: '0',
    DRAIN_TIMEOUT_SECONDS: '0',
  });
  running = await startWebhookServer({
    server: config.server,
    deps: { config: config.mutation, policy: config.policy, secrets: new ManifestSecretSource([]), claims: NO_CLAIMS },
    metrics: createMetrics(),
    logger: quiet,
  });
  return { running, ca: material.caCert };
}

// Every address of 127.0.0.0/8 is the loopback interface on Linux: distinct sources
// without a network.
const source = (n: number) => `127.0.${Math.floor(n / 250)}.${(n % 250) + 2}`;

function idle(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Opens `count` idle connections spread over `sources` addresses; reopens each one the server closes after `reopenMs`. */
async function hold(port: number, count: number, sources: number, reopenMs?: number): Promise<void> {
  holding = true;
  const openOne = async (n: number): Promise<void> => {
    if (!holding) return;
    const socket = await idle(port, source(n % sources));
    // A reopen timer can fire after the test stopped holding: such a socket is not held.
    if (!holding) {
      socket.destroy();
      return;
    }
    held.push(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      if (holding && reopenMs !== undefined) setTimeout(() => void openOne(n).catch(() => undefined), reopenMs);
    });
  };
  await Promise.all(Array.from({ length: count }, (_, n) => openOne(n)));
}

function review(port: number, ca: string): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  const payload = JSON.stringify(loadReview('create-session-pod'));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, agent: false, timeout: 5_000, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - started }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

async function twentyReviews(port: number, ca: string): Promise<{ answered: number; slowestMs: number; errors: string[] }> {
  let answered = 0;
  let slowestMs = 0;
  const errors: string[] = [];
  for (let i = 0; i < 20; i += 1) {
    try {
      const { status, ms } = await review(port, ca);
      if (status === 200) answered += 1;
      slowestMs = Math.max(slowestMs, ms);
    } catch (error) {
      errors.push((error as Error).message);
    }
  }
  return { answered, slowestMs, errors };
}

function openConnections(running: RunningWebhook): Promise<number> {
  return new Promise((resolve, reject) => running.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

describe('admission under idle connections', { timeout: 60_000 }, () => {
  it('answers 20 of 20 reviews in time while clients hold 1,000 idle connections open, reopening each one closed', async () => {
    const { running, ca } = await serving();
    // 40 connections from each of 25 addresses: under the per-source cap, 4x the total cap.
    await hold(running.port, 1_000, 25, 200);
    const result = await twentyReviews(running.port, ca);
    expect(result.errors).toEqual([]);
    expect(result.answered).toBe(20);
    expect(result.slowestMs).toBeLessThan(2_000);
    // Memory stays bounded by the cap, not by what clients open.
    expect(await openConnections(running)).toBeLessThanOrEqual(256);
  });

  it('shuts down within the drain timeout while clients hold connections that never start TLS', async () => {
    const { running: webhook } = await serving({ DRAIN_TIMEOUT_SECONDS: '1' });
    running = undefined;
    await hold(webhook.port, 50, 5);
    await hold(webhook.metricsPort, 50, 5);
    const started = Date.now();
    const outcome = await Promise.race([
      webhook.shutdown().then(() => `stopped ${Date.now() - started}`),
      new Promise((resolve) => setTimeout(() => resolve('still draining after 10 s'), 10_000)),
    ]);
    expect(outcome).toMatch(/^stopped/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(held.filter((socket) => !socket.destroyed && !socket.closed)).toHaveLength(0);
  });

  it('keeps one address to MAX_CONNECTIONS_PER_SOURCE connections', async () => {
    const { running, ca } = await serving({ MAX_CONNECTIONS_PER_SOURCE: '16' });
    await hold(running.port, 100, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(held.filter((socket) => !socket.destroyed && !socket.closed)).toHaveLength(16);
    expect((await twentyReviews(running.port, ca)).answered).toBe(20);
  });

  it('refuses a new connection only when every open one has a request in flight', async () => {
    const { running, ca } = await serving({ MAX_CONNECTIONS: '2' });
    // Headers complete, body never sent: a request in flight until REQUEST_TIMEOUT_SECONDS.
    const busy = await Promise.all([source(0), source(1)].map((address) => idle(running.port, address)));
    held.push(...busy);
    const { connect: tlsConnect } = await import('node:tls');
    const tlsBusy = await Promise.all(
      busy.map(
        (socket) =>
          new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
            const tls = tlsConnect({ socket, ca, servername: 'w' }, () => resolve(tls));
            tls.once('error', reject);
          }),
      ),
    );
    for (const tls of tlsBusy) tls.write('POST /mutate HTTP/1.1\r\nHost: w\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expect(review(running.port, ca)).rejects.toThrow();
    for (const tls of tlsBusy) tls.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Two idle connections now: the review takes the place of the oldest.
    held.push(await idle(running.port, source(2)), await idle(running.port, source(3)));
    expect((await review(running.port, ca)).status).toBe(200);
    expect(held[2]!.closed || held[2]!.destroyed || (await closedSoon(held[2]!))).toBe(true);
  });

  it('keeps the metrics port answering under 1,000 idle connections too', async () => {
    const { running } = await serving();
    await hold(running.metricsPort, 1_000, 25, 200);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: running.metricsPort, path: '/healthz', agent: false, timeout: 2_000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
  });
});

function closedSoon(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 1_000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
