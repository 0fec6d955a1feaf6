import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_KEY } from '../../src/agent/bundle/bundle-format.js';
import { createBucket, rootClient, startMinio, type MinioServer } from '../support/minio.js';
import { agentEnv, ensureBuilt, getText, newPod, runCli, startCli, uniqueSession, type Pod } from './support/helpers.js';

describe('the final sync gets its whole budget (built CLI, own MinIO)', () => {
  let minio: MinioServer;
  const pods: Pod[] = [];
  beforeAll(async () => {
    await ensureBuilt();
    minio = await startMinio();
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
    await minio.destroy();
  });

  it('abandons a regular cycle hung on S3 at SIGTERM and runs the final sync at once', async () => {
    const bucket = await createBucket(minio, 'shutdown');
    const session = uniqueSession();
    const pod = await newPod(agentEnv(minio, bucket, session, { SYNC_INTERVAL: '1', FINAL_SYNC_TIMEOUT_SECONDS: '30' }));
    pods.push(pod);
    expect((await runCli(['hydrate'], pod.env)).code).toBe(0);
    const sidecar = startCli(['sync'], pod.env);
    await sidecar.waitFor(/Sync complete/);

    const starts = () => sidecar.stdout().match(/Starting sync to S3/g)?.length ?? 0;
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    minio.pause();
    try {
      await writeFile(path.join(pod.workspace, 'artifacts/last.txt'), 'written while S3 hangs');
      // A regular cycle starts and hangs on its upload (the request timeout is 60 s).
      const before = starts();
      await sidecar.waitFor(/Starting sync to S3/, before + 1);
      await new Promise((resolve) => setTimeout(resolve, 500));
      sidecar.child.kill('SIGTERM');
      await sidecar.waitFor(/Received SIGTERM/);
      await sidecar.waitFor(/Starting sync to S3/, before + 2, 2_000);
    } finally {
      minio.resume();
    }
    const run = await sidecar.exited;
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Final sync complete, exiting');
    const root = rootClient(minio);
    expect(await getText(root, bucket, `project-a/${session}/artifacts/last.txt`)).toBe('written while S3 hangs');
    // The data first, then the restore bundle for the next pod, then the exit.
    expect(run.stdout).toMatch(/Sync complete[\s\S]*Restore bundle written: 1 files[\s\S]*Final sync complete, exiting/);
    expect(await getText(root, bucket, `project-a/${session}/${BUNDLE_KEY}`)).toContain('written while S3 hangs');
    root.destroy();
  });
});
