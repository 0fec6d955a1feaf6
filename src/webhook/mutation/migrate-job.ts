import type { V1Container, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { stateClaim } from '../lookups/claim-source.js';
import type { MutationConfig } from '../config/config.js';
import { classify, mutate } from './mutate.js';
import { AGENT_VOLUMES, MIGRATED_TO_ANNOTATION, SYNC_CONTAINER } from '../config/names.js';
import type { S3Decision } from '../config/s3-settings.js';

export class MigrationRefused extends Error {}

export interface MigrationJob {
  job: {
    apiVersion: 'batch/v1';
    kind: 'Job';
    metadata: { name: string; namespace: string; labels: Record<string, string> };
    spec: { backoffLimit: number; template: { metadata: { labels: Record<string, string> }; spec: V1PodSpec } };
  };
  session: string;
  claim: string;
}

const LABELS = {
  'app.kubernetes.io/name': 'session-storage-migrate',
  'app.kubernetes.io/part-of': 'ambient-session-storage',
};

/**
 * A Job that copies a PVC session's files to S3 under the session's prefix, built from
 * the session's own pod so it syncs exactly what the injected `state-sync` would (same
 * paths, `.claude` subPath, excludes, uid). It runs `sync --once` with the PVC mounted:
 * without a hydrate in the pod, sync uploads and never deletes, so the PVC stays the
 * source and anything already under the prefix is only added to.
 */
export function buildMigrationJob(pod: V1Pod, namespace: string, config: MutationConfig, s3: S3Decision): MigrationJob {
  const classification = classify(pod);
  switch (classification.kind) {
    case 'session':
      break;
    case 'skip':
      throw new MigrationRefused(
        classification.reason === 'opted-out' ? 'the pod is opted out of session storage' : 'not a session pod',
      );
    case 'already-managed':
      throw new MigrationRefused("the platform's own containers already sync this session to S3");
    case 'invalid-session':
      throw new MigrationRefused(classification.message);
    case 'reinvocation':
      throw new MigrationRefused('the pod is already on S3 (mutated by the webhook)');
  }
  const { session } = classification;
  const claim = stateClaim(pod, config.stateVolume);
  if (claim === undefined) throw new MigrationRefused(`the state volume "${config.stateVolume}" is not a PVC: nothing to copy`);
  if (s3.kind === 'deny') throw new MigrationRefused(s3.message);
  if (s3.kind === 'ephemeral') throw new MigrationRefused(`nowhere to copy to: ${s3.warning}`);

  const mutated = mutate(pod, config, s3);
  const sync = mutated.outcome === 'patched' ? findSync(mutated.pod) : undefined;
  if (mutated.outcome !== 'patched' || sync === undefined) {
    throw new MigrationRefused(mutated.outcome === 'denied' ? mutated.message : 'the webhook would inject no state-sync into this pod');
  }
  const { restartPolicy: _sidecar, ...container } = sync;
  const stateVolume = (pod.spec?.volumes ?? []).find((volume) => volume.persistentVolumeClaim?.claimName === claim)!;
  const agentVolumes = (mutated.pod.spec?.volumes ?? []).filter(
    (volume) => AGENT_VOLUMES.includes(volume.name),
  );
  const spec: V1PodSpec = {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    // The runner's fsGroup, so the PVC's files are readable as they are in the session.
    ...(pod.spec?.securityContext ? { securityContext: pod.spec.securityContext } : {}),
    containers: [{ ...container, name: 'copy-to-s3', args: ['sync', '--once'] }],
    volumes: [stateVolume, ...agentVolumes],
  };
  return {
    session,
    claim,
    job: {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: `session-storage-migrate-${session}`.slice(0, 63).replace(/-+$/, ''), namespace, labels: LABELS },
      spec: { backoffLimit: 2, template: { metadata: { labels: LABELS }, spec } },
    },
  };
}

/** What to run once the Job has succeeded, so the session's next pod uses S3. */
export function afterMigration(result: MigrationJob): string {
  const { job, claim, session } = result;
  return [
    `kubectl -n ${job.metadata.namespace} wait --for=condition=complete --timeout=1h job/${job.metadata.name}`,
    `kubectl -n ${job.metadata.namespace} annotate pvc ${claim} ${MIGRATED_TO_ANNOTATION}=${session}`,
  ].join('\n');
}

function findSync(pod: V1Pod): V1Container | undefined {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === SYNC_CONTAINER);
}
