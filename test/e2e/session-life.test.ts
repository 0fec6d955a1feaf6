import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { podVolumes, runContainer, type PodVolumes } from '../support/cluster-agent.js';
import {
  adminApi,
  anyContainer,
  createNamespace,
  initContainer,
  integrationSecret,
  kubectlOk,
  readYaml,
  toYaml,
  waitUntil,
  type WebhookProcess,
} from '../support/cluster-client.js';
import { lockCluster } from '../support/cluster-lock.js';
import { installManifests, runInstalledWebhook } from '../support/cluster-webhook.js';
import { addUser, createBucket, rootClient } from '../support/minio.js';

const cluster = inject('cluster');
const minio = inject('minio');
const api = adminApi(cluster);
const SESSION = 'sess-life';
const CLAUDE_SUBPATH = 'sessions/sess-7f3a/.claude';

async function listKeys(bucket: string, prefix: string): Promise<string[]> {
  const s3 = rootClient(minio);
  try {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (listed.Contents ?? []).map((o) => o.Key ?? '').sort();
  } finally {
    s3.destroy();
  }
}

/** The platform's runner pod (test/fixtures) as pod `name` of the session, in `namespace`. */
async function runnerPod(namespace: string, name: string): Promise<V1Pod> {
  const pod = await readYaml<V1Pod>('test/fixtures/pods/session-runner.yaml');
  pod.metadata = { name, namespace, labels: { 'agentic-session': SESSION, app: 'ambient-code-runner' } };
  pod.spec!.serviceAccountName = 'ambient-session';
  return pod;
}

async function createAndRead(pod: V1Pod): Promise<V1Pod> {
  await kubectlOk(cluster, ['create', '-f', '-'], toYaml(pod));
  return api.core.readNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! });
}

const workspace = (volumes: PodVolumes) => volumes.get('workspace')!;

describe("a session's whole life through the agent processes of the stored pods", () => {
  let webhook: WebhookProcess;
  let bucket: string;
  const namespace = 'e2e-life';

  let unlock: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
    await installManifests(cluster);
    webhook = await runInstalledWebhook(cluster);
    bucket = await createBucket(minio, 'e2e-life');
    // The agent's IAM policy from the README: objects of this bucket, and listing it.
    const user = await addUser(minio, {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`] },
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${bucket}/*`] },
      ],
    });
    await createNamespace(cluster, namespace, { 'ambient-code.io/session-storage': 'enabled' }, ['ambient-session']);
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret(namespace, {
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

  it('hydrates a new session, syncs periodically and on SIGTERM, and a second pod restores the same bytes', async () => {
    const first = await createAndRead(await runnerPod(namespace, `${SESSION}-runner`));
    const volumes = await podVolumes(first);
    const ws = workspace(volumes);

    const hydrate = await runContainer(api, first, initContainer(first, 'init-hydrate')!, volumes);
    expect(await hydrate.exited, hydrate.output()).toBe(0);
    expect(hydrate.output()).toContain('No existing state found, starting fresh session');

    // The runner writes, as it would, through its own mounts (.claude via its subPath).
    const files: Record<string, Buffer> = {
      [`${CLAUDE_SUBPATH}/projects/-workspace/history.jsonl`]: Buffer.from('{"role":"user","content":"hello"}\n'),
      [`${CLAUDE_SUBPATH}/.credentials.json`]: Buffer.from('{"token":"runner-secret"}'),
      'artifacts/report.md': Buffer.from('# Report\n'),
      'uploads/data.bin': randomBytes(1024 * 1024 + 17),
      'artifacts/draft.md': Buffer.from('deleted by the runner later'),
    };
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(ws, path)), { recursive: true });
      await writeFile(join(ws, path), content, { mode: path.endsWith('.json') ? 0o600 : 0o644 });
    }
    await utimes(join(ws, 'artifacts/report.md'), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
    await mkdir(join(ws, 'artifacts/node_modules/pkg'), { recursive: true });
    await writeFile(join(ws, 'artifacts/node_modules/pkg/index.js'), 'excluded');

    const sync = await runContainer(api, first, anyContainer(first, 'state-sync')!, volumes);
    const prefix = `${namespace}/${SESSION}/`;
    await waitUntil(
      'the periodic sync to upload the runner files',
      async () => {
        if (!/Sync complete/.test(sync.output())) return undefined;
        const keys = await listKeys(bucket, prefix);
        return keys.includes(`${prefix}uploads/data.bin`) && keys.includes(`${prefix}.claude/projects/-workspace/history.jsonl`)
          ? keys
          : undefined;
      },
      30_000,
      250,
    );
    expect(sync.output()).toMatch(/\[\d{4}-\d\d-\d\dT[^\]]+\] Sync complete \(5 paths synced\)/);

    // The runner keeps working: a later periodic cycle carries the new file.
    await writeFile(join(ws, 'artifacts/second.md'), 'written between cycles');
    await waitUntil(
      'a later periodic cycle to upload the new file',
      async () => ((await listKeys(bucket, prefix)).includes(`${prefix}artifacts/second.md`) ? true : undefined),
      30_000,
      250,
    );

    // Written just before the pod is terminated: the final sync must carry it.
    await appendFile(join(ws, `${CLAUDE_SUBPATH}/projects/-workspace/history.jsonl`), '{"role":"assistant","content":"bye"}\n');
    await writeFile(join(ws, 'artifacts/late.txt'), 'written right before SIGTERM');
    const terminatedAt = Date.now();
    sync.child.kill('SIGTERM');
    expect(await sync.exited, sync.output()).toBe(0);
    expect(Date.now() - terminatedAt).toBeLessThan(45_000);

    const keys = await listKeys(bucket, prefix);
    expect(keys).toContain(`${prefix}artifacts/late.txt`);
    expect(keys).toContain(`${prefix}metadata.json`);
    expect(keys.some((k) => k.includes('node_modules'))).toBe(false);

    // A new pod for the same session: fresh EmptyDirs, hydrate restores everything.
    const second = await createAndRead(await runnerPod(namespace, `${SESSION}-runner-2`));
    const volumes2 = await podVolumes(second);
    const rehydrate = await runContainer(api, second, initContainer(second, 'init-hydrate')!, volumes2);
    expect(await rehydrate.exited, rehydrate.output()).toBe(0);
    const ws2 = workspace(volumes2);
    for (const path of [...Object.keys(files), 'artifacts/second.md', 'artifacts/late.txt']) {
      const [before, after] = [await readFile(join(ws, path)), await readFile(join(ws2, path))];
      expect(after.equals(before), path).toBe(true);
      expect(Math.floor((await stat(join(ws2, path))).mtimeMs / 1000), path).toBe(
        Math.floor((await stat(join(ws, path))).mtimeMs / 1000),
      );
    }
    await expect(stat(join(ws2, 'artifacts/node_modules/pkg/index.js'))).rejects.toThrow();

    // This pod restored the state, so a file the runner deletes is deleted in S3 too.
    const sync2 = await runContainer(api, second, anyContainer(second, 'state-sync')!, volumes2);
    await rm(join(ws2, 'artifacts/draft.md'));
    await waitUntil(
      'the deletion to reach S3',
      async () => (!(await listKeys(bucket, prefix)).includes(`${prefix}artifacts/draft.md`) ? true : undefined),
      30_000,
      250,
    );
    expect(await listKeys(bucket, prefix)).toContain(`${prefix}artifacts/report.md`);
    sync2.child.kill('SIGTERM');
    expect(await sync2.exited, sync2.output()).toBe(0);
  });

  it('with S3_ENABLED=false the pod gets no agent and nothing reaches S3', async () => {
    const off = 'e2e-life-off';
    await createNamespace(cluster, off, { 'ambient-code.io/session-storage': 'enabled' }, ['ambient-session']);
    await kubectlOk(cluster, ['apply', '-f', '-'], toYaml(integrationSecret(off, {
      S3_ENABLED: 'false',
      S3_ENDPOINT: minio.endpoint,
      S3_BUCKET: bucket,
    })));
    const pod = await createAndRead(await runnerPod(off, `${SESSION}-runner`));
    expect(anyContainer(pod, 'init-hydrate')).toBeUndefined();
    expect(anyContainer(pod, 'state-sync')).toBeUndefined();
    expect(pod.spec?.volumes?.find((v) => v.name === 'workspace')?.emptyDir).toBeDefined();
    expect(await listKeys(bucket, `${off}/`)).toEqual([]);
  });
});
