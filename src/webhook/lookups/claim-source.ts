import type { V1Pod } from '@kubernetes/client-node';
import { MIGRATED_TO_ANNOTATION, STORAGE_ENABLED_AT_ANNOTATION } from '../config/names.js';

export type ClaimLookup =
  | { kind: 'absent' }
  | { kind: 'present'; createdAt: Date; phase: string | undefined; annotations: Record<string, string> }
  | { kind: 'error'; reason: string };

export type NamespaceLookup =
  | { kind: 'present'; annotations: Record<string, string> }
  | { kind: 'error'; reason: string };

/** What the webhook may read about a namespace's PVCs and opt-in. Reads never reject. */
export interface ClaimSource {
  claim(namespace: string, name: string): Promise<ClaimLookup>;
  namespace(name: string): Promise<NamespaceLookup>;
}

/**
 * For `inject` and runs without a cluster: nothing is known about existing PVCs, so every
 * pod is handled as a new session's.
 */
export const NO_CLAIMS: ClaimSource = {
  claim: () => Promise.resolve({ kind: 'absent' }),
  namespace: () => Promise.resolve({ kind: 'present', annotations: {} }),
};

export type ClaimDecision =
  | { kind: 'swap' }
  | { kind: 'keep'; warning: string }
  | { kind: 'deny'; reason: 'claim-lookup-failed' | 'invalid-enabled-at'; message: string };

// RFC 3339 as `date -u +%Y-%m-%dT%H:%M:%SZ` and kubectl print it; Date.parse alone would
// also take "12/1/2026" and read it in the webhook's local time zone.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Whether the session's state already lives on its PVC, which must then stay: the seed's
 * migration promise is that running sessions finish on their PVCs and only new ones use
 * S3. A PVC created before the namespace's recorded opt-in time is such a session's (a
 * continuation names its parent's PVC, which counts as the parent's). With no recorded
 * time, a PVC that was ever bound may hold state and is kept; only a claim that does not
 * exist yet or was never bound is certainly new. A failed read denies: guessing "new"
 * would start an existing session empty.
 */
export async function decideClaim(
  pod: V1Pod,
  namespace: string,
  session: string,
  stateVolume: string,
  source: ClaimSource,
): Promise<ClaimDecision> {
  const claimName = stateClaim(pod, stateVolume);
  if (claimName === undefined) return { kind: 'swap' };
  const claim = await source.claim(namespace, claimName);
  if (claim.kind === 'error') {
    return { kind: 'deny', reason: 'claim-lookup-failed', message: `failed to read PVC ${claimName}: ${claim.reason}` };
  }
  if (claim.kind === 'absent') return { kind: 'swap' };
  // Its files were copied to S3 under this session's prefix (`migrate-job`), so this
  // session's next pod hydrates them. Another session naming the PVC (a continuation)
  // would find nothing under its own prefix and stays on the PVC.
  if (claim.annotations[MIGRATED_TO_ANNOTATION]?.trim() === session) return { kind: 'swap' };

  const ns = await source.namespace(namespace);
  if (ns.kind === 'error') {
    return { kind: 'deny', reason: 'claim-lookup-failed', message: `failed to read namespace ${namespace}: ${ns.reason}` };
  }
  const recorded = ns.annotations[STORAGE_ENABLED_AT_ANNOTATION];
  if (recorded === undefined) {
    return claim.phase === 'Pending'
      ? { kind: 'swap' }
      : { kind: 'keep', warning: `existing PVC kept, no S3 sync (bound, namespace has no opt-in time): ${claimName}` };
  }
  const enabledAt = RFC3339.test(recorded.trim()) ? Date.parse(recorded.trim()) : NaN;
  if (Number.isNaN(enabledAt)) {
    return {
      kind: 'deny',
      reason: 'invalid-enabled-at',
      message:
        `namespace annotation ${STORAGE_ENABLED_AT_ANNOTATION} must be an RFC 3339 time ` +
        `like 2026-01-15T09:00:00Z (got "${recorded}")`,
    };
  }
  return claim.createdAt.getTime() < enabledAt
    ? { kind: 'keep', warning: `existing PVC kept, no S3 sync (created before the opt-in): ${claimName}` }
    : { kind: 'swap' };
}

/**
 * The PVC of the volume the mutation treats as the state volume (the configured name,
 * else the only PVC), if that volume is a PVC.
 */
export function stateClaim(pod: V1Pod, stateVolume: string): string | undefined {
  const volumes = pod.spec?.volumes ?? [];
  const named = volumes.find((volume) => volume.name === stateVolume);
  if (named !== undefined) return named.persistentVolumeClaim?.claimName;
  const claims = volumes.filter((volume) => volume.persistentVolumeClaim !== undefined);
  return claims.length === 1 ? claims[0]!.persistentVolumeClaim!.claimName : undefined;
}
