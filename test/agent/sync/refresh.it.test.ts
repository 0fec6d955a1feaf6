import { chmod, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addUser, createBucket, rootClient } from '../../support/minio.js';
import { agentEnv, getMetadata, getText, newPod, type Pod, recordRequests, uniqueSession, writeFiles } from '../support/helpers.js';
import { perProjectPolicy } from '../../support/policies.js';

const minio = inject('minio');
// 0.00002 days = 1.728 s: long enough for a cycle to find its fresh uploads fresh, short
// enough to wait for.
const REFRESH = { REFRESH_AFTER_DAYS: '0.00002' };
const AGE_MS = 0.00002 * 86_400_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('objects of a live session never reach the lifecycle rule\'s age', () => {
  let bucket: string;
  let root: S3Client;
  const pods: Pod[] = [];
  const pod = async (session: string, overrides: Record<string, string> = {}, refreshPerCycle?: number) => {
    const created = await newPod(agentEnv(minio, bucket, session, { ...REFRESH, ...overrides }), { refreshPerCycle });
    pods.push(created);
    return created;
  };
  const head = (key: string) => root.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));

  beforeAll(async () => {
    bucket = await createBucket(minio, 'refresh');
    root = rootClient(minio);
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
  });

  it('rewrites an unchanged object in place once it is older than REFRESH_AFTER_DAYS, keeping bytes and metadata', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    await writeFiles(runner.workspace, { 'artifacts/notes.md': 'notes that do not change' });
    await chmod(path.join(runner.workspace, 'artifacts/notes.md'), 0o640);
    expect((await runner.sync()).ok).toBe(true);
    const before = await head(`${prefix}artifacts/notes.md`);
    const requests = recordRequests(runner);
    expect(await runner.sync()).toMatchObject({ ok: true, uploaded: 0 });
    expect(requests).toEqual([]);

    await sleep(AGE_MS + 500);
    expect(await runner.sync()).toMatchObject({ ok: true, uploaded: 0 });
    const after = await head(`${prefix}artifacts/notes.md`);
    expect(after.LastModified?.getTime()).toBeGreaterThan(before.LastModified?.getTime() ?? Infinity);
    expect(after.ETag).toBe(before.ETag);
    expect(after.Metadata).toEqual(before.Metadata);
    expect(after.Metadata).toMatchObject({ mode: '640' });
    expect(after.ContentType).toBe(before.ContentType);
    expect(await getText(root, bucket, `${prefix}artifacts/notes.md`)).toBe('notes that do not change');
    // A server-side copy: the bytes never travel through the pod again.
    expect(requests.filter((request) => request.key === 'artifacts/notes.md').map((request) => request.command)).toEqual([
      'HeadObject',
      'CopyObject',
    ]);
    // metadata.json goes up after the refresh, so it is never older than the newest refresh.
    expect(requests.at(-1)).toEqual({ command: 'PutObject', key: 'metadata.json' });
    const entry = (await getMetadata(root, bucket, prefix)).manifest?.['artifacts/notes.md'];
    expect(entry?.uploadedAt).toBeGreaterThanOrEqual((after.LastModified?.getTime() ?? Infinity) - 1_000);
  });

  it('uploads again from the local copy an object that expired, without s3:ListBucket', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const writer = await pod(session);
    expect(await writer.hydrate()).toBe(true);
    await writeFiles(writer.workspace, { 'artifacts/kept.txt': 'kept', 'uploads/other-path.txt': 'other' });
    expect((await writer.sync()).ok).toBe(true);

    const user = await addUser(minio, perProjectPolicy(bucket));
    const runner = await pod(session, {
      AWS_ACCESS_KEY_ID: user.accessKey,
      AWS_SECRET_ACCESS_KEY: user.secretKey,
      SYNC_PATHS: '.claude,artifacts',
    });
    expect(await runner.hydrate()).toBe(true);
    // The lifecycle rule expires both objects; this pod has a copy of one of them only.
    await root.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/kept.txt` }));
    await root.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}uploads/other-path.txt` }));
    await sleep(AGE_MS + 500);
    expect(await runner.sync()).toMatchObject({ ok: true, deleted: 0 });
    expect(await getText(root, bucket, `${prefix}artifacts/kept.txt`)).toBe('kept');
    expect(runner.log.text()).toContain('artifacts/kept.txt was missing in S3 (expired or deleted): uploading the local copy again');
    expect(runner.log.text()).toContain(
      'uploads/other-path.txt is missing in S3 (expired or deleted) and this pod has no copy: dropped from the manifest',
    );
    const manifest = (await getMetadata(root, bucket, prefix)).manifest ?? {};
    expect(Object.keys(manifest).sort()).toEqual(['artifacts/kept.txt']);
    await rm(path.join(runner.workspace, 'artifacts/kept.txt'));
  });

  it('refreshes a bounded number per cycle, oldest first, and carries the ages to the next pod', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session, {}, 2);
    expect(await runner.hydrate()).toBe(true);
    await writeFiles(runner.workspace, { 'artifacts/a.txt': 'a', 'artifacts/b.txt': 'b' });
    expect((await runner.sync()).ok).toBe(true);
    await sleep(600);
    await writeFiles(runner.workspace, { 'artifacts/c.txt': 'c', 'artifacts/d.txt': 'd', 'artifacts/e.txt': 'e' });
    expect((await runner.sync()).ok).toBe(true);
    await sleep(AGE_MS + 300);

    const requests = recordRequests(runner);
    const copiedInNextCycle = async () => {
      requests.length = 0;
      expect((await runner.sync()).ok).toBe(true);
      return requests.filter((request) => request.command === 'CopyObject').map((request) => request.key).sort();
    };
    expect(await copiedInNextCycle()).toEqual(['artifacts/a.txt', 'artifacts/b.txt']);
    expect(await copiedInNextCycle()).toEqual(['artifacts/c.txt', 'artifacts/d.txt']);
    expect(await copiedInNextCycle()).toEqual(['artifacts/e.txt']);
    expect(await copiedInNextCycle()).toEqual([]);

    // A new pod learns every object's age from the manifest: nothing is due yet.
    const next = await pod(session);
    expect(await next.hydrate()).toBe(true);
    const record = JSON.parse(await readFile(path.join(next.stateDir, 'record.json'), 'utf8')) as {
      files: Record<string, { uploadedAt?: number }>;
    };
    const manifest = (await getMetadata(root, bucket, prefix)).manifest ?? {};
    for (const key of ['artifacts/a.txt', 'artifacts/e.txt']) {
      expect(record.files[key]?.uploadedAt).toBeGreaterThan(0);
      expect(record.files[key]?.uploadedAt).toBe(manifest[key]?.uploadedAt);
    }
    const nextRequests = recordRequests(next);
    expect(await next.sync()).toMatchObject({ ok: true, uploaded: 0 });
    expect(nextRequests).toEqual([]);
  });
});
