import type { V1Pod } from '@kubernetes/client-node';
import type { MutationConfig } from './config.js';
import { classify, mutate, type MutationResult } from './mutate.js';
import { decideS3, type S3Policy } from './s3-settings.js';
import type { SecretSource } from './secret-source.js';

export interface AdmissionDeps {
  config: MutationConfig;
  policy: S3Policy;
  secrets: SecretSource;
}

/** The one path from a pod to a decision, shared by the webhook and `inject`. */
export async function admitPod(pod: V1Pod, namespace: string, deps: AdmissionDeps): Promise<MutationResult> {
  // Only session pods cost a secret lookup.
  const s3 =
    classify(pod).kind === 'session' ? decideS3(await deps.secrets.get(namespace), deps.policy) : null;
  return mutate(pod, deps.config, s3);
}
