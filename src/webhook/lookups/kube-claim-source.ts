import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ClaimLookup, ClaimSource, NamespaceLookup } from './claim-source.js';
import { describeError, isNotFound, limitedRead, RateLimiter } from './kube-read.js';
import { loadKubeConfig } from '../../shared/kube-config.js';

export interface KubeClaimSourceOptions {
  /** timeout of each GET, including its wait for a rate-limit slot */
  getTimeoutMs: number;
  /** GETs allowed per second, PVCs and namespaces together */
  getsPerSecond: number;
  kubeConfig?: KubeConfig;
}

/**
 * Direct GETs of one PVC and one namespace, only for session pods that still name a PVC.
 * No list or watch: RBAC stays at `get`, and a cache of every PVC in the cluster would
 * cost more memory than the few reads of the migration period.
 */
export class KubeClaimSource implements ClaimSource {
  private readonly api: CoreV1Api;
  private readonly limiter: RateLimiter;

  constructor(private readonly options: KubeClaimSourceOptions) {
    const kubeConfig = options.kubeConfig ?? loadKubeConfig();
    this.api = kubeConfig.makeApiClient(CoreV1Api);
    this.limiter = new RateLimiter(options.getsPerSecond);
  }

  async claim(namespace: string, name: string): Promise<ClaimLookup> {
    try {
      const claim = await limitedRead(this.limiter, this.options.getTimeoutMs, () =>
        this.api.readNamespacedPersistentVolumeClaim({ name, namespace }),
      );
      const created = claim.metadata?.creationTimestamp;
      if (created === undefined) return { kind: 'error', reason: 'the PVC has no creationTimestamp' };
      return {
        kind: 'present',
        createdAt: new Date(created),
        phase: claim.status?.phase,
        annotations: claim.metadata?.annotations ?? {},
      };
    } catch (error) {
      return isNotFound(error) ? { kind: 'absent' } : { kind: 'error', reason: describeError(error) };
    }
  }

  async namespace(name: string): Promise<NamespaceLookup> {
    try {
      const namespace = await limitedRead(this.limiter, this.options.getTimeoutMs, () =>
        this.api.readNamespace({ name }),
      );
      return { kind: 'present', annotations: namespace.metadata?.annotations ?? {} };
    } catch (error) {
      return { kind: 'error', reason: describeError(error) };
    }
  }
}
