import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { describeError, isNotFound } from '../webhook/kube-read.js';
import { INTEGRATION_SECRET } from '../webhook/names.js';

// The user's side of the cluster, for commands run from a laptop (ls, get, check,
// inject --secret-from-cluster): the kubeconfig kubectl would use, and the namespace's
// integration secret read with the user's own rights. No S3 SDK here: inject loads this.

/** The command line is wrong: exit 2. */
export class UsageError extends Error {}
/** The command ran and the answer is a failure: exit 1. */
export class ToolError extends Error {}

export interface KubeOptions {
  kubeconfig?: string;
  context?: string;
}

export function loadKubeConfig(options: KubeOptions): KubeConfig {
  // Without any, the client falls back to http://localhost:8080, and its answer from
  // there ("HTTP protocol is not allowed ...") would not tell the user what is missing.
  if (!options.kubeconfig && !process.env.KUBECONFIG && !process.env.KUBERNETES_SERVICE_HOST && !existsSync(path.join(homedir(), '.kube', 'config'))) {
    throw new UsageError('no kubeconfig found: set KUBECONFIG, create ~/.kube/config, or pass --kubeconfig FILE');
  }
  const kubeConfig = new KubeConfig();
  try {
    if (options.kubeconfig) kubeConfig.loadFromFile(options.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    throw new UsageError(`cannot load the kubeconfig: ${(error as Error).message}`);
  }
  if (options.context) {
    if (!kubeConfig.getContextObject(options.context)) throw new UsageError(`no context "${options.context}" in the kubeconfig`);
    kubeConfig.setCurrentContext(options.context);
  }
  return kubeConfig;
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
