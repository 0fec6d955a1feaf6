import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { startAwsSemanticsProxy, type AwsSemanticsProxy } from '../support/aws-semantics-proxy.js';
import { createBucket } from '../support/minio.js';
import { agentEnv, listKeys, newPod, uniqueSession, type Pod } from './support/helpers.js';

// The S3 servers users run differ where MinIO cannot show it: the proxy in front of the
// real MinIO plays each of them, and the agent must work against all.
const minio = inject('minio');
// The session's data, without the agent's own objects under .session-storage/.
const agentData = (key: string) => !key.startsWith('.session-storage/');

describe('deletes on servers MinIO does not play', () => {
  let bucket: string;
  let proxy: AwsSemanticsProxy;
  const pods: Pod[] = [];

  beforeAll(async () => {
    bucket = await createBucket(minio, 'quirks');
    proxy = await startAwsSemanticsProxy(minio.endpoint);
  });
  beforeEach(() => {
    for (const quirk of Object.keys(proxy.plays)) delete proxy.plays[quirk as keyof typeof proxy.plays];
    proxy.requests.length = 0;
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
    await proxy.close();
  });

  // A session that synced three files, then deleted two of them locally.
  async function sessionWithDeletions(): Promise<Pod> {
    const pod = await newPod(agentEnv(minio, bucket, uniqueSession(), { S3_ENDPOINT: proxy.endpoint }));
    pods.push(pod);
    expect(await pod.hydrate()).toBe(true);
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    for (const name of ['keep.txt', 'gone-1.txt', 'gone-2.txt']) await writeFile(path.join(pod.workspace, 'artifacts', name), name);
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 3 });
    await rm(path.join(pod.workspace, 'artifacts/gone-1.txt'));
    await rm(path.join(pod.workspace, 'artifacts/gone-2.txt'));
    return pod;
  }

  it('sends Content-MD5 on DeleteObjects, which older MinIO and Ceph RGW require', async () => {
    proxy.plays.contentMd5OnDelete = true;
    const pod = await sessionWithDeletions();
    expect(await pod.sync()).toMatchObject({ ok: true, deleted: 2, failed: 0 });
    expect((await listKeys(pod.client, bucket, `project-a/${pod.settings.session}/`)).filter(agentData)).toEqual(['artifacts/keep.txt', 'metadata.json']);
    expect(proxy.requests.filter((r) => r.operation === 'DeleteObjects')).toHaveLength(1);
    expect(pod.log.text()).not.toMatch(/\[warn\]|\[error\]/);
  });

  it('falls back to single deletes where multi-object delete is not implemented, and stays there', async () => {
    proxy.plays.noMultiDelete = true;
    const pod = await sessionWithDeletions();
    expect(await pod.sync()).toMatchObject({ ok: true, deleted: 2, failed: 0 });
    const prefix = `project-a/${pod.settings.session}/`;
    expect((await listKeys(pod.client, bucket, prefix)).filter(agentData)).toEqual(['artifacts/keep.txt', 'metadata.json']);
    expect(proxy.requests.filter((r) => r.operation === 'DeleteObjects')).toHaveLength(1);
    expect(proxy.requests.filter((r) => r.operation === 'DeleteObject').map((r) => r.key).sort()).toEqual([
      `${prefix}artifacts/gone-1.txt`,
      `${prefix}artifacts/gone-2.txt`,
    ]);

    // The next deletion goes straight to single deletes: no failed request per cycle.
    await rm(path.join(pod.workspace, 'artifacts/keep.txt'));
    await writeFile(path.join(pod.workspace, 'artifacts/new.txt'), 'new');
    proxy.requests.length = 0;
    expect(await pod.sync()).toMatchObject({ ok: true, deleted: 1, uploaded: 1 });
    expect(proxy.requests.filter((r) => r.operation === 'DeleteObjects')).toHaveLength(0);
    expect((await listKeys(pod.client, bucket, prefix)).filter(agentData)).toEqual(['artifacts/new.txt', 'metadata.json']);
  });
});
