import { ApiException, CoreV1Api, KubeConfig, type V1Secret } from '@kubernetes/client-node';
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
    if (error instanceof ApiException && error.code === 404) return { kind: 'absent' };
    return { kind: 'error', reason: describeApiError(error) };
  }
}

function describeApiError(error: unknown): string {
  if (error instanceof ApiException) {
    // The client hands the Status object over as its JSON text.
    let body: unknown = error.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // not a Status: the code alone
      }
    }
    const message = (body as { message?: unknown } | null | undefined)?.message;
    return `HTTP ${error.code}${typeof message === 'string' ? `: ${message}` : ''}`;
  }
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
  return `${error instanceof Error ? error.message : String(error)}${code}`;
}
