import type { V1Pod, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import { isDnsLabel } from '../../shared/dns-label.js';
import type { MutationConfig } from '../config/config.js';
import type { S3Decision } from '../config/s3-settings.js';
import { injectAgent, type EarlierInjection } from './inject-agent.js';
import { findPlatformAgents, platformAgentWarning } from './platform-agent.js';
import { OPT_OUT_ANNOTATION, SESSION_LABEL, SESSION_NAME_ANNOTATION, STATUS_ANNOTATION, SYNC_LABEL } from '../config/names.js';

export type Classification =
  | { kind: 'skip'; reason: 'not-session-pod' | 'opted-out' }
  | { kind: 'reinvocation' }
  | { kind: 'already-managed'; containers: string[] }
  | { kind: 'invalid-session'; message: string }
  | { kind: 'session'; session: string };

export interface StatusAnnotation {
  mode: 'sync' | 'ephemeral';
  reason: string;
  injected: string[];
  version: string;
  /** the pod's own grace period before the final sync's budget was added to it */
  podGracePeriodSeconds?: number;
}

export type MutationResult =
  | { outcome: 'allowed'; reason: string; pod: V1Pod; warnings: string[] }
  | { outcome: 'patched'; reason: string; pod: V1Pod; warnings: string[]; status: StatusAnnotation }
  | { outcome: 'denied'; reason: string; message: string; warnings: string[] };

// Kept under the 120 characters past which the API server may truncate the message's start.
const SHARED_PROCESS_NAMESPACE =
  "shareProcessNamespace: true would expose the project's S3 keys in state-sync's environment to the runner: remove it";

/** Decides what kind of pod this is, before anything is looked up for it. */
export function classify(pod: V1Pod): Classification {
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  const session = labels[SESSION_LABEL] ?? annotations[SESSION_NAME_ANNOTATION];
  if (session === undefined) return { kind: 'skip', reason: 'not-session-pod' };
  if (annotations[OPT_OUT_ANNOTATION]?.trim().toLowerCase() === 'disabled') {
    return { kind: 'skip', reason: 'opted-out' };
  }
  if (isAlreadyMutated(pod)) return { kind: 'reinvocation' };
  const platform = findPlatformAgents(pod, injectedContainers(pod));
  if (platform.length > 0) return { kind: 'already-managed', containers: platform };
  if (!isDnsLabel(session)) {
    return {
      kind: 'invalid-session',
      message:
        `invalid session name "${session}": it becomes part of S3 keys and must be a DNS label ` +
        '(lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)',
    };
  }
  return { kind: 'session', session };
}

/**
 * The whole mutation, with no I/O. `s3` is the decision for the pod's namespace; it is
 * only consulted for pods `classify` calls sessions, so callers may pass null otherwise.
 */
export function mutate(pod: V1Pod, config: MutationConfig, s3: S3Decision | null): MutationResult {
  const classification = classify(pod);
  switch (classification.kind) {
    case 'skip':
      return { outcome: 'allowed', reason: classification.reason, pod, warnings: [] };
    case 'reinvocation':
      return { outcome: 'allowed', reason: 'reinvocation', pod, warnings: [] };
    case 'already-managed':
      return { outcome: 'allowed', reason: 'already-managed', pod, warnings: [platformAgentWarning(classification.containers)] };
    case 'invalid-session':
      return { outcome: 'denied', reason: 'invalid-session-name', message: classification.message, warnings: [] };
    case 'session':
      break;
  }
  if (s3 === null) throw new Error('mutate: a session pod needs an S3 decision');
  if (s3.kind === 'deny') return { outcome: 'denied', reason: s3.reason, message: s3.message, warnings: [] };

  const mutated = copyForMutation(pod);
  const { spec } = mutated;
  const warnings: string[] = [];
  const injected: string[] = [];

  const swapped = swapClaims(spec.volumes ?? [], config.emptyDirSizeLimit);
  // Re-applied over a stale earlier injection, the claims it swapped are still ours.
  const earlier = readStatus(pod);
  const earlierClaims = earlier?.injected.filter((item) => item.startsWith('emptyDir:')) ?? [];
  injected.push(...new Set([...earlierClaims, ...swapped.map((name) => `emptyDir:${name}`)]));
  let podGracePeriodSeconds: number | undefined;

  let mode: StatusAnnotation['mode'] = 'ephemeral';
  let reason: string = s3.reason;
  if (s3.kind === 'ephemeral') {
    warnings.push(s3.warning);
  } else {
    const stateVolume = findStateVolume(spec.volumes ?? [], config.stateVolume, swapped);
    if (stateVolume === undefined) {
      reason = 'no-state-volume';
      warnings.push(`no state volume "${config.stateVolume}" in the pod: session state is ephemeral`);
    } else if (spec.shareProcessNamespace === true) {
      // With one PID namespace, any container running as the agent's uid (the runner's, so
      // the agent can read its 0600 files) reads state-sync's environment, keys included,
      // from /proc/PID/environ. No uid or capability setting of ours closes that.
      return { outcome: 'denied', reason: 'shared-process-namespace', message: SHARED_PROCESS_NAMESPACE, warnings: [] };
    } else {
      const injection = injectAgent(
        mutated,
        {
          config,
          session: classification.session,
          stateVolume,
          secretHasRegion: s3.hasRegion,
          ...(s3.credentials === undefined ? {} : { credentials: s3.credentials }),
          earlier,
          stateVolumeSwapped: injected.includes(`emptyDir:${stateVolume}`),
        },
        warnings,
      );
      if (injection.kind === 'denied') {
        return { outcome: 'denied', reason: injection.reason, message: injection.message, warnings: [] };
      }
      mode = 'sync';
      injected.push(...injection.items);
      podGracePeriodSeconds = injection.podGracePeriodSeconds;
    }
  }

  const status: StatusAnnotation = {
    mode,
    reason,
    injected,
    version: config.version,
    ...(podGracePeriodSeconds === undefined ? {} : { podGracePeriodSeconds }),
  };
  const metadata = (mutated.metadata ??= {});
  metadata.annotations = { ...metadata.annotations, [STATUS_ANNOTATION]: JSON.stringify(status) };
  // What the PodMonitor of manifests/monitoring selects: pods with a state-sync to scrape.
  if (mode === 'sync') metadata.labels = { ...metadata.labels, [SYNC_LABEL]: 'enabled' };
  return { outcome: 'patched', reason, pod: mutated, warnings, status };
}

// Copies only the objects mutate writes to; everything else stays shared with the input,
// which keeps the input untouched and lets the patch diff skip unchanged subtrees by identity.
function copyForMutation(pod: V1Pod): V1Pod & { spec: V1PodSpec } {
  // Assignments, not a fresh literal, so every key keeps the position it had in the input.
  const mutated: V1Pod & { spec?: V1PodSpec } = { ...pod };
  if (pod.metadata) mutated.metadata = { ...pod.metadata };
  mutated.spec = pod.spec ? { ...pod.spec } : { containers: [] };
  if (mutated.spec.volumes) mutated.spec.volumes = [...mutated.spec.volumes];
  return mutated as V1Pod & { spec: V1PodSpec };
}

function swapClaims(volumes: V1Volume[], sizeLimit: string): string[] {
  const swapped: string[] = [];
  volumes.forEach((volume, index) => {
    if (volume.persistentVolumeClaim === undefined) return;
    // Same name, so every existing volumeMount keeps pointing at it.
    volumes[index] = { name: volume.name, emptyDir: { sizeLimit } };
    swapped.push(volume.name);
  });
  return swapped;
}

function findStateVolume(volumes: V1Volume[], preferred: string, swapped: string[]): string | undefined {
  if (volumes.some((volume) => volume.name === preferred)) return preferred;
  return swapped.length === 1 ? swapped[0] : undefined;
}

/** A pod we already mutated, seen again on reinvocation: its status annotation still holds. */
export function isAlreadyMutated(pod: V1Pod): boolean {
  const status = readStatus(pod);
  if (status === undefined) return false;
  const spec = pod.spec;
  if ((spec?.volumes ?? []).some((volume) => volume.persistentVolumeClaim !== undefined)) return false;
  const names = new Set([...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c) => c.name));
  return [...injectedContainers(pod)].every((name) => names.has(name));
}

/** The container names our status annotation says we injected. */
function injectedContainers(pod: V1Pod): Set<string> {
  return new Set(
    (readStatus(pod)?.injected ?? [])
      .filter((item) => item.startsWith('initContainer:') || item.startsWith('container:'))
      .map((item) => item.slice(item.indexOf(':') + 1)),
  );
}

function readStatus(pod: V1Pod): EarlierInjection | undefined {
  const raw = pod.metadata?.annotations?.[STATUS_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const status = JSON.parse(raw) as Partial<StatusAnnotation> | null;
    const grace = status?.podGracePeriodSeconds;
    return Array.isArray(status?.injected) && status.injected.every((item) => typeof item === 'string')
      ? {
          injected: status.injected,
          podGracePeriodSeconds: Number.isSafeInteger(grace) && grace! >= 0 ? grace : undefined,
        }
      : undefined;
  } catch {
    return undefined;
  }
}
