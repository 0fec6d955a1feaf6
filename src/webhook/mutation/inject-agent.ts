import path from 'node:path';
import type { V1Container, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { formatSyncPaths, SettingsError, type SyncPath } from '../../shared/agent-env.js';
import { buildAgentSpecs, type AgentSpecs } from './agent-containers.js';
import { withRunnerStateDir } from './runner-state-dir.js';
import type { MutationConfig } from '../config/config.js';
import type { CredentialChoice } from '../config/s3-settings.js';
import {
  AGENT_VOLUMES,
  HYDRATE_CONTAINER,
  OPENSHIFT_SCC_ANNOTATION,
  OPT_OUT_ANNOTATION,
  SYNC_CONTAINER,
} from '../config/names.js';

// Kubernetes' default when the pod does not set terminationGracePeriodSeconds.
export const DEFAULT_GRACE_PERIOD_SECONDS = 30;

/** What an earlier injection recorded in the status annotation, if the pod carries one. */
export interface EarlierInjection {
  injected: string[];
  podGracePeriodSeconds: number | undefined;
}

export interface InjectionInput {
  config: MutationConfig;
  session: string;
  stateVolume: string;
  secretHasRegion: boolean;
  /** absent: the secret's access keys alone */
  credentials?: CredentialChoice;
  earlier: EarlierInjection | undefined;
  /** the state volume was a PVC this mutation swapped for an EmptyDir */
  stateVolumeSwapped: boolean;
}

export type Injection =
  | { kind: 'injected'; items: string[]; podGracePeriodSeconds: number }
  | { kind: 'denied'; reason: 'name-collision' | 'unsyncable-subpath'; message: string };

/**
 * Adds the agent to `pod` (a copy whose spec the caller owns), or says why it must not:
 * nothing the pod already has is replaced or dropped, except what an earlier pass of ours
 * put there. (Pods with the platform's own agent never get here: `classify` leaves them
 * as they are.)
 */
export function injectAgent(pod: V1Pod & { spec: V1PodSpec }, input: InjectionInput, warnings: string[]): Injection {
  const { config, stateVolume } = input;
  const spec = pod.spec;
  const collisions = collidingNames(spec, input.earlier);
  if (collisions.length > 0) {
    return {
      kind: 'denied',
      reason: 'name-collision',
      message:
        `the pod already uses names session storage adds to session pods: ${collisions.join(', ')}; ` +
        `rename them, or opt the pod out with the annotation ${OPT_OUT_ANNOTATION}: disabled`,
    };
  }
  const syncPaths = syncPathsFor(withRunnerStateDir(config.syncPaths, spec.containers, stateVolume, warnings), spec.containers, stateVolume);
  if (syncPaths.kind === 'denied') return syncPaths;

  const runner = findRunner(spec.containers, stateVolume);
  const identity = runnerIdentity(pod, runner);
  const runAsUser = identity.runAsUser ?? fallbackUid(pod, config);
  if (identity.runAsUser === undefined) {
    // Kept under the 120 characters past which the API server may truncate a warning.
    const who = runAsUser === undefined ? "the image's or the SCC's uid" : `uid ${runAsUser}`;
    warnings.push(`runner has no non-root runAsUser: agent runs as ${who}, may miss its private files`);
  }
  const replaceable = (c: V1Container) => (c.name === HYDRATE_CONTAINER || c.name === SYNC_CONTAINER) && takenOver(c, input.earlier);
  const portTaken = metricsPortTaken(spec, config.syncMetricsPort, replaceable);
  if (portTaken && config.syncMetricsPort > 0) {
    warnings.push(`port ${config.syncMetricsPort} is in use in the pod: state-sync serves no metrics or health`);
  }
  const podGracePeriodSeconds =
    input.earlier?.podGracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS;
  const terminationGraceSeconds = extendGracePeriod(spec, config, podGracePeriodSeconds);
  const specs = buildAgentSpecs({
    config,
    session: input.session,
    stateVolume,
    syncPaths: syncPaths.text,
    secretHasRegion: input.secretHasRegion,
    ...(input.credentials === undefined ? {} : { credentials: input.credentials }),
    runAsUser,
    runAsGroup: identity.runAsGroup,
    metricsPort: portTaken ? 0 : config.syncMetricsPort,
    reservedStorage: input.stateVolumeSwapped && config.reserveWorkspaceStorage ? config.emptyDirSizeLimit : undefined,
    terminationGraceSeconds,
  });
  placeAgent(spec, specs, config.sidecarMode, replaceable, warnings);
  return { kind: 'injected', items: injectedItems(specs, config.sidecarMode), podGracePeriodSeconds };
}

// Containers share the pod's network: a port the pod already uses cannot be ours too.
function metricsPortTaken(spec: V1PodSpec, port: number, replaceable: (c: V1Container) => boolean): boolean {
  return [...(spec.initContainers ?? []), ...spec.containers]
    .filter((c) => !replaceable(c))
    .some((c) => (c.ports ?? []).some((p) => p.containerPort === port));
}

/**
 * The kubelet stops a native sidecar only after the runner has exited, and both share
 * one grace period: the runner keeps all of its own (`podGracePeriodSeconds`), and the
 * final sync gets its budget plus the margin on top. Re-applied over an earlier
 * injection, the pod's own value is the one recorded then, so the sum is not added twice.
 * Never lowered. Returns the value set.
 */
function extendGracePeriod(spec: V1PodSpec, config: MutationConfig, podGracePeriodSeconds: number): number {
  const needed = podGracePeriodSeconds + Math.ceil(config.finalSyncTimeoutSeconds) + config.gracePeriodMarginSeconds;
  const terminationGraceSeconds = Math.max(spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS, needed);
  spec.terminationGracePeriodSeconds = terminationGraceSeconds;
  return terminationGraceSeconds;
}

/** Puts the agent's containers and volumes in `spec`, in place of an earlier pass's. */
function placeAgent(
  spec: V1PodSpec,
  specs: AgentSpecs,
  sidecarMode: MutationConfig['sidecarMode'],
  replaceable: (c: V1Container) => boolean,
  warnings: string[],
): void {
  const initContainers = (spec.initContainers ?? []).filter((c) => !replaceable(c));
  const containers = spec.containers.filter((c) => !replaceable(c));
  // After other injectors' init containers and native sidecars, so a mesh proxy sidecar
  // is already up when hydrate needs the network; before a classic mesh's redirect.
  const mesh = classicMesh(initContainers, containers);
  if (mesh.warning) warnings.push(mesh.warning);
  const ours = sidecarMode === 'native' ? [specs.hydrate, specs.sync] : [specs.hydrate];
  initContainers.splice(mesh.insertAt ?? initContainers.length, 0, ...ours);
  if (sidecarMode === 'legacy') containers.push(specs.sync);
  spec.initContainers = initContainers;
  spec.containers = containers;

  const volumeNames = new Set(specs.volumes.map((volume) => volume.name));
  spec.volumes = [...(spec.volumes ?? []).filter((v) => !volumeNames.has(v.name)), ...specs.volumes];
}

function injectedItems(specs: AgentSpecs, sidecarMode: MutationConfig['sidecarMode']): string[] {
  const syncPlace = sidecarMode === 'native' ? 'initContainer' : 'container';
  return [
    ...specs.volumes.map((volume) => `volume:${volume.name}`),
    `initContainer:${HYDRATE_CONTAINER}`,
    `${syncPlace}:${SYNC_CONTAINER}`,
  ];
}

// Istio's names. Its native mode makes istio-proxy an init container with restartPolicy
// Always that starts before ours: nothing to do then. Its classic mode makes it a regular
// container, started only after every init container, while the pod's egress is already
// redirected to it: by istio-init (iptables), or by Istio CNI before any container runs.
const ISTIO_INIT = 'istio-init';
const ISTIO_CNI_VALIDATION = 'istio-validation';
const ISTIO_PROXY = 'istio-proxy';

/**
 * Where a classic Istio sidecar needs our init containers: right before istio-init, so
 * hydrate reaches S3 before the redirect (Istio's injector, when it runs after us, puts
 * istio-init last for the same reason). What placement cannot fix is said in a warning.
 */
function classicMesh(initContainers: V1Container[], containers: V1Container[]): { insertAt?: number; warning?: string } {
  if (!containers.some((c) => c.name === ISTIO_PROXY)) return {};
  const redirect = initContainers.findIndex((c) => c.name === ISTIO_INIT);
  if (redirect >= 0) {
    return { insertAt: redirect, warning: "classic istio-proxy may exit before state-sync's final sync: use Istio native sidecars" };
  }
  if (initContainers.some((c) => c.name === ISTIO_CNI_VALIDATION)) {
    return { warning: 'classic istio-proxy with Istio CNI: init-hydrate cannot reach S3; use Istio native sidecars' };
  }
  return {};
}

function takenOver(container: V1Container, earlier: EarlierInjection | undefined): boolean {
  const injected = earlier?.injected ?? [];
  return injected.includes(`initContainer:${container.name}`) || injected.includes(`container:${container.name}`);
}

function collidingNames(spec: V1PodSpec, earlier: EarlierInjection | undefined): string[] {
  const containers = [...(spec.initContainers ?? []), ...spec.containers]
    .filter((c) => (c.name === HYDRATE_CONTAINER || c.name === SYNC_CONTAINER) && !takenOver(c, earlier))
    .map((c) => `container "${c.name}"`);
  const volumes = (spec.volumes ?? [])
    .filter((v) => AGENT_VOLUMES.includes(v.name) && !earlier?.injected.includes(`volume:${v.name}`))
    .map((v) => `volume "${v.name}"`);
  return [...new Set([...containers, ...volumes])];
}

function mountsOf(container: V1Container, volume: string) {
  return (container.volumeMounts ?? []).filter((mount) => mount.name === volume);
}

function findRunner(containers: V1Container[], stateVolume: string): V1Container | undefined {
  return containers.find((c) => mountsOf(c, stateVolume).length > 0) ?? containers[0];
}

/**
 * The agent's uid when the runner declares none: AGENT_RUN_AS_USER, except on pods that
 * OpenShift's SCC admission has seen. A fixed uid there is outside the namespace's range
 * and the pod would be refused; the SCC (or the image's USER) gives one instead.
 */
function fallbackUid(pod: V1Pod, config: MutationConfig): number | undefined {
  if (pod.metadata?.annotations?.[OPENSHIFT_SCC_ANNOTATION] !== undefined) return undefined;
  return config.agentRunAsUser;
}

function runnerIdentity(pod: V1Pod, runner: V1Container | undefined) {
  const own = runner?.securityContext;
  const podLevel = pod.spec?.securityContext;
  const uid = own?.runAsUser ?? podLevel?.runAsUser;
  return {
    runAsUser: uid === undefined || uid === 0 ? undefined : uid,
    runAsGroup: own?.runAsGroup ?? podLevel?.runAsGroup,
  };
}

/**
 * The platform mounts `.claude` from a subPath of the workspace volume; the agent must
 * sync that directory under the `.claude/` prefix. A subPath SYNC_PATHS cannot carry (a
 * comma, leading or trailing spaces) denies the pod: syncing another directory instead
 * would lose the session's `.claude` without anyone noticing.
 */
function syncPathsFor(
  configured: readonly SyncPath[],
  containers: V1Container[],
  stateVolume: string,
): { kind: 'ok'; text: string } | { kind: 'denied'; reason: 'unsyncable-subpath'; message: string } {
  const subPath = containers
    .flatMap((c) => mountsOf(c, stateVolume))
    .map((mount) => mount.subPath?.replace(/\/+$/, ''))
    .find((sub) => sub !== undefined && (sub === '.claude' || sub.endsWith('/.claude')));
  const paths =
    subPath === undefined
      ? configured
      : configured.map((p) =>
          p.name === '.claude' && p.localDir === '.claude' ? { name: p.name, localDir: path.posix.normalize(subPath) } : p,
        );
  try {
    return { kind: 'ok', text: formatSyncPaths(paths) };
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    return {
      kind: 'denied',
      reason: 'unsyncable-subpath',
      message:
        `the runner mounts .claude from subPath "${subPath ?? ''}", which the agent's SYNC_PATHS cannot express ` +
        '(no commas, no leading or trailing spaces): rename that directory',
    };
  }
}
