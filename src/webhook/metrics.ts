import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WebhookMetrics {
  registry: Registry;
  reviews: Counter<'outcome' | 'reason'>;
  latency: Histogram<'outcome'>;
  secretCache: Counter<'result'>;
}

// A registry per server, so tests can run several apps in one process.
export function createMetrics(): WebhookMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
  };
}
