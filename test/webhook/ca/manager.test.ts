import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/shared/logger.js';
import { writeKeyPair } from '../../../src/webhook/ca/files.js';
import { SelfManagedCertificates } from '../../../src/webhook/ca/manager.js';
import type { SelfManagedCertConfig } from '../../../src/webhook/ca/config.js';
import { inspectCertificate, isSignedBy, type CertKeyPem } from '../../../src/webhook/ca/pki.js';
import { X509Certificate } from 'node:crypto';
import { MemorySecretStore, MemoryWebhookStore } from './memory-stores.js';

const DAY = 24 * 3600_000;
const quiet = createLogger('test', new Writable({ write: (_c, _e, done) => done() }));

function setup(webhooks = new MemoryWebhookStore(['', '']), propagationMs = 0) {
  const config: SelfManagedCertConfig = {
    namespace: 'ambient-session-storage',
    service: 'session-storage-webhook',
    webhookConfiguration: 'ambient-session-storage',
    caSecret: 'session-storage-webhook-ca',
    extraDnsNames: [],
    extraIpAddresses: ['127.0.0.1'],
    certFile: '/unused/tls.crt',
    keyFile: '/unused/tls.key',
    leafValidityMs: 3 * DAY,
    caValidityMs: 30 * DAY,
    checkIntervalMs: 60_000,
    propagationMs,
  };
  const secrets = new MemorySecretStore();
  const written: CertKeyPem[] = [];
  const replica = () =>
    new SelfManagedCertificates(config, {
      secrets,
      webhooks,
      logger: quiet,
      writePair: async (pair) => void written.push(pair),
    });
  return { secrets, webhooks, written, replica };
}

describe('self-managed certificates', () => {
  it('issues a serving certificate for the Service from the shared CA and publishes the caBundle on every webhook', async () => {
    const { secrets, webhooks, written, replica } = setup();
    await replica().reconcile();
    const ca = secrets.secret?.data['ca.crt'] ?? '';
    expect(written).toHaveLength(1);
    const leaf = new X509Certificate(written[0]?.cert ?? '');
    expect(isSignedBy(leaf.toString(), ca)).toBe(true);
    expect(leaf.checkHost('session-storage-webhook.ambient-session-storage.svc')).toBeDefined();
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(webhooks.decoded().map((b) => b.trim())).toEqual([ca.trim(), ca.trim()]);
  });

  it('lets only one of two replicas write the caBundle, and both serve certificates from the same CA', async () => {
    const { webhooks, written, replica } = setup();
    await Promise.all([replica().reconcile(), replica().reconcile()]);
    expect(webhooks.writes).toBe(1);
    expect(written).toHaveLength(2);
    const issuers = written.map((p) => new X509Certificate(p.cert).issuer);
    expect(issuers[0]).toBe(issuers[1]);
  });

  it('keeps its certificate until two thirds of its life, then renews it', async () => {
    const { written, replica } = setup();
    const one = replica();
    await one.reconcile();
    await one.reconcile(new Date(Date.now() + DAY));
    expect(written).toHaveLength(1);
    await one.reconcile(new Date(Date.now() + 2.1 * DAY));
    expect(written).toHaveLength(2);
    expect(inspectCertificate(written[1]?.cert ?? '').notAfter.getTime()).toBeGreaterThan(
      inspectCertificate(written[0]?.cert ?? '').notAfter.getTime(),
    );
  });

  it('on CA rotation keeps serving from the old CA until the new one is in the caBundle, with both CAs trusted meanwhile', async () => {
    const { secrets, webhooks, written, replica } = setup();
    const one = replica();
    await one.reconcile();
    const oldCa = secrets.secret?.data['ca.crt'] ?? '';

    webhooks.refuseWrites = true;
    const afterRotation = new Date(Date.now() + 21 * DAY);
    await one.reconcile(afterRotation);
    const newCa = secrets.secret?.data['ca.crt'] ?? '';
    expect(newCa).not.toBe(oldCa);
    expect(isSignedBy(one.servingCertificate()?.cert ?? '', oldCa)).toBe(true);

    webhooks.refuseWrites = false;
    await one.reconcile(afterRotation);
    expect(isSignedBy(one.servingCertificate()?.cert ?? '', newCa)).toBe(true);
    expect(webhooks.decoded()[0]).toContain(oldCa.trim());
    expect(webhooks.decoded()[0]).toContain(newCa.trim());
    expect(written.length).toBe(3);
  });

  it('never issues a serving certificate that outlives the CA signing it', async () => {
    const { secrets, written, replica } = setup();
    const one = replica();
    await one.reconcile();
    const ca = secrets.secret?.data['ca.crt'] ?? '';
    const caEnd = inspectCertificate(ca).notAfter.getTime();
    const leafEnd = (pem: string) => inspectCertificate(pem).notAfter.getTime();
    expect(leafEnd(written[0]?.cert ?? '')).toBeLessThanOrEqual(caEnd);
    const late = setup();
    late.secrets.secret = structuredClone(secrets.secret);
    const lateReplica = late.replica();
    // A day before the CA ends: it is rotated, but the new CA cannot be published, so the
    // old one keeps signing and a 3-day leaf must be cut to the old CA's last day.
    late.webhooks.refuseWrites = true;
    await lateReplica.reconcile(new Date(caEnd - DAY));
    const lateLeaf = late.written[0]?.cert ?? '';
    expect(isSignedBy(lateLeaf, ca)).toBe(true);
    expect(leafEnd(lateLeaf)).toBeLessThanOrEqual(caEnd);
  });

  it('switches to a rotated CA only once it has been trusted for the propagation delay', async () => {
    const { secrets, replica } = setup(new MemoryWebhookStore(['']), 30_000);
    const one = replica();
    await one.reconcile();
    const oldCa = secrets.secret?.data['ca.crt'] ?? '';
    const rotation = Date.now() + 21 * DAY;
    await one.reconcile(new Date(rotation));
    const newCa = secrets.secret?.data['ca.crt'] ?? '';
    expect(newCa).not.toBe(oldCa);
    expect(isSignedBy(one.servingCertificate()?.cert ?? '', oldCa)).toBe(true);
    await one.reconcile(new Date(rotation + 10_000));
    expect(isSignedBy(one.servingCertificate()?.cert ?? '', oldCa)).toBe(true);
    await one.reconcile(new Date(rotation + 31_000));
    expect(isSignedBy(one.servingCertificate()?.cert ?? '', newCa)).toBe(true);
  });

  it('repairs a caBundle that something else reset (a GitOps sync, a re-apply)', async () => {
    const { webhooks, replica } = setup();
    const one = replica();
    await one.reconcile();
    webhooks.bundles = ['', ''];
    await one.reconcile();
    expect(webhooks.decoded()[0]).toContain('BEGIN CERTIFICATE');
  });
});

describe('writeKeyPair', () => {
  it('replaces both files by rename, key readable only by the owner, no temporary files left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'certs-'));
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    await writeKeyPair(certFile, keyFile, { cert: 'CERT-1', key: 'KEY-1' });
    await writeKeyPair(certFile, keyFile, { cert: 'CERT-2', key: 'KEY-2' });
    expect(await readFile(certFile, 'utf8')).toBe('CERT-2');
    expect(await readFile(keyFile, 'utf8')).toBe('KEY-2');
    expect((await stat(keyFile)).mode & 0o077).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['tls.crt', 'tls.key']);
  });
});
