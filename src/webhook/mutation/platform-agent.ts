import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { HYDRATE_CONTAINER, SYNC_CONTAINER } from '../config/names.js';

// The scripts the platform's operator runs in its own containers of the same names
// (components/operator: `/usr/local/bin/hydrate.sh`, `/usr/local/bin/sync.sh`).
const PLATFORM_SCRIPTS: Record<string, string> = {
  [HYDRATE_CONTAINER]: 'hydrate.sh',
  [SYNC_CONTAINER]: 'sync.sh',
};

/**
 * The platform's own agent containers, when every container with our names that this
 * webhook did not inject (`ours` lists the ones our status annotation records) runs the
 * platform's script; otherwise none. The platform's pair already hydrates and syncs the
 * pod; replacing it would drop what its hydrate.sh also does (clone repositories and
 * workflows), and running both would race on the same files. Any other container with
 * our names is a collision, which the injection denies naming it.
 */
export function findPlatformAgents(pod: V1Pod, ours: ReadonlySet<string>): string[] {
  const spec = pod.spec;
  const candidates = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].filter(
    (container) => container.name in PLATFORM_SCRIPTS && !ours.has(container.name),
  );
  return candidates.length > 0 && candidates.every(runsPlatformScript) ? candidates.map((c) => c.name) : [];
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
