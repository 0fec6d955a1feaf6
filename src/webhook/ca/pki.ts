import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

export interface CertKeyPem {
  cert: string;
  key: string;
}

export interface IssueOptions {
  commonName: string;
  organization?: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  usage: 'server' | 'client';
  validityMs: number;
}

// Certificates start a little in the past so a replica or API server whose clock runs
// behind ours still accepts a freshly issued one.
const CLOCK_SKEW_MS = 5 * 60_000;

// P-256 keys: generated at once, where RSA-2048 takes long enough to matter on a 2-core
// node renewing at start (docs/BENCHMARKS.md), and accepted by Go's TLS stack on the API
// server side.
const KEY_OPTIONS = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' } as const;

function validity(now: Date, validityMs: number): { notBeforeDate: Date; notAfterDate: Date } {
  return {
    notBeforeDate: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfterDate: new Date(now.getTime() + validityMs),
  };
}

export async function createCA(commonName: string, validityMs: number, now = new Date()): Promise<CertKeyPem> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    ...KEY_OPTIONS,
    ...validity(now, validityMs),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

export async function issueCertificate(
  ca: CertKeyPem,
  options: IssueOptions,
  now = new Date(),
): Promise<CertKeyPem> {
  const subject = [{ name: 'commonName', value: options.commonName }];
  if (options.organization) subject.push({ name: 'organizationName', value: options.organization });
  const altNames = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 2 as const, value })),
    ...(options.ipAddresses ?? []).map((ip) => ({ type: 7 as const, ip })),
  ];
  const pems = await generate(subject, {
    ...KEY_OPTIONS,
    ...validity(now, options.validityMs),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: options.usage === 'server', clientAuth: options.usage === 'client' },
      ...(altNames.length > 0 ? [{ name: 'subjectAltName' as const, altNames }] : []),
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

export interface CertificateInfo {
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
}

export function inspectCertificate(certPem: string): CertificateInfo {
  const x509 = new X509Certificate(certPem);
  return {
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    fingerprint256: x509.fingerprint256,
  };
}

export function isSignedBy(certPem: string, caPem: string): boolean {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

// Renewal starts once `fraction` of the lifetime has passed, as cert-manager does with
// its default of renewing at two thirds, leaving a third of the lifetime for retries. The
// lifetime counts from issuance, not from the backdated notBefore, so short-lived
// certificates renew on time too.
export function renewalDue(certPem: string, now = new Date(), fraction = 2 / 3): boolean {
  const { notBefore, notAfter } = inspectCertificate(certPem);
  const issuedAt = Math.min(notBefore.getTime() + CLOCK_SKEW_MS, notAfter.getTime());
  const renewAt = issuedAt + (notAfter.getTime() - issuedAt) * fraction;
  return now.getTime() >= renewAt;
}

// A PEM bundle split into its certificates, so expired ones can be dropped from a caBundle.
export function splitPemBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((pem) =>
    pem.endsWith('\n') ? pem : `${pem}\n`,
  ) ?? [];
}
