import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from '../../shared/version.js';

export interface WebhookMetrics {
  registry: Registry;
  reviews: Counter<'outcome' | 'reason'>;
  latency: Histogram<'outcome'>;
  secretCache: Counter<'result'>;
  certificateExpiry: Gauge;
}

// The expiry of the serving certificate now loaded: alerting on it catches a renewal that
// silently stopped (self-managed rounds failing, cert-manager or service-ca misconfigured).
export function recordServingCertificate(metrics: WebhookMetrics, certPem: string | Buffer): void {
  const notAfter = Date.parse(new X509Certificate(certPem).validTo);
  if (Number.isFinite(notAfter)) metrics.certificateExpiry.set(notAfter / 1000);
}

// A registry per server, so tests can run several apps in one process.
export function createMetrics(): WebhookMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'session_storage_webhook_build_info',
    help: 'Version of the session-storage webhook and the Node.js it runs on; always 1',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: VERSION, node_version: process.version }, 1);
  return {
    registry,
    reviews: new Counter({
      name: 'session_storage_webhook_reviews_total',
      help: 'Admission reviews answered, by outcome (patched, allowed, denied, rejected) and reason',
      labelNames: ['outcome', 'reason'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'session_storage_webhook_review_duration_seconds',
      help: 'Time to answer an admission review',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    secretCache: new Counter({
      name: 'session_storage_webhook_secret_cache_total',
      help: 'Integration secret lookups, by cache result (hit or miss)',
      labelNames: ['result'],
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: 'session_storage_webhook_serving_certificate_expiry_timestamp_seconds',
      help: 'Unix time at which the serving certificate now loaded expires',
      registers: [registry],
    }),
  };
}
