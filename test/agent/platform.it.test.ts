import { appendFile, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BUNDLE_KEY } from '../../src/agent/bundle/bundle-format.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addUser, createBucket, rootClient } from '../support/minio.js';
import { agentEnv, getMetadata, listKeys, newPod, recordRequests, uniqueSession, type Pod } from './support/helpers.js';

const minio = inject('minio');
const SYNC_PATHS = '.claude,artifacts,uploads,file-uploads';

// What the platform's rclone-based sync.sh leaves in a bucket: plain objects with a
// fractional-seconds x-amz-meta-mtime and a real Content-Type, and its own metadata.json.
const PLATFORM_FILES: Record<string, { body: string; contentType: string }> = {
  '.claude/history.jsonl': { body: '{"turn":1}\n', contentType: 'application/octet-stream' },
  'artifacts/report.md': { body: '# Report\n', contentType: 'text/markdown' },
  'file-uploads/brief.pdf': { body: '%PDF-1.7 brief', contentType: 'application/pdf' },
  'repo-state/app/repo.bundle': { body: 'bundle bytes', contentType: 'application/octet-stream' },
};
const PLATFORM_MTIME = '1764000000.123456789';

async function writePlatformState(root: S3Client, bucket: string, prefix: string, session: string): Promise<void> {
  for (const [key, file] of Object.entries(PLATFORM_FILES)) {
    await root.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: prefix + key,
        Body: file.body,
        ContentType: file.contentType,
        Metadata: { mtime: PLATFORM_MTIME },
      }),
    );
  }
  const metadata = { lastSync: '2026-11-30T10:00:00+00:00', session, namespace: 'project-a', pathsSynced: 3 };
  await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}metadata.json`, Body: JSON.stringify(metadata) }));
}

describe('state written by the platform is adopted, never lost', () => {
  let bucket: string;
  let root: S3Client;
  const pods: Pod[] = [];
  beforeAll(async () => {
    bucket = await createBucket(minio, 'platform');
    root = rootClient(minio);
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
  });

  it('keeps rclone objects as they are, adopts a file pre-uploaded while the pod runs, and a pod without ListBucket restores it all', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    await writePlatformState(root, bucket, prefix, session);
    const etags = async () =>
      Object.fromEntries(
        await Promise.all(
          Object.keys(PLATFORM_FILES).map(async (key) => {
            const head = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: prefix + key }));
            return [key, `${head.ETag} ${head.ContentType} ${head.Metadata?.mtime}`];
          }),
        ),
      );
    const platformObjects = await etags();

    // The first pod runs with the platform's credentials, which include s3:ListBucket.
    const first = await newPod(agentEnv(minio, bucket, session, { SYNC_PATHS }));
    pods.push(first);
    expect(await first.hydrate()).toBe(true);
    const requests = recordRequests(first);
    expect(await first.sync()).toMatchObject({ ok: true, uploaded: 0, deleted: 0 });
    // Nothing hydrate restored goes up again.
    expect(requests.filter((request) => request.command === 'PutObject').map((request) => request.key)).toEqual(['metadata.json']);
    expect(await etags()).toEqual(platformObjects);
    const metadata = await getMetadata(root, bucket, prefix);
    expect(metadata).toMatchObject({ session, namespace: 'project-a', pathsSynced: 4 });
    expect(typeof metadata.lastSync).toBe('string');
    expect(Object.keys(metadata.manifest ?? {}).sort()).toEqual(Object.keys(PLATFORM_FILES).sort());

    // The runner changes one restored file: that one, and only that one, goes up.
    await appendFile(path.join(first.workspace, '.claude/history.jsonl'), '{"turn":2}\n');
    requests.length = 0;
    expect(await first.sync()).toMatchObject({ ok: true, uploaded: 1 });
    expect(requests.filter((request) => request.command === 'PutObject').map((request) => request.key)).toEqual([
      '.claude/history.jsonl',
      'metadata.json',
    ]);

    // The platform's backend pre-uploads a file while the pod runs; the pod never has it.
    await root.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${prefix}file-uploads/during.csv`, Body: 'a,b\n1,2\n', ContentType: 'text/csv' }),
    );
    expect(await first.sync({ final: true })).toMatchObject({ ok: true, deleted: 0 });
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).toContain('file-uploads/during.csv');
    // Adopted, it is not a file this pod deleted.
    expect(await first.sync()).toMatchObject({ ok: true, deleted: 0 });
    expect(await listKeys(root, bucket, prefix)).toContain('file-uploads/during.csv');

    // The next pod has only the seed's per-project policy: no listing, the manifest is all it has.
    const user = await addUser(minio, {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: [`arn:aws:s3:::${bucket}/project-a/*`] },
      ],
    });
    const second = await newPod(
      agentEnv(minio, bucket, session, { SYNC_PATHS, AWS_ACCESS_KEY_ID: user.accessKey, AWS_SECRET_ACCESS_KEY: user.secretKey }),
    );
    pods.push(second);
    expect(await second.hydrate()).toBe(true);
    const read = (rel: string) => readFile(path.join(second.workspace, rel), 'utf8');
    expect(await read('.claude/history.jsonl')).toBe('{"turn":1}\n{"turn":2}\n');
    expect(await read('artifacts/report.md')).toBe('# Report\n');
    expect(await read('file-uploads/brief.pdf')).toBe('%PDF-1.7 brief');
    expect(await read('file-uploads/during.csv')).toBe('a,b\n1,2\n');
    expect((await stat(path.join(second.workspace, 'artifacts/report.md'))).mtimeMs).toBeCloseTo(1764000000123.457, 0);
    // An adopted object has no mtime of its own: it is restored with its upload time.
    expect((await stat(path.join(second.workspace, 'file-uploads/during.csv'))).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(await second.sync()).toMatchObject({ ok: true, uploaded: 0, deleted: 0 });
    // Beside them only what the agent writes: metadata.json and the final sync's restore bundle.
    expect(await listKeys(root, bucket, prefix)).toEqual(
      [...Object.keys(PLATFORM_FILES), 'file-uploads/during.csv', 'metadata.json', BUNDLE_KEY].sort(),
    );
  });
});
