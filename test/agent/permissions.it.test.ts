import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FRESH_SESSION_MESSAGE } from '../../src/agent/hydrate/hydrate.js';
import { addUser, createBucket, rootClient } from '../support/minio.js';
import { agentEnv, listKeys, newPod, uniqueSession, type Pod } from './support/helpers.js';
import { perProjectPolicy, seedIamPolicy } from '../support/policies.js';

const minio = inject('minio');

describe.each([
  ['the seed IAM policy (Get/Put/Delete/List on the bucket)', seedIamPolicy],
  ['the per-project policy (Get/Put/Delete on project-a/* only)', perProjectPolicy],
])('with %s', (_name, policyFor) => {
  let bucket: string;
  let credentials: { accessKey: string; secretKey: string };
  const pods: Pod[] = [];
  const pod = async (session: string, overrides: Record<string, string> = {}) => {
    const created = await newPod(
      agentEnv(minio, bucket, session, {
        AWS_ACCESS_KEY_ID: credentials.accessKey,
        AWS_SECRET_ACCESS_KEY: credentials.secretKey,
        ...overrides,
      }),
    );
    pods.push(created);
    return created;
  };

  beforeAll(async () => {
    bucket = await createBucket(minio, 'perm');
    credentials = await addUser(minio, policyFor(bucket));
  });
  afterAll(async () => {
    for (const created of pods) await created.dispose();
  });

  it('hydrates, syncs, restores and propagates deletions', async () => {
    const session = uniqueSession();
    const first = await pod(session);
    expect(await first.hydrate()).toBe(true);
    expect(first.log.text()).toContain(FRESH_SESSION_MESSAGE);
    await mkdir(path.join(first.workspace, '.claude'), { recursive: true });
    await mkdir(path.join(first.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(first.workspace, '.claude/history.jsonl'), 'history');
    await writeFile(path.join(first.workspace, 'artifacts/keep.txt'), 'keep');
    await writeFile(path.join(first.workspace, 'artifacts/drop.txt'), 'drop');
    expect((await first.sync()).ok).toBe(true);

    const second = await pod(session);
    expect(await second.hydrate()).toBe(true);
    expect(await readFile(path.join(second.workspace, '.claude/history.jsonl'), 'utf8')).toBe('history');
    await rm(path.join(second.workspace, 'artifacts/drop.txt'));
    expect(await second.sync()).toMatchObject({ ok: true, deleted: 1 });

    const third = await pod(session);
    expect(await third.hydrate()).toBe(true);
    await expect(readFile(path.join(third.workspace, 'artifacts/drop.txt'))).rejects.toThrow();
    expect(await readFile(path.join(third.workspace, 'artifacts/keep.txt'), 'utf8')).toBe('keep');

    const root = rootClient(minio);
    expect(await listKeys(root, bucket, `project-a/${session}/`)).toEqual([
      '.claude/history.jsonl',
      'artifacts/keep.txt',
      'metadata.json',
    ]);
    root.destroy();
  });

  it('is denied by MinIO outside what the policy grants', async () => {
    // The IAM policy is scoped to the bucket, the per-project policy to its namespace.
    const otherBucket = await createBucket(minio, 'other');
    const forbidden: Record<string, string> = policyFor === perProjectPolicy ? { NAMESPACE: 'project-b' } : { S3_BUCKET: otherBucket };
    const forbiddenBucket = forbidden.S3_BUCKET ?? bucket;
    const outside = await pod(uniqueSession(), { ...forbidden, HYDRATE_TIMEOUT_SECONDS: '1' });
    await mkdir(path.join(outside.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(outside.workspace, 'artifacts/x.txt'), 'x');
    const user = new S3Client({
      endpoint: minio.endpoint,
      region: minio.region,
      forcePathStyle: true,
      credentials: { accessKeyId: credentials.accessKey, secretAccessKey: credentials.secretKey },
    });
    await expect(
      user.send(new PutObjectCommand({ Bucket: forbiddenBucket, Key: 'project-b/probe', Body: 'x' })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    user.destroy();

    expect(await outside.hydrate()).toBe(false);
    expect(outside.log.text()).toContain('hydrate failed: access denied');
    expect((await outside.sync()).ok).toBe(false);
    expect(outside.log.text()).toMatch(/Sync failed: .*access denied/);
  });
});
