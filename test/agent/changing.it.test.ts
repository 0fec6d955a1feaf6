import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createBucket, rootClient } from '../support/minio.js';
import { agentEnv, getText, newPod, uniqueSession, type Pod } from './helpers.js';

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
    pod.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (!appended && context.commandName === 'PutObjectCommand') {
          appended = true;
          await appendFile(file, '\nlast line');
        }
        return next(args);
      },
      { step: 'initialize', name: 'appendDuringUpload' },
    );

    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    expect(pod.log.text()).toContain('artifacts/growing.log changed during upload: retried next cycle');
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 0 });
    const root = rootClient(minio);
    expect(await getText(root, bucket, `project-a/${session}/artifacts/growing.log`)).toMatch(/\nlast line$/);
    root.destroy();
  });
});
