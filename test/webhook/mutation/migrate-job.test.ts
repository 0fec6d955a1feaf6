import { describe, expect, it } from 'vitest';
import { afterMigration, buildMigrationJob } from '../../../src/webhook/mutation/migrate-job.js';
import { decideS3, type S3Decision } from '../../../src/webhook/config/s3-settings.js';
import { defaultConfig, loadPod, loadSecretSummary } from '../fixtures.js';

const config = defaultConfig();
const s3 = (name: string): S3Decision => decideS3(loadSecretSummary(name), config.policy);

describe('the Job that copies a PVC session to S3', () => {
  const result = buildMigrationJob(loadPod('session-runner'), 'project-a', config.mutation, s3('complete'));
  const spec = result.job.spec.template.spec;
  const container = spec.containers[0]!;
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

  it("mounts the session's PVC and runs one sync, which uploads and never deletes", () => {
    expect(result).toMatchObject({ session: 'sess-7f3a', claim: 'ambient-workspace-sess-7f3a' });
    expect(spec.volumes![0]).toEqual({ name: 'workspace', persistentVolumeClaim: { claimName: 'ambient-workspace-sess-7f3a' } });
    expect(spec.volumes!.map((v) => v.name)).toEqual(['workspace', 'session-storage-state', 'session-storage-tmp']);
    expect(container).toMatchObject({ name: 'copy-to-s3', args: ['sync', '--once'] });
    expect(container.restartPolicy).toBeUndefined();
    expect(spec.restartPolicy).toBe('Never');
  });

  it('syncs what the injected state-sync would: the runner\'s .claude subPath, its uid and fsGroup, the secret by reference', () => {
    expect(env).toMatchObject({
      SESSION_NAME: 'sess-7f3a',
      SYNC_PATHS: '.claude=sessions/sess-7f3a/.claude,.gemini,artifacts,uploads,file-uploads',
      AWS_SECRET_ACCESS_KEY: { secretKeyRef: { name: 'ambient-non-vertex-integrations', key: 'S3_SECRET_KEY' } },
    });
    expect(container.securityContext).toMatchObject({ runAsUser: 1001, readOnlyRootFilesystem: true });
    expect(spec.securityContext).toMatchObject({ fsGroup: 1001 });
    expect(JSON.stringify(result.job)).not.toContain('wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY');
  });

  it('is not a session pod itself, so the webhook leaves it alone', () => {
    expect(result.job.metadata).toMatchObject({ name: 'session-storage-migrate-sess-7f3a', namespace: 'project-a' });
    expect(result.job.spec.template.metadata.labels).not.toHaveProperty('agentic-session');
  });

  it('names the steps that make the next pod use S3', () => {
    expect(afterMigration(result)).toBe(
      'kubectl -n project-a wait --for=condition=complete --timeout=1h job/session-storage-migrate-sess-7f3a\n' +
        'kubectl -n project-a annotate pvc ambient-workspace-sess-7f3a ambient-code.io/session-storage-migrated-to=sess-7f3a',
    );
  });

  it.each([
    ['plain-pod', 'complete', 'not a session pod'],
    ['opted-out', 'complete', 'the pod is opted out of session storage'],
    ['platform-s3-operator', 'complete', "the platform's own containers already sync this session to S3"],
    ['control-plane', 'complete', 'the state volume "workspace" is not a PVC: nothing to copy'],
    ['session-runner', 'disabled', 'nowhere to copy to: S3 disabled in project settings'],
    ['session-runner', 'incomplete', 'incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY'],
  ])('refuses %s with the %s secret: %s', (pod, secret, message) => {
    expect(() => buildMigrationJob(loadPod(pod), 'project-a', config.mutation, s3(secret))).toThrow(message);
  });
});
