import { generate } from 'selfsigned';

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
  validDays?: number;
}

export function dnsNames(request: CertificateRequest): string[] {
  const { service, namespace } = request;
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, ...(request.dev ? ['localhost'] : [])];
}

/** A throwaway CA and a serving certificate it signs (ECDSA P-256, sha256). */
export async function generateServingCertificates(request: CertificateRequest): Promise<ServingCertificates> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + (request.validDays ?? 365) * 86_400_000);
  const ca = await generate([{ name: 'commonName', value: `${request.service}-ca` }], {
    algorithm: 'sha256',
    keyType: 'ec',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const names = dnsNames(request);
  const leaf = await generate([{ name: 'commonName', value: names[2] ?? request.service }], {
    algorithm: 'sha256',
    keyType: 'ec',
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          ...names.map((value) => ({ type: 2 as const, value })),
          ...(request.dev ? [{ type: 7 as const, ip: '127.0.0.1' }] : []),
        ],
      },
    ],
  });
  return { caCert: ca.cert, cert: leaf.cert, key: leaf.private };
}
