import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { HYDRATE_CONTAINER, SYNC_CONTAINER } from './names.js';

// The scripts the platform's operator runs in its own containers of the same names
// (components/operator: `/usr/local/bin/hydrate.sh`, `/usr/local/bin/sync.sh`).
const PLATFORM_SCRIPTS: Record<string, string> = {
  [HYDRATE_CONTAINER]: 'hydrate.sh',
  [SYNC_CONTAINER]: 'sync.sh',
};

export type ForeignAgents =
  | { kind: 'none' }
  | { kind: 'platform'; containers: string[] }
  | { kind: 'collision'; message: string };

/**
 * Containers with our names that this webhook did not inject (`ours` lists the ones our
 * status annotation records). The platform's own pair already hydrates and syncs the
 * pod; replacing it would drop what its hydrate.sh also does (clone repositories and
 * workflows), and running both would race on the same files. Anything else with our
 * names is a collision the pod's owner has to resolve.
 */
export function findForeignAgents(pod: V1Pod, ours: ReadonlySet<string>): ForeignAgents {
  const spec = pod.spec;
  const candidates = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].filter(
    (container) => container.name in PLATFORM_SCRIPTS && !ours.has(container.name),
  );
  if (candidates.length === 0) return { kind: 'none' };
  const strangers = candidates.filter((container) => !runsPlatformScript(container));
  if (strangers.length === 0) return { kind: 'platform', containers: candidates.map((c) => c.name) };
  const names = strangers.map((container) => `"${container.name}"`).join(' and ');
  return {
    kind: 'collision',
    message:
      `the pod already has ${names}, not injected by this webhook nor the platform's own ` +
      `(${strangers.map((c) => PLATFORM_SCRIPTS[c.name]).join(', ')}): rename ` +
      `${strangers.length > 1 ? 'them' : 'it'} or opt the pod out with ambient-code.io/session-storage: disabled`,
  };
}

export function platformAgentWarning(containers: readonly string[]): string {
  return `the platform's own ${containers.join(', ')} already manage this pod's state: left unchanged`;
}

function runsPlatformScript(container: V1Container): boolean {
  const script = PLATFORM_SCRIPTS[container.name]!;
  // Also found when wrapped, as in `sh -c "/usr/local/bin/sync.sh"`.
  return [...(container.command ?? []), ...(container.args ?? [])].some((part) =>
    part.split(/[\s/;&|"']+/).includes(script),
  );
}
