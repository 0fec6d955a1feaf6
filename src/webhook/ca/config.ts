import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { parseEnvSchema } from '../../shared/env-schema.js';

type CertMode = 'self-managed' | 'files';

export interface SelfManagedCertConfig {
  namespace: string;
  service: string;
  webhookConfiguration: string;
  caSecret: string;
  extraDnsNames: string[];
  extraIpAddresses: string[];
  certFile: string;
  keyFile: string;
  leafValidityMs: number;
  caValidityMs: number;
  checkIntervalMs: number;
  /** how long a newly published CA must have been trusted before leaves are signed by it */
  propagationMs: number;
}

export type CertConfig = { mode: 'files' } | ({ mode: 'self-managed' } & SelfManagedCertConfig);

const HOUR_MS = 3600_000;
const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const ipv4 = /^\d{1,3}(\.\d{1,3}){3}$/;

const positive = z.coerce.number().positive('must be positive');
const schema = z.object({
  CERT_MODE: z.enum(['self-managed', 'files']).default('files'),
  WEBHOOK_NAMESPACE: z.string().min(1).optional(),
  WEBHOOK_SERVICE: z.string().min(1).default('session-storage-webhook'),
  WEBHOOK_CONFIGURATION: z.string().min(1).default('ambient-session-storage'),
  CA_STORE: z.string().min(1).default('session-storage-webhook-ca'),
  CERT_EXTRA_SANS: z.string().default(''),
  TLS_CERT_FILE: z.string().min(1).default('/etc/webhook/certs/tls.crt'),
  TLS_KEY_FILE: z.string().min(1).default('/etc/webhook/certs/tls.key'),
  CERT_VALIDITY_HOURS: positive.default(24 * 30),
  CA_VALIDITY_HOURS: positive.default(24 * 365 * 5),
  CERT_CHECK_INTERVAL_SECONDS: positive.default(60),
  CA_PROPAGATION_SECONDS: z.coerce.number().min(0, 'must not be negative').default(30),
});

export class CertConfigError extends Error {}

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Reads the certificate settings; throws a CertConfigError with a one-line message. */
export function loadCertConfig(env: NodeJS.ProcessEnv = process.env): CertConfig {
  const c = parseEnvSchema(schema, env, 'certificate configuration', (message) => new CertConfigError(message));
  if (c.CERT_MODE === 'files') return { mode: 'files' };
  const namespace = c.WEBHOOK_NAMESPACE ?? inClusterNamespace();
  if (!namespace) {
    throw new CertConfigError('invalid certificate configuration: CERT_MODE=self-managed needs WEBHOOK_NAMESPACE');
  }
  const sans = c.CERT_EXTRA_SANS.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    mode: 'self-managed',
    namespace,
    service: c.WEBHOOK_SERVICE,
    webhookConfiguration: c.WEBHOOK_CONFIGURATION,
    caSecret: c.CA_STORE,
    extraDnsNames: sans.filter((s) => !ipv4.test(s) && !s.includes(':')),
    extraIpAddresses: sans.filter((s) => ipv4.test(s) || s.includes(':')),
    certFile: c.TLS_CERT_FILE,
    keyFile: c.TLS_KEY_FILE,
    leafValidityMs: c.CERT_VALIDITY_HOURS * HOUR_MS,
    caValidityMs: c.CA_VALIDITY_HOURS * HOUR_MS,
    checkIntervalMs: c.CERT_CHECK_INTERVAL_SECONDS * 1000,
    propagationMs: c.CA_PROPAGATION_SECONDS * 1000,
  };
}

export function serviceDnsNames(config: Pick<SelfManagedCertConfig, 'service' | 'namespace' | 'extraDnsNames'>): string[] {
  const { service, namespace } = config;
  return [
    `${service}.${namespace}.svc`,
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc.cluster.local`,
    ...config.extraDnsNames,
  ];
}
