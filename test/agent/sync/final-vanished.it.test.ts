import { readFile, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket, rootClient } from '../../support/minio.js';
import { agentEnv, ensureBuilt, getMetadata, getText, listKeys, newPod, type Pod, runCli, startCli, uniqueSession, writeFiles } from '../support/helpers.js';

// Issue 21 case 7, with the CLI as the pod runs it against MinIO: an object the final
// sync's listing finds gone is uploaded again from the pod's copy, and a file whose mtime
// is before 1970 is an ordinary file (its deletion reaches S3), not an object "known only
// remotely".

const minio = inject('minio');

describe('the final sync and old files', () => {
  let bucket: string;
  let root: S3Client;
  const pods: Pod[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'final-vanished');
    root = rootClient(minio);
  });
  afterAll(async () => {
    root.destroy();
    for (const pod of pods) await pod.dispose();
  });

  async function pod(session: string): Promise<Pod> {
    const created = await newPod(agentEnv(minio, bucket, session));
    pods.push(created);
    return created;
  }

  it('an object gone from S3 (expired, deleted by hand) that the pod still has is uploaded again by the final sync, and the next pod restores it', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session);
    expect((await runCli(['hydrate'], runner.env)).code).toBe(0);
    await writeFiles(runner.workspace, { 'artifacts/keep.md': 'kept locally', 'artifacts/other.md': 'other' });
    const sidecar = startCli(['sync'], { ...runner.env, SYNC_INTERVAL: '3600' });
    await sidecar.waitFor(/Sync complete/);
    // The lifecycle rule, or someone's delete, behind the agent's back.
    await root.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/keep.md` }));
    sidecar.child.kill('SIGTERM');
    const exited = await sidecar.exited;
    expect(exited.code, exited.stdout + exited.stderr).toBe(0);
    expect(exited.stdout + exited.stderr).toContain('artifacts/keep.md was missing in S3 (expired or deleted): uploading the local copy again');
    expect(await getText(root, bucket, `${prefix}artifacts/keep.md`)).toBe('kept locally');

    const next = await pod(session);
    expect((await runCli(['hydrate'], next.env)).code).toBe(0);
    expect(await readFile(path.join(next.workspace, 'artifacts/keep.md'), 'utf8')).toBe('kept locally');
  });

  it('a file whose mtime is before 1970 is a file like any other: its deletion reaches S3, and it restores with its time', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session);
    expect((await runCli(['hydrate'], runner.env)).code).toBe(0);
    await writeFiles(runner.workspace, { 'artifacts/moon.txt': 'one small step', 'artifacts/apollo.txt': 'eleven', 'artifacts/today.txt': 'today' });
    const landing = new Date('1969-07-20T20:17:40Z');
    for (const name of ['moon.txt', 'apollo.txt']) await utimes(path.join(runner.workspace, 'artifacts', name), landing, landing);
    expect((await runCli(['sync', '--once'], runner.env)).code).toBe(0);
    expect((await getMetadata(root, bucket, prefix)).manifest?.['artifacts/moon.txt']?.mtimeMs).toBe(landing.getTime());

    // Deleted in the pod that uploaded it: a negative mtime was the "known only remotely"
    // sentinel, so this deletion never reached S3.
    await rm(path.join(runner.workspace, 'artifacts/moon.txt'));
    const sync = await runCli(['sync', '--once'], runner.env);
    expect(sync.code, sync.stdout).toBe(0);
    expect(sync.stdout).toMatch(/1 deleted/);
    expect(await listKeys(root, bucket, prefix)).not.toContain('artifacts/moon.txt');
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).not.toContain('artifacts/moon.txt');

    // The next pod restores the other with its time (it got the upload time before), and
    // its deletion goes through as well.
    const next = await pod(session);
    expect((await runCli(['hydrate'], next.env)).code).toBe(0);
    expect((await stat(path.join(next.workspace, 'artifacts/apollo.txt'))).mtimeMs).toBe(landing.getTime());
    await rm(path.join(next.workspace, 'artifacts/apollo.txt'));
    expect((await runCli(['sync', '--once'], next.env)).stdout).toMatch(/1 deleted/);
    expect(await listKeys(root, bucket, prefix)).not.toContain('artifacts/apollo.txt');
  });
});
