import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { kubeConfigFound, KubeConfigError, loadKubeConfig as load, type KubeOptions } from '../shared/kube-config.js';
import { describeError, isNotFound } from '../webhook/lookups/kube-read.js';
import { INTEGRATION_SECRET } from '../webhook/config/names.js';

// The user's side of the cluster, for commands run from a laptop (ls, get, check,
// inject --secret-from-cluster): the kubeconfig kubectl would use, and the namespace's
// integration secret read with the user's own rights. No S3 SDK here: inject loads this.

/** The command line is wrong: exit 2. */
export class UsageError extends Error {}
/** The command ran and the answer is a failure: exit 1. */
export class ToolError extends Error {}

export type { KubeOptions };

/** The user's kubeconfig; one that is missing or unusable is a usage error. */
export function loadKubeConfig(options: KubeOptions): KubeConfig {
  if (!kubeConfigFound(options)) {
    throw new UsageError('no kubeconfig found: set KUBECONFIG, create ~/.kube/config, or pass --kubeconfig FILE');
  }
  try {
    return load(options);
  } catch (error) {
    if (error instanceof KubeConfigError) throw new UsageError(error.message);
    throw error;
  }
}

export type SecretRead = { kind: 'absent' } | { kind: 'found'; secret: V1Secret } | { kind: 'error'; reason: string };

export async function readIntegrationSecret(kubeConfig: KubeConfig, namespace: string): Promise<SecretRead> {
  try {
    const secret = await kubeConfig.makeApiClient(CoreV1Api).readNamespacedSecret({ name: INTEGRATION_SECRET, namespace });
    return { kind: 'found', secret };
  } catch (error) {
    if (isNotFound(error)) return { kind: 'absent' };
    return { kind: 'error', reason: describeError(error) };
  }
}
