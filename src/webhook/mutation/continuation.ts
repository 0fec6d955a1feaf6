import type { V1Pod } from '@kubernetes/client-node';
import { AGENT_ENV } from '../../shared/agent-env.js';
import { isDnsLabel } from '../../shared/dns-label.js';
import { HYDRATE_CONTAINER, PARENT_ANNOTATION } from '../config/names.js';

/*
 * A continuation session starts from its parent's work. The platform says so in the pods
 * of each generation that has continuations:
 * - its operator passes the parent to the runner as PARENT_SESSION_ID (from the
 *   AgenticSession's `vteam.ambient-code/parent-session-id` annotation or its
 *   environmentVariables), in the PVC era and since;
 * - the PVC era's operator also mounted the parent's volume, `ambient-workspace-<parent>`,
 *   instead of the session's own;
 * - the new control plane's pods carry no parent (its reconciler sets SESSION_ID and
 *   AGENTIC_SESSION_NAME only): nothing there to recognise.
 * A pod this webhook already mutated keeps the parent in our annotation, which a re-applied
 * mutation reads once the claim is gone.
 */

export const PLATFORM_PARENT_ENV = 'PARENT_SESSION_ID';
export const PLATFORM_CLAIM_PREFIX = 'ambient-workspace-';

export interface Continuation {
  parent: string;
  from: 'env' | 'claim' | 'annotation';
}

/** The session's parent, if the pod is a continuation's; a parent that cannot name a session is a warning. */
export function findContinuation(pod: V1Pod, session: string, warnings: string[]): Continuation | undefined {
  const found = fromEnv(pod) ?? fromClaim(pod, session) ?? fromAnnotation(pod);
  if (found === undefined || found.parent === session) return undefined;
  if (!isDnsLabel(found.parent)) {
    warnings.push(`parent session "${found.parent}" is not a session name: this session starts without its parent's state`);
    return undefined;
  }
  return found;
}

// The last plain value wins, as in the container's environment (the operator may append
// the AgenticSession's own environmentVariables after its own).
function fromEnv(pod: V1Pod): Continuation | undefined {
  for (const container of pod.spec?.containers ?? []) {
    const value = (container.env ?? []).findLast((e) => e.name === PLATFORM_PARENT_ENV)?.value?.trim();
    if (value) return { parent: value, from: 'env' };
  }
  return undefined;
}

function fromClaim(pod: V1Pod, session: string): Continuation | undefined {
  for (const volume of pod.spec?.volumes ?? []) {
    const claim = volume.persistentVolumeClaim?.claimName;
    if (claim?.startsWith(PLATFORM_CLAIM_PREFIX) && claim !== `${PLATFORM_CLAIM_PREFIX}${session}`) {
      return { parent: claim.slice(PLATFORM_CLAIM_PREFIX.length), from: 'claim' };
    }
  }
  return undefined;
}

function fromAnnotation(pod: V1Pod): Continuation | undefined {
  const value = pod.metadata?.annotations?.[PARENT_ANNOTATION]?.trim();
  return value ? { parent: value, from: 'annotation' } : undefined;
}

/**
 * Tells the injected init-hydrate the parent (`original` is the pod as it came, claims
 * still in place; `mutated` has the agent) and records it on the pod for users and tools.
 */
export function applyContinuation(original: V1Pod, mutated: V1Pod, session: string, warnings: string[]): void {
  const continuation = findContinuation(original, session, warnings);
  if (continuation === undefined) return;
  const hydrate = mutated.spec?.initContainers?.find((c) => c.name === HYDRATE_CONTAINER);
  if (hydrate === undefined) return;
  hydrate.env = [...(hydrate.env ?? []).filter((e) => e.name !== AGENT_ENV.PARENT_SESSION_NAME), { name: AGENT_ENV.PARENT_SESSION_NAME, value: continuation.parent }];
  const metadata = (mutated.metadata ??= {});
  metadata.annotations = { ...metadata.annotations, [PARENT_ANNOTATION]: continuation.parent };
}
