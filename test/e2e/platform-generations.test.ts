import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  adminApi,
  anyContainer,
  createNamespace,
  initContainer,
  integrationSecret,
  kubectl,
  kubectlOk,
  readYaml,
  ROOT,
  toYaml,
  waitUntil,
  type WebhookProcess,
} from '../support/cluster-client.js';
import { podVolumes, runContainer } from '../support/cluster-agent.js';
import { lockCluster } from '../support/cluster-lock.js';
import { installManifests, runInstalledWebhook } from '../support/cluster-webhook.js';
import { addUser, createBucket, rootClient } from '../support/minio.js';
import { parse } from 'yaml';

// The pods of every platform generation, and sessions created before a namespace opted
// in, through the real API server with the installed manifests (selection, RBAC and the
// stored pod are the API server's doing, not the webhook's).

const cluster = inject('cluster');
const minio = inject('minio');
const api = adminApi(cluster);
const OPT_IN = { 'ambient-code.io/session-storage': 'enabled' };
const STATUS = 'ambient-code.io/session-storage-status';
const ENABLED_AT = 'ambient-code.io/session-storage-enabled-at';

const completeSecret = (namespace: string) =>
  integrationSecret(namespace, {
    STORAGE_MODE: 'custom',
    S3_ENDPOINT: minio.endpoint,
    S3_BUCKET: 'sessions',
    S3_REGION: minio.region,
    S3_ACCESS_KEY: 'AKIAE2EACCESSKEY',
    S3_SECRET_KEY: 'e2e-secret-value-never-in-the-pod',
  });

async function create(pod: object): Promise<{ code: number; stdout: string; stderr: string }> {
  return kubectl(cluster, ['create', '-f', '-'], { input: toYaml(pod) });
}

const stored = (namespace: string, name: string) => api.core.readNamespacedPod({ name, namespace });

async function fixture(name: string, namespace: string): Promise<V1Pod> {
  const pod = await readYaml<V1Pod>(`test/fixtures/pods/${name}.yaml`);
  pod.metadata!.namespace = namespace;
  // The owners (an AgenticSession, a Job) do not exist in this cluster.
  delete pod.metadata!.ownerReferences;
  return pod;
}

/** A PVC-era runner pod of `session`, naming PVC `claim`. */
async function pvcPod(namespace: string, session: string, claim = `ambient-workspace-${session}`): Promise<V1Pod> {
  const pod = await fixture('session-runner', namespace);
  pod.metadata!.name = `${session}-runner`;
  pod.metadata!.labels = { 'agentic-session': session, app: 'ambient-code-runner' };
  pod.spec!.serviceAccountName = 'default';
  pod.spec!.volumes = [{ name: 'workspace', persistentVolumeClaim: { claimName: claim } }];
  pod.spec!.containers[0]!.volumeMounts![1]!.subPath = `sessions/${session}/.claude`;
  return pod;
}

/** A workspace PVC as the PVC-era operator creates it. */
async function createClaim(namespace: string, name: string): Promise<V1PersistentVolumeClaim> {
  await kubectlOk(
    cluster,
    ['create', '-f', '-'],
    toYaml({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace, labels: { app: 'ambient-workspace' } },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } } },
    }),
  );
  return api.core.readNamespacedPersistentVolumeClaim({ name, namespace });
}

function expectKeptOnPvc(pod: V1Pod, claim: string): void {
  expect(pod.spec?.volumes?.find((v) => v.name === 'workspace')?.persistentVolumeClaim?.claimName).toBe(claim);
  expect(anyContainer(pod, 'init-hydrate')).toBeUndefined();
  expect(anyContainer(pod, 'state-sync')).toBeUndefined();
  expect(pod.metadata?.annotations?.[STATUS]).toBeUndefined();
}

function expectOnS3(pod: V1Pod): void {
  expect(pod.spec?.volumes?.some((v) => v.persistentVolumeClaim)).toBe(false);
  expect(initContainer(pod, 'init-hydrate')?.args).toEqual(['hydrate']);
  expect(initContainer(pod, 'state-sync')).toMatchObject({ restartPolicy: 'Always', args: ['sync'] });
  expect(JSON.parse(pod.metadata?.annotations?.[STATUS] ?? '{}')).toMatchObject({ mode: 'sync' });
}

const envValue = (pod: V1Pod, container: string, name: string) =>
  anyContainer(pod, container)?.env?.find((e) => e.name === name)?.value;

describe('pods of every platform generation through the real API server', () => {
  let webhook: WebhookProcess;
  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    await installManifests(cluster);
    webhook = await runInstalledWebhook(cluster);
  });

  afterAll(async () => {
    await webhook?.stop();
    await unlock?.();
  });

  it("stores the platform operator's own S3 pod exactly as created, with the already-managed warning", async () => {
    const namespace = 'e2e-gen-operator-s3';
    await createNamespace(cluster, namespace, OPT_IN);
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret(namespace)));
    const pod = await fixture('platform-s3-operator', namespace);
    const result = await create(pod);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain("Warning: the platform's own init-hydrate, state-sync already manage this pod's state: left unchanged");
    const got = await stored(namespace, 'sess-op1-runner');
    expect(got.metadata?.annotations?.[STATUS]).toBeUndefined();
    expect(got.spec?.initContainers?.map((c) => [c.name, c.command])).toEqual([['init-hydrate', ['/usr/local/bin/hydrate.sh']]]);
    expect(got.spec?.containers.map((c) => [c.name, c.command])).toEqual([
      ['ambient-code-runner', undefined],
      ['state-sync', ['/usr/local/bin/sync.sh']],
    ]);
    expect(got.spec?.volumes?.find((v) => v.name === 'workspace')).toEqual({ name: 'workspace', emptyDir: { sizeLimit: '10Gi' } });
    expect(got.spec?.terminationGracePeriodSeconds).toBe(60);
    expect(envValue(got, 'state-sync', 'SESSION_NAME')).toBe('sess-op1');
  });

  it('sends a control-plane pod (no agentic-session label) to the webhook and stores it with hydrate and sync on its workspace EmptyDir', async () => {
    const namespace = 'e2e-gen-control-plane';
    const pod = await fixture('control-plane', namespace);
    await createNamespace(cluster, namespace, OPT_IN, [pod.spec!.serviceAccountName!]);
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret(namespace)));
    const result = await create(pod);
    expect(result.code, result.stderr).toBe(0);
    const got = await stored(namespace, pod.metadata!.name!);
    expect(got.metadata?.labels?.['agentic-session']).toBeUndefined();
    expectOnS3(got);
    // The session's name, from the annotation; never the session id or the pod name.
    expect(envValue(got, 'init-hydrate', 'SESSION_NAME')).toBe('sess-cp1');
    expect(envValue(got, 'state-sync', 'SESSION_NAME')).toBe('sess-cp1');
    // The state volume is the pod's own EmptyDir, left as the control plane made it.
    expect(got.spec?.volumes?.find((v) => v.name === 'workspace')).toEqual({ name: 'workspace', emptyDir: {} });
    expect(initContainer(got, 'init-hydrate')?.volumeMounts?.[0]).toEqual({ name: 'workspace', mountPath: '/workspace' });
    expect(got.spec?.restartPolicy).toBe('Never');
    expect(got.spec?.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
    expect(JSON.stringify(got)).not.toContain('e2e-secret-value-never-in-the-pod');
  });

  it("a control-plane session's agents, run with the stored pods' env, keep its state under the session name", async () => {
    const namespace = 'e2e-gen-control-plane-life';
    const bucket = await createBucket(minio, 'e2e-cp');
    const user = await addUser(minio, {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`] },
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${bucket}/*`] },
      ],
    });
    const template = await fixture('control-plane', namespace);
    await createNamespace(cluster, namespace, OPT_IN, [template.spec!.serviceAccountName!]);
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret(namespace, {
      STORAGE_MODE: 'custom',
      S3_ENDPOINT: minio.endpoint,
      S3_BUCKET: bucket,
      S3_REGION: minio.region,
      S3_ACCESS_KEY: user.accessKey,
      S3_SECRET_KEY: user.secretKey,
    })));
    // The control plane names a session's pods after its id; a restarted session gets a new pod.
    const podOf = async (name: string) => {
      const pod = structuredClone(template);
      pod.metadata!.name = name;
      expect((await create(pod)).code).toBe(0);
      return stored(namespace, name);
    };

    const first = await podOf('session-cp-life-runner');
    const volumes = await podVolumes(first);
    const hydrate = await runContainer(api, first, initContainer(first, 'init-hydrate')!, volumes);
    expect(await hydrate.exited, hydrate.output()).toBe(0);
    expect(hydrate.output()).toContain('No existing state found, starting fresh session');
    const ws = volumes.get('workspace')!;
    await mkdir(join(ws, 'artifacts'), { recursive: true });
    await writeFile(join(ws, 'artifacts/result.md'), '# made by the control-plane runner\n');
    const sync = await runContainer(api, first, anyContainer(first, 'state-sync')!, volumes);
    await waitUntil('the first periodic sync', async () => (/Sync complete/.test(sync.output()) ? true : undefined), 30_000, 100);
    sync.child.kill('SIGTERM');
    expect(await sync.exited, sync.output()).toBe(0);

    const s3 = rootClient(minio);
    try {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${namespace}/` }));
      expect((listed.Contents ?? []).map((o) => o.Key)).toContain(`${namespace}/sess-cp1/artifacts/result.md`);
    } finally {
      s3.destroy();
    }

    const second = await podOf('session-cp-life-runner-2');
    const volumes2 = await podVolumes(second);
    const rehydrate = await runContainer(api, second, initContainer(second, 'init-hydrate')!, volumes2);
    expect(await rehydrate.exited, rehydrate.output()).toBe(0);
    expect(await readFile(join(volumes2.get('workspace')!, 'artifacts/result.md'), 'utf8')).toBe('# made by the control-plane runner\n');
  });

  it('never sends a pod that is neither labelled nor annotated as a session', async () => {
    const namespace = 'e2e-gen-plain';
    await createNamespace(cluster, namespace, OPT_IN);
    const plain = await fixture('plain-pod', namespace);
    plain.metadata!.name = 'plain-never-reviewed';
    // Control-plane labels alone do not make a session: the name comes from the annotation.
    plain.metadata!.labels = { ...plain.metadata!.labels, 'ambient-code.io/managed': 'true' };
    expect((await create(plain)).code).toBe(0);
    const got = await stored(namespace, 'plain-never-reviewed');
    expect(got.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName).toBe('backend-data');
    expect(webhook.output()).not.toContain('plain-never-reviewed');
  });

  it('STORAGE_MODE=shared: PVC swapped, no S3 containers, the warning naming the mode, stale S3 keys ignored', async () => {
    const namespace = 'e2e-gen-shared';
    await createNamespace(cluster, namespace, OPT_IN);
    const secret = completeSecret(namespace) as { stringData: Record<string, string> };
    secret.stringData.STORAGE_MODE = 'shared';
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(secret));
    const result = await create(await pvcPod(namespace, 'sess-shared'));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('Warning: S3 not configured: session state is ephemeral (STORAGE_MODE=shared; use custom with S3_* keys)');
    const got = await stored(namespace, 'sess-shared-runner');
    expect(got.spec?.volumes?.find((v) => v.name === 'workspace')).toEqual({ name: 'workspace', emptyDir: { sizeLimit: '10Gi' } });
    expect(anyContainer(got, 'init-hydrate')).toBeUndefined();
    expect(anyContainer(got, 'state-sync')).toBeUndefined();
  });

  describe('sessions that still live on a PVC', () => {
    it('keeps the PVC of a session created before the opt-in time; sessions after it get S3', async () => {
      const namespace = 'e2e-gen-migration';
      await createNamespace(cluster, namespace, OPT_IN);
      await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret(namespace)));
      const old = await createClaim(namespace, 'ambient-workspace-sess-old');
      // The API server stamps whole seconds; the opt-in is the next one, and the new
      // session's PVC is created once that second has passed.
      const enabledAt = new Date(new Date(old.metadata!.creationTimestamp!).getTime() + 1000);
      await kubectlOk(cluster, ['annotate', 'namespace', namespace, `${ENABLED_AT}=${enabledAt.toISOString().replace('.000Z', 'Z')}`]);
      await new Promise((r) => setTimeout(r, Math.max(0, enabledAt.getTime() - Date.now() + 50)));
      await createClaim(namespace, 'ambient-workspace-sess-new');

      const kept = await create(await pvcPod(namespace, 'sess-old'));
      expect(kept.code, kept.stderr).toBe(0);
      expect(kept.stderr).toContain('Warning: existing PVC kept, no S3 sync (created before the opt-in): ambient-workspace-sess-old');
      expectKeptOnPvc(await stored(namespace, 'sess-old-runner'), 'ambient-workspace-sess-old');

      // A continuation created after the opt-in names its parent's PVC, and stays with it.
      const continuation = await create(await pvcPod(namespace, 'sess-old-2', 'ambient-workspace-sess-old'));
      expect(continuation.code, continuation.stderr).toBe(0);
      expectKeptOnPvc(await stored(namespace, 'sess-old-2-runner'), 'ambient-workspace-sess-old');

      const created = await create(await pvcPod(namespace, 'sess-new'));
      expect(created.stderr).toBe('');
      expectOnS3(await stored(namespace, 'sess-new-runner'));

      // The controller creates pod and PVC together: no PVC yet is a new session too.
      const early = await create(await pvcPod(namespace, 'sess-early'));
      expect(early.stderr).toBe('');
      expectOnS3(await stored(namespace, 'sess-early-runner'));
    });

    it('with no opt-in time recorded: keeps a PVC that was bound, swaps one that never was', async () => {
      const namespace = 'e2e-gen-no-time';
      await createNamespace(cluster, namespace, OPT_IN);
      await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(completeSecret(namespace)));
      await createClaim(namespace, 'ambient-workspace-sess-bound');
      await createClaim(namespace, 'ambient-workspace-sess-pending');
      // No volume controller runs here; the status is what it would have set.
      await kubectlOk(cluster, ['patch', 'pvc', 'ambient-workspace-sess-bound', '-n', namespace, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Bound"}}']);

      const bound = await create(await pvcPod(namespace, 'sess-bound'));
      expect(bound.code, bound.stderr).toBe(0);
      expect(bound.stderr).toContain('Warning: existing PVC kept, no S3 sync (bound, namespace has no opt-in time): ambient-workspace-sess-bound');
      expectKeptOnPvc(await stored(namespace, 'sess-bound-runner'), 'ambient-workspace-sess-bound');

      const pending = await create(await pvcPod(namespace, 'sess-pending'));
      expect(pending.stderr).toBe('');
      expectOnS3(await stored(namespace, 'sess-pending-runner'));
    });

    it('denies, naming the annotation, when the opt-in time is not RFC 3339', async () => {
      const namespace = 'e2e-gen-bad-time';
      await createNamespace(cluster, namespace, OPT_IN);
      await kubectlOk(cluster, ['annotate', 'namespace', namespace, `${ENABLED_AT}=last tuesday`]);
      await createClaim(namespace, 'ambient-workspace-sess-x');
      const result = await create(await pvcPod(namespace, 'sess-x'));
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`namespace annotation ${ENABLED_AT} must be an RFC 3339 time like 2026-01-15T09:00:00Z (got "last tuesday")`);
    });

    it("migrate-job copies a kept session's files to S3; once its PVC is marked, the session's next pod hydrates them", async () => {
      const namespace = 'e2e-gen-migrate';
      const session = 'sess-mig';
      const claim = `ambient-workspace-${session}`;
      await createNamespace(cluster, namespace, OPT_IN);
      const bucket = await createBucket(minio, 'e2e-mig');
      const user = await addUser(minio, {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`] },
          { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${bucket}/*`] },
        ],
      });
      const secret = integrationSecret(namespace, {
        STORAGE_MODE: 'custom',
        S3_ENDPOINT: minio.endpoint,
        S3_BUCKET: bucket,
        S3_REGION: minio.region,
        S3_ACCESS_KEY: user.accessKey,
        S3_SECRET_KEY: user.secretKey,
      });
      await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(secret));
      const old = await createClaim(namespace, claim);
      const enabledAt = new Date(new Date(old.metadata!.creationTimestamp!).getTime() + 1000);
      await kubectlOk(cluster, ['annotate', 'namespace', namespace, `${ENABLED_AT}=${enabledAt.toISOString().replace('.000Z', 'Z')}`]);
      expect((await create(await pvcPod(namespace, session))).code).toBe(0);
      const kept = await stored(namespace, `${session}-runner`);
      expectKeptOnPvc(kept, claim);

      // The admin's steps: the Job from the session's pod and the project's secret.
      const dir = await mkdtemp(join(tmpdir(), 'migrate-job-'));
      await writeFile(join(dir, 'pod.yaml'), toYaml(kept));
      await writeFile(join(dir, 'secret.yaml'), toYaml(secret));
      const printed = await promisify(execFile)(process.execPath, [
        join(ROOT, 'dist/cli.js'), 'migrate-job', '-f', join(dir, 'pod.yaml'), '--secret', join(dir, 'secret.yaml'),
      ]);
      expect(printed.stderr).toContain(`annotate pvc ${claim} ambient-code.io/session-storage-migrated-to=${session}`);
      await kubectlOk(cluster, ['create', '-f', '-'], printed.stdout);
      const job = parse(printed.stdout) as { metadata: { name: string }; spec: { template: { spec: V1Pod['spec'] } } };
      expect(await kubectlOk(cluster, ['get', 'job', job.metadata.name, '-n', namespace, '-o', 'name'])).toContain(job.metadata.name);

      // Its pod, run as the kubelet would, over the PVC's files (the .claude subPath as the platform mounts it).
      const jobPod: V1Pod = { metadata: { name: `${job.metadata.name}-x`, namespace }, spec: job.spec.template.spec };
      const volumes = await podVolumes(jobPod);
      const files: Record<string, string> = {
        [`sessions/${session}/.claude/projects/-workspace/history.jsonl`]: '{"role":"user","content":"from the PVC era"}\n',
        'artifacts/report.md': '# written on the PVC\n',
      };
      for (const [path, content] of Object.entries(files)) {
        await mkdir(join(volumes.get('workspace')!, path, '..'), { recursive: true });
        await writeFile(join(volumes.get('workspace')!, path), content);
      }
      const copy = await runContainer(api, jobPod, jobPod.spec!.containers[0]!, volumes);
      expect(await copy.exited, copy.output()).toBe(0);

      // Still kept until the admin marks the PVC; then the session's next pod uses S3.
      await kubectlOk(cluster, ['annotate', 'pvc', claim, '-n', namespace, `ambient-code.io/session-storage-migrated-to=${session}`]);
      const next = await pvcPod(namespace, session);
      next.metadata!.name = `${session}-runner-2`;
      expect((await create(next)).stderr).toBe('');
      const moved = await stored(namespace, `${session}-runner-2`);
      expectOnS3(moved);
      const volumes2 = await podVolumes(moved);
      const hydrate = await runContainer(api, moved, initContainer(moved, 'init-hydrate')!, volumes2);
      expect(await hydrate.exited, hydrate.output()).toBe(0);
      for (const [path, content] of Object.entries(files)) {
        expect(await readFile(join(volumes2.get('workspace')!, path), 'utf8'), path).toBe(content);
      }

      // A continuation naming the same PVC has nothing under its own prefix: it stays.
      const continuation = await pvcPod(namespace, `${session}-cont`, claim);
      expect((await create(continuation)).code).toBe(0);
      expectKeptOnPvc(await stored(namespace, `${session}-cont-runner`), claim);
    });

    it('read the PVCs and namespaces with the manifests\' RBAC alone', () => {
      expect(webhook.output()).toContain('existing-pvc-session');
      expect(webhook.output()).not.toMatch(/forbidden|HTTP 403|claim-lookup-failed/i);
    });
  });
});
