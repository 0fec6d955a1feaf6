import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

// The one place a KubeConfig is loaded: the webhook (its secret and claim caches, the
// self-managed CA) in its pod, and the user tools from a laptop.

export interface KubeOptions {
  kubeconfig?: string;
  context?: string;
}

/** The kubeconfig given or found cannot be used; the message says why. */
export class KubeConfigError extends Error {}

/**
 * The file and context given, else what kubectl would use (KUBECONFIG, ~/.kube/config),
 * else the pod's service account.
 */
export function loadKubeConfig(options: KubeOptions = {}): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    if (options.kubeconfig) kubeConfig.loadFromFile(options.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    throw new KubeConfigError(`cannot load the kubeconfig: ${(error as Error).message}`);
  }
  if (options.context) {
    if (!kubeConfig.getContextObject(options.context)) throw new KubeConfigError(`no context "${options.context}" in the kubeconfig`);
    kubeConfig.setCurrentContext(options.context);
  }
  return kubeConfig;
}

/**
 * Whether there is any kubeconfig to load. Without one the client falls back to
 * http://localhost:8080, and its answer from there ("HTTP protocol is not allowed ...")
 * would not tell a user what is missing.
 */
export function kubeConfigFound(options: KubeOptions): boolean {
  return Boolean(
    options.kubeconfig || process.env.KUBECONFIG || process.env.KUBERNETES_SERVICE_HOST || existsSync(path.join(homedir(), '.kube', 'config')),
  );
}
