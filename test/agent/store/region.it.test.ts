import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startAwsSemanticsProxy, type AwsSemanticsProxy } from '../../support/aws-semantics-proxy.js';
import { createBucket, startMinio, type MinioServer } from '../../support/minio.js';
import { agentEnv, listKeys, newPod, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');
// The session's data, without the agent's own objects under .session-storage/.
const agentData = (key: string) => !key.startsWith('.session-storage/');

// A wrong S3_REGION used to be retried for the whole HYDRATE_TIMEOUT_SECONDS (120 s by
// default) as an unknown error: it now fails within seconds naming the region to set, or,
// where S3 names it in a redirect (AWS), is followed.
describe('S3_REGION that is not the bucket region', () => {
  let regional: MinioServer;
  let proxy: AwsSemanticsProxy;
  const pods: Pod[] = [];

  beforeAll(async () => {
    regional = await startMinio({ region: 'eu-west-1' });
    proxy = await startAwsSemanticsProxy(minio.endpoint);
    proxy.plays.bucketRegion = minio.region;
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
    await proxy.close();
    await regional.destroy();
  });

  it('fails hydrate within seconds naming the region, on a server that only says it is wrong (MinIO)', async () => {
    const bucket = await createBucket(regional, 'region');
    const pod = await newPod(agentEnv(regional, bucket, uniqueSession(), { S3_REGION: 'us-east-1', HYDRATE_TIMEOUT_SECONDS: '120' }));
    pods.push(pod);
    const started = Date.now();
    expect(await pod.hydrate()).toBe(false);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(pod.log.text()).toContain('hydrate failed: wrong region: the bucket is in eu-west-1: set S3_REGION=eu-west-1');
    expect(pod.log.text()).not.toContain(pod.settings.secretAccessKey);
  });

  it('follows the bucket region S3 names in its redirect (AWS), through the lean requests and the SDK', async () => {
    const bucket = await createBucket(minio, 'region');
    const pod = await newPod(agentEnv(minio, bucket, uniqueSession(), { S3_ENDPOINT: proxy.endpoint, S3_REGION: 'eu-central-1' }));
    pods.push(pod);
    expect(await pod.hydrate()).toBe(true);
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(pod.workspace, 'artifacts/a.txt'), 'a');
    await writeFile(path.join(pod.workspace, 'artifacts/b.txt'), 'b');
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 2 });
    await rm(path.join(pod.workspace, 'artifacts/b.txt'));
    expect(await pod.sync()).toMatchObject({ ok: true, deleted: 1 });
    expect((await listKeys(pod.client, bucket, `project-a/${pod.settings.session}/`)).filter(agentData)).toEqual(['artifacts/a.txt', 'metadata.json']);
    // CopyObject (a refresh) goes through the SDK.
    const key = `project-a/${pod.settings.session}/artifacts/a.txt`;
    const signal = new AbortController().signal;
    const before = await pod.store.head(key, signal);
    await pod.store.copyOnto(key, before, signal);
    expect((await pod.store.head(key, signal)).metadata).toEqual(before.metadata);
  });
});
