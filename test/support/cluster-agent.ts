import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { runContainer as runPodContainer, type ContainerProcess, type PodVolumes } from '../../scripts/lib/pod-process.js';
import type { Api } from './cluster-client.js';

// Runs an injected container of a stored pod as a local process (scripts/lib/pod-process.ts,
// shared with `npm run demo`), its secretKeyRefs read from the API server.

export { podVolumes, type PodVolumes } from '../../scripts/lib/pod-process.js';
export type AgentProcess = ContainerProcess;

export function runContainer(api: Api, pod: V1Pod, container: V1Container, volumes: PodVolumes): Promise<AgentProcess> {
  const namespace = pod.metadata?.namespace ?? 'default';
  return runPodContainer(pod, container, volumes, async (name, key) => {
    const secret = await api.core.readNamespacedSecret({ name, namespace });
    const encoded = secret.data?.[key];
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
  });
}
