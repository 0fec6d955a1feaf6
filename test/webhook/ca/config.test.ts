import { describe, expect, it } from 'vitest';
import { CertConfigError, loadCertConfig, serviceDnsNames } from '../../../src/webhook/ca/config.js';

describe('loadCertConfig', () => {
  it('defaults to files mode, where nothing is managed', () => {
    expect(loadCertConfig({})).toEqual({ mode: 'files' });
  });

  it('reads the self-managed settings and splits extra SANs into names and IPs', () => {
    const config = loadCertConfig({
      CERT_MODE: 'self-managed',
      WEBHOOK_NAMESPACE: 'ss',
      CERT_EXTRA_SANS: 'localhost, 127.0.0.1,::1',
      CERT_VALIDITY_HOURS: '2',
    });
    expect(config).toMatchObject({
      mode: 'self-managed',
      namespace: 'ss',
      service: 'session-storage-webhook',
      webhookConfiguration: 'ambient-session-storage',
      caSecret: 'session-storage-webhook-ca',
      extraDnsNames: ['localhost'],
      extraIpAddresses: ['127.0.0.1', '::1'],
      leafValidityMs: 7_200_000,
    });
  });

  it('refuses self-managed mode without a namespace, and bad values, naming the key', () => {
    expect(() => loadCertConfig({ CERT_MODE: 'self-managed' })).toThrow(/WEBHOOK_NAMESPACE/);
    expect(() => loadCertConfig({ CERT_MODE: 'auto' })).toThrow(CertConfigError);
    expect(() => loadCertConfig({ CERT_MODE: 'self-managed', WEBHOOK_NAMESPACE: 'x', CERT_VALIDITY_HOURS: '-1' })).toThrow(
      /CERT_VALIDITY_HOURS/,
    );
  });

  it('covers every name the API server may use for the Service', () => {
    expect(serviceDnsNames({ service: 'w', namespace: 'n', extraDnsNames: [] })).toEqual([
      'w.n.svc',
      'w',
      'w.n',
      'w.n.svc.cluster.local',
    ]);
  });
});
