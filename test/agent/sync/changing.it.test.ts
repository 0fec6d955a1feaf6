import { appendFile, mkdir, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createBucket, rootClient } from '../../support/minio.js';
import { agentEnv, getText, newPod, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');

describe('a file that changes while it is uploaded', () => {
  const pods: Pod[] = [];
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
  });

  it('is uploaded again in the next cycle, so S3 ends with the settled content', async () => {
    const bucket = await createBucket(minio, 'changing');
    const session = uniqueSession();
    const pod = await newPod(agentEnv(minio, bucket, session));
    pods.push(pod);
    const file = path.join(pod.workspace, 'artifacts/growing.log');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, randomBytes(1024).toString('hex'));

    // The runner appends while the PutObject for this file is in flight.
    let appended = false;
    pod.faults.inject(async (command) => {
      if (!appended && command === 'PutObject') {
        appended = true;
        await appendFile(file, '\nlast line');
      }
    });

    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    expect(pod.log.text()).toContain('artifacts/growing.log changed during upload: retried next cycle');
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 0 });
    const root = rootClient(minio);
    expect(await getText(root, bucket, `project-a/${session}/artifacts/growing.log`)).toMatch(/\nlast line$/);
    root.destroy();
  });

  it('that shrinks while it is streamed fails the cycle at once instead of stalling, and goes up whole next cycle', async () => {
    const bucket = await createBucket(minio, 'shrinking');
    const session = uniqueSession();
    const pod = await newPod(agentEnv(minio, bucket, session));
    pods.push(pod);
    // Above the 1 MiB read-whole limit: streamed with the length the walk saw.
    const file = path.join(pod.workspace, 'artifacts/rewritten.bin');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, randomBytes(3 * 2 ** 20));

    let truncated = false;
    pod.faults.inject(async (command) => {
      if (!truncated && command === 'PutObject') {
        truncated = true;
        await truncate(file, 2 * 2 ** 20);
      }
    });

    const started = Date.now();
    expect(await pod.sync()).toMatchObject({ ok: false, uploaded: 0, failed: 1 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(pod.log.text()).toContain('artifacts/rewritten.bin shrank during upload');
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    const root = rootClient(minio);
    const head = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: `project-a/${session}/artifacts/rewritten.bin` }));
    root.destroy();
    expect(head.ContentLength).toBe(2 * 2 ** 20);
  });
});
