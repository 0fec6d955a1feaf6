import type { V1Pod } from '@kubernetes/client-node';
import { decideClaim, type ClaimSource } from '../lookups/claim-source.js';
import type { MutationConfig } from '../config/config.js';
import { classify, mutate, type MutationResult } from '../mutation/mutate.js';
import { decideS3, type S3Decision, type S3Policy } from '../config/s3-settings.js';
import type { SecretSource } from '../lookups/secret-source.js';
import type { SecretSummary } from '../config/secret-summary.js';

export interface AdmissionDeps {
  config: MutationConfig;
  policy: S3Policy;
  secrets: SecretSource;
  claims: ClaimSource;
}

/** The one path from a pod to a decision, shared by the webhook and `inject`. */
export async function admitPod(pod: V1Pod, namespace: string, deps: AdmissionDeps): Promise<MutationResult> {
  // Only session pods cost a lookup.
  const classification = classify(pod);
  if (classification.kind !== 'session') return mutate(pod, deps.config, null);
  // Before the secret: a session that stays on its PVC runs as it always did, whatever
  // the project's S3 settings now say.
  const claim = await decideClaim(pod, namespace, classification.session, deps.config.stateVolume, deps.claims);
  if (claim.kind === 'keep') {
    return { outcome: 'allowed', reason: 'existing-pvc-session', pod, warnings: [claim.warning] };
  }
  if (claim.kind === 'deny') {
    return { outcome: 'denied', reason: claim.reason, message: claim.message, warnings: [] };
  }
  return mutate(pod, deps.config, decideOnce(await deps.secrets.get(namespace), deps.policy));
}

// Secret sources hand out the same summary object until the secret changes, and the
// decision (endpoint URL parsing and all) depends on nothing else: one per secret version,
// not one per pod.
const decisions = new WeakMap<SecretSummary, { policy: S3Policy; decision: S3Decision }>();

function decideOnce(summary: SecretSummary, policy: S3Policy): S3Decision {
  const known = decisions.get(summary);
  if (known?.policy === policy) return known.decision;
  const decision = decideS3(summary, policy);
  decisions.set(summary, { policy, decision });
  return decision;
}
