import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createCA,
  inspectCertificate,
  isSignedBy,
  issueCertificate,
  renewalDue,
  splitPemBundle,
} from '../../../src/webhook/ca/pki.js';

const HOUR = 3600_000;

describe('pki', () => {
  it('issues a serving certificate for the service names and IPs, signed by the CA', async () => {
    const ca = await createCA('test CA', 24 * HOUR);
    const leaf = await issueCertificate(ca, {
      commonName: 'svc.ns.svc',
      dnsNames: ['svc.ns.svc', 'svc.ns.svc.cluster.local'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
      validityMs: HOUR,
    });
    const x509 = new X509Certificate(leaf.cert);
    expect(isSignedBy(leaf.cert, ca.cert)).toBe(true);
    expect(x509.ca).toBe(false);
    expect(new X509Certificate(ca.cert).ca).toBe(true);
    expect(x509.checkHost('svc.ns.svc.cluster.local')).toBe('svc.ns.svc.cluster.local');
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkHost('other.ns.svc')).toBeUndefined();
    expect(x509.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
  });

  it('puts the organization in client certificates (Kubernetes groups)', async () => {
    const ca = await createCA('client CA', HOUR);
    const client = await issueCertificate(ca, { commonName: 'admin', organization: 'system:masters', usage: 'client', validityMs: HOUR });
    expect(new X509Certificate(client.cert).subject).toContain('O=system:masters');
    expect(new X509Certificate(client.cert).keyUsage).toContain('1.3.6.1.5.5.7.3.2');
  });

  it('does not report a certificate as signed by an unrelated CA', async () => {
    const [a, b] = [await createCA('a', HOUR), await createCA('b', HOUR)];
    const leaf = await issueCertificate(a, { commonName: 'x', dnsNames: ['x'], usage: 'server', validityMs: HOUR });
    expect(isSignedBy(leaf.cert, b.cert)).toBe(false);
  });

  it('is due for renewal after two thirds of its lifetime, counted from issuance', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const ca = await createCA('ca', 30 * HOUR, now);
    expect(inspectCertificate(ca.cert).notBefore.getTime()).toBeLessThan(now.getTime());
    expect(renewalDue(ca.cert, new Date(now.getTime() + 19.9 * HOUR))).toBe(false);
    expect(renewalDue(ca.cert, new Date(now.getTime() + 20.1 * HOUR))).toBe(true);
  });

  it('renews a short-lived certificate on time despite the backdated start', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const short = await createCA('ca', 12_000, now);
    expect(renewalDue(short.cert, new Date(now.getTime() + 7_000))).toBe(false);
    expect(renewalDue(short.cert, new Date(now.getTime() + 9_000))).toBe(true);
  });

  it('splits a PEM bundle into its certificates', async () => {
    const [a, b] = [await createCA('a', HOUR), await createCA('b', HOUR)];
    const parts = splitPemBundle(`${a.cert.trim()}\n${b.cert}`);
    expect(parts.map((p) => inspectCertificate(p).fingerprint256)).toEqual([
      inspectCertificate(a.cert).fingerprint256,
      inspectCertificate(b.cert).fingerprint256,
    ]);
    expect(splitPemBundle('')).toEqual([]);
  });
});
