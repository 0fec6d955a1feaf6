import { ApisApi, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { describeError } from '../webhook/lookups/kube-read.js';
import { PARENT_ANNOTATION, SESSION_LABEL, SESSION_NAME_ANNOTATION } from '../webhook/config/names.js';
import { ToolError } from './kube.js';

// What the cluster says about a project's sessions, for rm and gc: the platform's
// AgenticSession objects (which sessions still exist, and whose continuation they are) and
// the pods still running for a session.

export const AGENTIC_SESSION_GROUP = 'vteam.ambient-code';
const PLURAL = 'agenticsessions';
// Where the platform names a continuation's parent on its AgenticSession (the backend's
// handlers/sessions.go sets both).
const PARENT_ANNOTATIONS = ['vteam.ambient-code/parent-session-id'];
const PARENT_ENV = 'PARENT_SESSION_ID';

export interface AgenticSession {
  name: string;
  parent?: string;
}

/** The served version of the AgenticSession API, or undefined when its CRD is not installed. */
export async function agenticSessionVersion(kubeConfig: KubeConfig): Promise<string | undefined> {
  try {
    const groups = await kubeConfig.makeApiClient(ApisApi).getAPIVersions();
    return groups.groups.find((group) => group.name === AGENTIC_SESSION_GROUP)?.preferredVersion?.version;
  } catch (error) {
    throw new ToolError(`cannot read the cluster's API groups: ${describeError(error)}`);
  }
}

export async function listAgenticSessions(kubeConfig: KubeConfig, version: string, namespace: string): Promise<AgenticSession[]> {
  let list: { items?: Array<{ metadata?: { name?: string; annotations?: Record<string, string> }; spec?: { environmentVariables?: Record<string, string> } }> };
  try {
    list = (await kubeConfig
      .makeApiClient(CustomObjectsApi)
      .listNamespacedCustomObject({ group: AGENTIC_SESSION_GROUP, version, namespace, plural: PLURAL })) as typeof list;
  } catch (error) {
    throw new ToolError(`cannot list the AgenticSessions of ${namespace}: ${describeError(error)}`);
  }
  return (list.items ?? []).flatMap((item) => {
    const name = item.metadata?.name;
    if (name === undefined) return [];
    const annotated = PARENT_ANNOTATIONS.map((key) => item.metadata?.annotations?.[key]?.trim()).find(Boolean);
    const parent = annotated ?? item.spec?.environmentVariables?.[PARENT_ENV]?.trim();
    return [parent ? { name, parent } : { name }];
  });
}

/**
 * The pods of the namespace that have not finished, by the session they serve: a pod of
 * the session itself, and the pod of a continuation still starting from it (its first
 * pod copies the session's state).
 */
export async function livePodsBySession(kubeConfig: KubeConfig, namespace: string): Promise<Map<string, string[]>> {
  let pods: V1Pod[];
  try {
    pods = (await kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({ namespace })).items;
  } catch (error) {
    throw new ToolError(`cannot list the pods of ${namespace}: ${describeError(error)}`);
  }
  const bySession = new Map<string, string[]>();
  const add = (session: string | undefined, pod: string) => {
    if (session) bySession.set(session, [...(bySession.get(session) ?? []), pod]);
  };
  for (const pod of pods) {
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    const name = pod.metadata?.name ?? '(unnamed)';
    add(pod.metadata?.labels?.[SESSION_LABEL] ?? pod.metadata?.annotations?.[SESSION_NAME_ANNOTATION], name);
    add(pod.metadata?.annotations?.[PARENT_ANNOTATION], name);
  }
  return bySession;
}
