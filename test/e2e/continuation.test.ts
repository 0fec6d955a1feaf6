import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { podVolumes, runContainer } from '../support/cluster-agent.js';
import { adminApi, anyContainer, createNamespace, initContainer, integrationSecret, kubectlOk, readYaml, toYaml, waitUntil, type WebhookProcess } from '../support/cluster-client.js';
import { lockCluster } from '../support/cluster-lock.js';
import { installManifests, runInstalledWebhook } from '../support/cluster-webhook.js';
import { addUser, createBucket, rootClient } from '../support/minio.js';
import { seedIamPolicy } from '../support/policies.js';

// The platform's pods through the real API server and the installed webhook, then the
// agent processes with exactly the env of the stored pods, against MinIO: a continuation
// (the PVC era's pod, test/fixtures/pods/pvc-continuation.yaml) starts from its parent's
// files, and the Gemini runner's state directory is saved and restored.

const cluster = inject('cluster');
const minio = inject('minio');
const api = adminApi(cluster);
const NAMESPACE = 'e2e-continuation';

async function keys(bucket: string, prefix: string): Promise<string[]> {
  const s3 = rootClient(minio);
  try {
    return ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
  } finally {
    s3.destroy();
  }
}

async function createAndRead(pod: V1Pod): Promise<V1Pod> {
  const created = JSON.parse(await kubectlOk(cluster, ['create', '-o', 'json', '-f', '-'], toYaml(pod))) as V1Pod;
  return api.core.readNamespacedPod({ name: created.metadata!.name!, namespace: NAMESPACE });
}

/** The session's runner pod (test/fixtures/pods/session-runner.yaml) as pod `name` of `session`. */
async function runnerPod(session: string, name: string, edit: (pod: V1Pod) => void = () => {}): Promise<V1Pod> {
  const pod = await readYaml<V1Pod>('test/fixtures/pods/session-runner.yaml');
  pod.metadata = { name, namespace: NAMESPACE, labels: { 'agentic-session': session, app: 'ambient-code-runner' } };
  pod.spec!.serviceAccountName = 'default';
  edit(pod);
  return pod;
}

async function write(root: string, files: Record<string, string>): Promise<void> {
  for (const [file, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, file)), { recursive: true });
    await writeFile(join(root, file), content);
  }
}

// One life of a pod: hydrate, the runner's writes, then state-sync until SIGTERM.
async function live(pod: V1Pod, files: Record<string, string>): Promise<string> {
  const volumes = await podVolumes(pod);
  const hydrate = await runContainer(api, pod, initContainer(pod, 'init-hydrate')!, volumes);
  expect(await hydrate.exited, hydrate.output()).toBe(0);
  await write(volumes.get('workspace')!, files);
  const sync = await runContainer(api, pod, anyContainer(pod, 'state-sync')!, volumes);
  await waitUntil('the first sync cycle', async () => (/Sync complete/.test(sync.output()) ? true : undefined), 30_000, 100);
  sync.child.kill('SIGTERM');
  expect(await sync.exited, sync.output()).toBe(0);
  return volumes.get('workspace')!;
}

describe('continuations and runner state directories through the API server', () => {
  let webhook: WebhookProcess;
  let bucket: string;
  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    await installManifests(cluster);
    webhook = await runInstalledWebhook(cluster);
    bucket = await createBucket(minio, 'e2e-continuation');
    const user = await addUser(minio, seedIamPolicy(bucket));
    await createNamespace(cluster, NAMESPACE, { 'ambient-code.io/session-storage': 'enabled' });
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret(NAMESPACE, {
      S3_ENABLED: 'true',
      S3_ENDPOINT: minio.endpoint,
      S3_BUCKET: bucket,
      S3_REGION: minio.region,
      S3_ACCESS_KEY: user.accessKey,
      S3_SECRET_KEY: user.secretKey,
    })));
  });

  afterAll(async () => {
    await webhook?.stop();
    await unlock?.();
  });

  it("a PVC-era continuation pod hydrates its parent's files into its own prefix; the parent is left as it was", async () => {
    const parent = await createAndRead(await runnerPod('sess-parent', 'sess-parent-runner', (pod) => {
      pod.spec!.containers[0]!.volumeMounts![1]!.subPath = 'sessions/sess-parent/.claude';
    }));
    await live(parent, {
      'sessions/sess-parent/.claude/projects/-workspace/history.jsonl': '{"role":"user","content":"parent"}\n',
      'artifacts/report.md': '# The parent\'s report\n',
    });
    const parentKeys = await keys(bucket, `${NAMESPACE}/sess-parent/`);

    const template = await readYaml<V1Pod>('test/fixtures/pods/pvc-continuation.yaml');
    template.metadata!.namespace = NAMESPACE;
    const child = await createAndRead(template);
    expect(child.metadata!.annotations!['ambient-code.io/session-storage-parent']).toBe('sess-parent');
    expect(child.spec!.volumes!.find((v) => v.name === 'workspace')!.emptyDir).toBeDefined();
    const env = Object.fromEntries(initContainer(child, 'init-hydrate')!.env!.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ SESSION_NAME: 'sess-child', PARENT_SESSION_NAME: 'sess-parent' });

    const volumes = await podVolumes(child);
    const hydrate = await runContainer(api, child, initContainer(child, 'init-hydrate')!, volumes);
    expect(await hydrate.exited, hydrate.output()).toBe(0);
    expect(hydrate.output()).toContain('Continuation of session sess-parent: copied 2 files');
    const ws = volumes.get('workspace')!;
    // The parent's .claude history at the child's own subPath, as the runner mounts it.
    expect(await readFile(join(ws, 'sessions/sess-child/.claude/projects/-workspace/history.jsonl'), 'utf8')).toBe('{"role":"user","content":"parent"}\n');
    expect(await readFile(join(ws, 'artifacts/report.md'), 'utf8')).toBe('# The parent\'s report\n');
    expect(await keys(bucket, `${NAMESPACE}/sess-child/`)).toEqual(expect.arrayContaining(['.claude/projects/-workspace/history.jsonl', 'artifacts/report.md', 'metadata.json']));
    expect(await keys(bucket, `${NAMESPACE}/sess-parent/`)).toEqual(parentKeys);
  });

  it("saves and restores the Gemini runner's .gemini, named by its RUNNER_STATE_DIR", async () => {
    const gemini = (name: string) =>
      runnerPod('sess-gemini', name, (pod) => {
        const runner = pod.spec!.containers[0]!;
        runner.env!.push({ name: 'RUNNER_TYPE', value: 'gemini-cli' }, { name: 'RUNNER_STATE_DIR', value: '.gemini' });
        runner.volumeMounts = [{ name: 'workspace', mountPath: '/workspace' }, { name: 'workspace', mountPath: '/app/.gemini', subPath: '.gemini' }];
        pod.spec!.volumes = [{ name: 'workspace', emptyDir: {} }];
      });
    const first = await createAndRead(await gemini('sess-gemini-runner'));
    const syncPaths = initContainer(first, 'init-hydrate')!.env!.find((e) => e.name === 'SYNC_PATHS')!.value!;
    expect(syncPaths.split(',')).toContain('.gemini');
    await live(first, { '.gemini/chats/session-1.json': '{"history":["hi"]}' });
    expect(await keys(bucket, `${NAMESPACE}/sess-gemini/`)).toContain('.gemini/chats/session-1.json');

    const second = await createAndRead(await gemini('sess-gemini-runner-2'));
    const volumes = await podVolumes(second);
    const hydrate = await runContainer(api, second, initContainer(second, 'init-hydrate')!, volumes);
    expect(await hydrate.exited, hydrate.output()).toBe(0);
    expect(await readFile(join(volumes.get('workspace')!, '.gemini/chats/session-1.json'), 'utf8')).toBe('{"history":["hi"]}');
  });
});
