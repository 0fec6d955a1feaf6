import { createCA, issueCertificate } from './pki.js';

export interface ServingCertificates {
  caCert: string;
  cert: string;
  key: string;
}

export interface CertificateRequest {
  service: string;
  namespace: string;
  /** also valid for localhost and 127.0.0.1 */
  dev: boolean;
}

const VALIDITY_MS = 365 * 86_400_000;

function dnsNames(request: CertificateRequest): string[] {
  const { service, namespace } = request;
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, ...(request.dev ? ['localhost'] : [])];
}

/**
 * A throwaway CA and a serving certificate it signs, for `session-storage certs` and tests:
 * the same issuer (ca/pki.ts) as the self-managed CA, valid for a year.
 */
export async function generateServingCertificates(request: CertificateRequest): Promise<ServingCertificates> {
  const ca = await createCA(`${request.service}-ca`, VALIDITY_MS);
  const names = dnsNames(request);
  const leaf = await issueCertificate(ca, {
    commonName: `${request.service}.${request.namespace}.svc`,
    dnsNames: names,
    ipAddresses: request.dev ? ['127.0.0.1'] : [],
    usage: 'server',
    validityMs: VALIDITY_MS,
  });
  return { caCert: ca.cert, cert: leaf.cert, key: leaf.key };
}
