import type { V1Pod, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import { isDnsLabel } from '../../shared/dns-label.js';
import type { MutationConfig } from '../config/config.js';
import type { S3Decision } from '../config/s3-settings.js';
import { applyContinuation } from './continuation.js';
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
  if (classification.kind !== 'session') return leftAlone(pod, classification);
  if (s3 === null) throw new Error('mutate: a session pod needs an S3 decision');
  if (s3.kind === 'deny') return denied(s3.reason, s3.message);

  const mutated = copyForMutation(pod);
  const { spec } = mutated;
  const warnings: string[] = [];
  const swapped = swapClaims(spec.volumes ?? [], config.emptyDirSizeLimit);
  const earlier = readStatus(pod);
  const injected = swappedItems(earlier, swapped);
  if (s3.kind === 'ephemeral') {
    warnings.push(s3.warning);
    return annotated(mutated, warnings, { mode: 'ephemeral', reason: s3.reason, injected, version: config.version });
  }
  const stateVolume = findStateVolume(spec.volumes ?? [], config.stateVolume, swapped);
  if (stateVolume === undefined) {
    warnings.push(`no state volume "${config.stateVolume}" in the pod: session state is ephemeral`);
    return annotated(mutated, warnings, { mode: 'ephemeral', reason: 'no-state-volume', injected, version: config.version });
  }
  if (spec.shareProcessNamespace === true) {
    // With one PID namespace, any container running as the agent's uid (the runner's, so
    // the agent can read its 0600 files) reads state-sync's environment, keys included,
    // from /proc/PID/environ. No uid or capability setting of ours closes that.
    return denied('shared-process-namespace', SHARED_PROCESS_NAMESPACE);
  }
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
  if (injection.kind === 'denied') return denied(injection.reason, injection.message);
  injected.push(...injection.items);
  applyContinuation(pod, mutated, classification.session, warnings);
  const { podGracePeriodSeconds } = injection;
  return annotated(mutated, warnings, { mode: 'sync', reason: s3.reason, injected, version: config.version, podGracePeriodSeconds });
}

function leftAlone(pod: V1Pod, classification: Exclude<Classification, { kind: 'session' }>): MutationResult {
  switch (classification.kind) {
    case 'skip':
      return { outcome: 'allowed', reason: classification.reason, pod, warnings: [] };
    case 'reinvocation':
      return { outcome: 'allowed', reason: 'reinvocation', pod, warnings: [] };
    case 'already-managed':
      return { outcome: 'allowed', reason: 'already-managed', pod, warnings: [platformAgentWarning(classification.containers)] };
    case 'invalid-session':
      return { outcome: 'denied', reason: 'invalid-session-name', message: classification.message, warnings: [] };
  }
}

function denied(reason: string, message: string): MutationResult {
  return { outcome: 'denied', reason, message, warnings: [] };
}

// Re-applied over a stale earlier injection, the claims it swapped are still ours.
function swappedItems(earlier: EarlierInjection | undefined, swapped: string[]): string[] {
  const earlierClaims = earlier?.injected.filter((item) => item.startsWith('emptyDir:')) ?? [];
  return [...new Set([...earlierClaims, ...swapped.map((name) => `emptyDir:${name}`)])];
}

/** The mutated pod with its status annotation (and, given an agent, the monitoring label). */
function annotated(mutated: V1Pod, warnings: string[], status: StatusAnnotation): MutationResult {
  const metadata = (mutated.metadata ??= {});
  metadata.annotations = { ...metadata.annotations, [STATUS_ANNOTATION]: JSON.stringify(status) };
  // What the PodMonitor of manifests/monitoring selects: pods with a state-sync to scrape.
  if (status.mode === 'sync') metadata.labels = { ...metadata.labels, [SYNC_LABEL]: 'enabled' };
  return { outcome: 'patched', reason: status.reason, pod: mutated, warnings, status };
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
