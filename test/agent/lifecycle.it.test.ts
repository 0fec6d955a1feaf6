import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket, rootClient, startMinio, type MinioServer } from '../support/minio.js';
import { agentEnv, ensureBuilt, getText, listKeys, newPod, runCli, startCli, uniqueSession, type Pod } from './support/helpers.js';

const sharedMinio = inject('minio');

async function writeFiles(workspace: string, files: Record<string, string>): Promise<void> {
  for (const [rel, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(workspace, rel)), { recursive: true });
    await writeFile(path.join(workspace, rel), body);
  }
}

describe('sync sidecar lifecycle (built CLI)', () => {
  const pods: Pod[] = [];
  beforeAll(ensureBuilt);
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
  });

  it('on SIGTERM mid-interval leaves the wait at once, syncs the last file and exits 0', async () => {
    const bucket = await createBucket(sharedMinio, 'sigterm');
    const session = uniqueSession();
    const pod = await newPod(agentEnv(sharedMinio, bucket, session, { SYNC_INTERVAL: '3600' }));
    pods.push(pod);
    expect((await runCli(['hydrate'], pod.env)).code).toBe(0);
    const sidecar = startCli(['sync'], pod.env);
    await sidecar.waitFor(/Sync complete/);

    await writeFiles(pod.workspace, { 'artifacts/last-words.txt': 'written just before SIGTERM' });
    const signalled = Date.now();
    sidecar.child.kill('SIGTERM');
    const run = await sidecar.exited;
    expect(run.code).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5_000);
    expect(run.stdout).toMatch(/Received SIGTERM: running the final sync \(budget 45s\)\n.*Starting sync to S3/);
    expect(run.stdout).toContain('Final sync complete, exiting');
    const root = rootClient(sharedMinio);
    expect(await getText(root, bucket, `project-a/${session}/artifacts/last-words.txt`)).toBe('written just before SIGTERM');
    root.destroy();
  });

  describe('with its own MinIO', () => {
    let minio: MinioServer;
    beforeAll(async () => {
      minio = await startMinio();
    });
    afterAll(async () => {
      await minio.destroy();
    });

    it('survives MinIO going away mid-cycle and syncs everything once it is back', async () => {
      const bucket = await createBucket(minio, 'restart');
      const session = uniqueSession();
      const pod = await newPod(agentEnv(minio, bucket, session, { SYNC_INTERVAL: '1' }));
      pods.push(pod);
      expect((await runCli(['hydrate'], pod.env)).code).toBe(0);
      const sidecar = startCli(['sync'], pod.env);
      await sidecar.waitFor(/Sync complete/);

      const files: Record<string, string> = {};
      for (let index = 0; index < 300; index += 1) files[`artifacts/batch/file-${index}.txt`] = `content ${index}`;
      await writeFiles(pod.workspace, files);
      const cyclesBefore = sidecar.stdout().match(/Starting sync to S3/g)?.length ?? 0;
      await sidecar.waitFor(/Starting sync to S3/, cyclesBefore + 1);
      await minio.stop();
      try {
        await sidecar.waitFor(/Sync failed/, 2);
        // Named at the first request that met the stopped server: an upload, or the new
        // generation the owner writes before its uploads (docs/HOW-IT-WORKS.md).
        expect(sidecar.stdout() + sidecar.stderr()).toMatch(/upload of artifacts\/batch\/file-\d+\.txt failed: connection refused|cannot renew the session's ownership before uploading: connection refused/);
        expect(sidecar.child.exitCode).toBeNull();
      } finally {
        await minio.start();
      }
      const completes = sidecar.stdout().match(/Sync complete/g)?.length ?? 0;
      await sidecar.waitFor(/Sync complete/, completes + 1, 30_000);
      const root = rootClient(minio);
      const keys = await listKeys(root, bucket, `project-a/${session}/artifacts/batch/`);
      expect(keys).toHaveLength(300);
      root.destroy();

      sidecar.child.kill('SIGTERM');
      expect((await sidecar.exited).code).toBe(0);
    });

    it('bounds the final sync by FINAL_SYNC_TIMEOUT_SECONDS when S3 hangs, and a second signal aborts at once', async () => {
      const bucket = await createBucket(minio, 'hang');
      const pod = await newPod(
        agentEnv(minio, bucket, uniqueSession(), { SYNC_INTERVAL: '3600', FINAL_SYNC_TIMEOUT_SECONDS: '2' }),
      );
      pods.push(pod);
      expect((await runCli(['hydrate'], pod.env)).code).toBe(0);

      const bounded = startCli(['sync'], pod.env);
      await bounded.waitFor(/Sync complete/);
      await writeFiles(pod.workspace, { 'artifacts/pending.txt': 'pending' });
      minio.pause();
      try {
        bounded.child.kill('SIGTERM');
        const run = await bounded.exited;
        expect(run.code).toBe(1);
        expect(run.ms).toBeLessThan(20_000);
        expect(run.stderr).toContain('final sync did not finish within FINAL_SYNC_TIMEOUT_SECONDS (2s)');
      } finally {
        minio.resume();
      }

      const aborted = startCli(['sync'], { ...pod.env, FINAL_SYNC_TIMEOUT_SECONDS: '60' });
      await aborted.waitFor(/Sync complete/);
      await writeFiles(pod.workspace, { 'artifacts/pending-2.txt': 'pending' });
      minio.pause();
      try {
        aborted.child.kill('SIGTERM');
        await aborted.waitFor(/Received SIGTERM/);
        const secondAt = Date.now();
        aborted.child.kill('SIGTERM');
        const run = await aborted.exited;
        expect(run.code).toBe(143);
        expect(Date.now() - secondAt).toBeLessThan(2_000);
        expect(run.stderr).toContain('received SIGTERM again: aborting the final sync');
      } finally {
        minio.resume();
      }
    });
  });
});
