import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket } from '../support/minio.js';
import { agentEnv, newPod, recordRequests, uniqueSession, type Pod } from './support/helpers.js';

const minio = inject('minio');

describe('S3 requests per cycle', () => {
  let bucket: string;
  const pods: Pod[] = [];
  beforeAll(async () => {
    bucket = await createBucket(minio, 'requests');
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
  });

  it('a no-change cycle after hydrate makes no request at all', async () => {
    const session = uniqueSession();
    const writer = await newPod(agentEnv(minio, bucket, session));
    pods.push(writer);
    await mkdir(path.join(writer.workspace, 'artifacts'), { recursive: true });
    for (let index = 0; index < 50; index += 1) {
      await writeFile(path.join(writer.workspace, `artifacts/f${index}.txt`), `${index}`);
    }
    expect((await writer.sync()).ok).toBe(true);

    const pod = await newPod(agentEnv(minio, bucket, session));
    pods.push(pod);
    const requests = recordRequests(pod);
    expect(await pod.hydrate({ progressIntervalMs: 5 })).toBe(true);
    expect(requests.filter((request) => request.command === 'GetObject')).toHaveLength(51);
    expect(pod.log.text()).toMatch(/^ {2}restored \d+\/50 files \(\d+(\.\d)? (B|KiB)\)$/m);
    requests.length = 0;
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 0, unchanged: 50 });
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 0, unchanged: 50 });
    expect(requests).toEqual([]);

    await writeFile(path.join(pod.workspace, 'artifacts/f1.txt'), 'changed');
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    // The data first, metadata.json last.
    expect(requests).toEqual([
      { command: 'PutObject', key: 'artifacts/f1.txt' },
      { command: 'PutObject', key: 'metadata.json' },
    ]);
  });

  it("state-sync starting after hydrate sends nothing, the session's lease included, until its renewal is due", async () => {
    const session = uniqueSession();
    const pod = await newPod(agentEnv(minio, bucket, session, { POD_UID: `uid-${session}` }));
    pods.push(pod);
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(pod.workspace, 'artifacts/a.txt'), 'a');
    expect(await pod.hydrate()).toBe(true);
    const requests = recordRequests(pod, { lease: true });
    // The first cycle uploads (a new generation of the lease around it); none after.
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    expect(requests.filter((request) => request.command === 'GetObject')).toEqual([]);
    requests.length = 0;

    // state-sync restarted in the same pod (its liveness probe): it starts from what the
    // last run wrote, not from a read.
    const restarted = await newPod({ ...pod.env });
    pods.push(restarted);
    const afterRestart = recordRequests(restarted, { lease: true });
    expect(await restarted.sync()).toMatchObject({ ok: true, uploaded: 0 });
    expect(afterRestart).toEqual([]);
  });

  it('a cold start without a record reads the remote state once, then never again', async () => {
    const session = uniqueSession();
    const writer = await newPod(agentEnv(minio, bucket, session));
    pods.push(writer);
    await mkdir(path.join(writer.workspace, 'uploads'), { recursive: true });
    await writeFile(path.join(writer.workspace, 'uploads/a.txt'), 'a');
    expect((await writer.sync()).ok).toBe(true);

    const pod = await newPod(agentEnv(minio, bucket, session));
    pods.push(pod);
    const requests = recordRequests(pod);
    await pod.sync();
    expect(requests.map((request) => request.command)).toEqual(['GetObject', 'ListObjectsV2']);
    requests.length = 0;
    await pod.sync();
    expect(requests).toEqual([]);
  });
});
