import { CoreV1Api, KubeConfig, Watch, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../../shared/logger.js';
import { describeError, isNotFound, RateLimiter } from './kube-read.js';
import { loadKubeConfig } from '../../shared/kube-config.js';
import { INTEGRATION_SECRET } from '../config/names.js';
import { summarizeSecret, type SecretSummary } from '../config/secret-summary.js';
import type { CacheResult, SecretSource } from './secret-source.js';

export interface KubeSecretSourceOptions {
  logger: Logger;
  /** timeout of the direct GET made on a cache miss */
  getTimeoutMs: number;
  /** direct GETs allowed per second, all namespaces together */
  getsPerSecond: number;
  onLookup?: (result: CacheResult) => void;
  kubeConfig?: KubeConfig;
}

// A list or watch is authorized by RBAC resourceNames only when it selects the name.
const FIELD_SELECTOR = `metadata.name=${INTEGRATION_SECRET}`;

/**
 * The integration secrets of every namespace, kept as summaries by a cluster-wide
 * list+watch restricted to their name. Credential values are dropped as objects arrive.
 */
export class KubeSecretSource implements SecretSource {
  private readonly cache = new Map<string, SecretSummary>();
  private readonly api: CoreV1Api;
  private readonly watch: Watch;
  private synced = false;
  private closed = false;
  private abort: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly limiter: RateLimiter;

  constructor(private readonly options: KubeSecretSourceOptions) {
    const kubeConfig = options.kubeConfig ?? loadKubeConfig();
    this.api = kubeConfig.makeApiClient(CoreV1Api);
    this.watch = new Watch(kubeConfig);
    this.limiter = new RateLimiter(options.getsPerSecond);
  }

  start(): void {
    void this.listAndWatch(0);
  }

  ready(): boolean {
    return this.synced;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
  }

  async get(namespace: string): Promise<SecretSummary> {
    const cached = this.cache.get(namespace);
    if (cached !== undefined) {
      this.options.onLookup?.('hit');
      return cached;
    }
    this.options.onLookup?.('miss');
    // The secret may have been created a moment before the pod, ahead of the watch event.
    if (this.limiter.reserve(0) === undefined) {
      return this.synced ? { kind: 'absent' } : { kind: 'error', reason: 'secret cache not synced yet' };
    }
    return this.fetch(namespace);
  }

  private async fetch(namespace: string): Promise<SecretSummary> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${this.options.getTimeoutMs} ms`)),
        this.options.getTimeoutMs,
      );
    });
    try {
      const secret = await Promise.race([
        this.api.readNamespacedSecret({ name: INTEGRATION_SECRET, namespace }),
        timeout,
      ]);
      const summary = summarizeSecret(secret);
      this.cache.set(namespace, summary);
      return summary;
    } catch (error) {
      if (isNotFound(error)) return { kind: 'absent' };
      return { kind: 'error', reason: describeError(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  private async listAndWatch(attempt: number): Promise<void> {
    if (this.closed) return;
    try {
      const list = await this.api.listSecretForAllNamespaces({ fieldSelector: FIELD_SELECTOR });
      this.cache.clear();
      for (const secret of list.items) this.store(secret);
      this.synced = true;
      this.abort = await this.watch.watch(
        '/api/v1/secrets',
        {
          fieldSelector: FIELD_SELECTOR,
          resourceVersion: list.metadata?.resourceVersion,
          allowWatchBookmarks: true,
        },
        (phase, secret: V1Secret) => {
          if (phase === 'ADDED' || phase === 'MODIFIED') this.store(secret);
          else if (phase === 'DELETED' && secret.metadata?.namespace) this.cache.delete(secret.metadata.namespace);
        },
        (error: unknown) => {
          // A closed watch (timeout, 410 Gone, API restart) is recovered by listing again.
          if (error) this.options.logger.warn({ err: describeError(error) }, 'secret watch ended; relisting');
          this.scheduleRelist(error ? 1 : 0);
        },
      );
    } catch (error) {
      this.options.logger.warn({ err: describeError(error), attempt }, 'listing integration secrets failed');
      this.scheduleRelist(attempt + 1);
    }
  }

  private scheduleRelist(attempt: number): void {
    if (this.closed) return;
    const delay = attempt === 0 ? 0 : Math.min(30_000, 500 * 2 ** (attempt - 1));
    this.retryTimer = setTimeout(() => void this.listAndWatch(attempt), delay);
  }

  private store(secret: V1Secret): void {
    const namespace = secret.metadata?.namespace;
    if (namespace !== undefined) this.cache.set(namespace, summarizeSecret(secret));
  }
}
