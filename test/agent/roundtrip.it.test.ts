import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FRESH_SESSION_MESSAGE } from '../../src/agent/hydrate/hydrate.js';
import { partialPaths } from '../../src/agent/files/partial-names.js';
import { VERSION } from '../../src/shared/version.js';
import { createBucket, rootClient } from '../support/minio.js';
import { startAwsSemanticsProxy, type AwsSemanticsProxy } from '../support/aws-semantics-proxy.js';
import { agentEnv, getMetadata, listKeys, newPod, uniqueSession, type Pod } from './support/helpers.js';

const minio = inject('minio');

interface Fixture {
  rel: string;
  body: Buffer;
  mode?: number;
  mtime: Date;
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

const fixtures: Fixture[] = [
  { rel: '.claude/projects/-workspace/conversation 1.jsonl', body: Buffer.from('{"role":"user"}\n'), mtime: new Date('2024-03-01T10:00:00.123Z') },
  { rel: '.claude/.credentials.json', body: Buffer.from('{"token":"x"}'), mode: 0o600, mtime: new Date('2024-03-02T11:00:00.456Z') },
  { rel: 'artifacts/résumé ünïcode 日本語.txt', body: Buffer.from('unicode names survive'), mtime: new Date('2023-12-31T23:59:59.999Z') },
  { rel: 'artifacts/a/b/c/d/e/f/g/h/i/j/deep.txt', body: Buffer.from('deep'), mtime: new Date('2022-06-15T08:30:00.000Z') },
  { rel: 'uploads/empty.txt', body: Buffer.alloc(0), mtime: new Date('2021-01-01T00:00:00.000Z') },
  { rel: 'uploads/with  two  spaces & symbols (1)+[x].md', body: Buffer.from('# doc'), mtime: new Date('2024-01-01T00:00:00.000Z') },
  // Between the 1 MiB read-whole limit and the multipart threshold: streamed from disk.
  { rel: 'artifacts/medium.bin', body: randomBytes(17 * 2 ** 20 + 123), mtime: new Date('2024-05-05T05:05:05.500Z') },
  // Above the 64 MiB multipart threshold.
  { rel: 'artifacts/large.bin', body: randomBytes(64 * 2 ** 20 + 77), mtime: new Date('2024-05-06T06:06:06.250Z') },
];

const excluded = [
  'artifacts/node_modules/left-pad/index.js',
  'artifacts/web/node_modules/react/index.js',
  'artifacts/repos/platform/.git/HEAD',
  '.claude/__pycache__/x.cpython-312.pyc',
  'artifacts/.venv/bin/python',
];

async function writeFixtures(workspace: string): Promise<void> {
  for (const fixture of fixtures) {
    const file = path.join(workspace, fixture.rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, fixture.body);
    if (fixture.mode !== undefined) await chmod(file, fixture.mode);
    await utimes(file, fixture.mtime, fixture.mtime);
  }
  for (const rel of excluded) {
    await mkdir(path.dirname(path.join(workspace, rel)), { recursive: true });
    await writeFile(path.join(workspace, rel), 'excluded');
  }
}

describe('hydrate and sync round trip', () => {
  let bucket: string;
  const session = uniqueSession();
  const prefix = `project-a/${session}/`;
  const pods: Pod[] = [];
  // The agent talks to MinIO through a loopback proxy that writes down each request as it
  // goes over the wire; the test looks at the bucket directly.
  let proxy: AwsSemanticsProxy;
  const root = rootClient(minio);
  const proxiedPod = () => newPod(agentEnv(minio, bucket, session, { S3_ENDPOINT: proxy.endpoint }));

  beforeAll(async () => {
    bucket = await createBucket(minio);
    proxy = await startAwsSemanticsProxy(minio.endpoint);
  });
  afterAll(async () => {
    for (const pod of pods) await pod.dispose();
    await proxy.close();
    root.destroy();
  });

  it('starts a new session fresh, uploads the workspace and restores it byte-identical with mtimes', async () => {
    proxy.requests.length = 0;
    const first = await proxiedPod();
    pods.push(first);
    expect(await first.hydrate()).toBe(true);
    expect(first.log.text()).toContain(FRESH_SESSION_MESSAGE);

    await writeFixtures(first.workspace);
    const result = await first.sync();
    expect(result).toMatchObject({ ok: true, uploaded: fixtures.length, failed: 0 });
    expect(first.log.lines).toContain('[info] Starting sync to S3...');
    expect(first.log.lines).toContain('  Syncing .claude/...');
    expect(first.log.lines).toContain('[info] Sync complete (5 paths synced)');

    const keys = await listKeys(root, bucket, prefix);
    expect(keys).toEqual([...fixtures.map((fixture) => fixture.rel), 'metadata.json'].sort());

    const head = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/large.bin` }));
    const medium = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/medium.bin` }));
    expect(head.ETag).toMatch(/-\d+"$/);
    // One streamed PutObject: a plain MD5 ETag of the whole file, and its full length.
    expect(medium.ETag).toBe(`"${createHash('md5').update(fixtures[6]?.body ?? Buffer.alloc(0)).digest('hex')}"`);
    expect(medium.ContentLength).toBe(17 * 2 ** 20 + 123);

    const metadata = await getMetadata(root, bucket, prefix);
    expect(metadata).toMatchObject({
      session,
      namespace: 'project-a',
      pathsSynced: 5,
      syncPaths: ['.claude', '.gemini', 'artifacts', 'uploads', 'file-uploads'],
      files: fixtures.length,
      bytes: fixtures.reduce((sum, fixture) => sum + fixture.body.length, 0),
      skipped: [],
      agentVersion: VERSION,
    });
    expect(Date.now() - Date.parse(metadata.lastSync)).toBeLessThan(60_000);
    expect(Object.keys(metadata.manifest ?? {}).sort()).toEqual(fixtures.map((fixture) => fixture.rel).sort());

    const second = await proxiedPod();
    pods.push(second);
    expect(await second.hydrate()).toBe(true);
    for (const fixture of fixtures) {
      const file = path.join(second.workspace, fixture.rel);
      expect(sha(await readFile(file)), fixture.rel).toBe(sha(fixture.body));
      const info = await stat(file);
      expect(Math.abs(info.mtimeMs - fixture.mtime.getTime()), fixture.rel).toBeLessThan(1);
      if (fixture.mode !== undefined) expect(info.mode & 0o777).toBe(fixture.mode);
    }
    for (const rel of excluded) {
      await expect(stat(path.join(second.workspace, rel))).rejects.toThrow();
    }

    // The restored tree matches the record, so the first cycle uploads nothing.
    const resync = await second.sync();
    expect(resync).toMatchObject({ ok: true, uploaded: 0, deleted: 0, unchanged: fixtures.length });

    // Only object requests within the seed's policy: never CreateBucket, GetBucketLocation
    // or ListBuckets.
    const allowed = [
      'GetObject',
      'PutObject',
      'ListObjectsV2',
      'DeleteObjects',
      'CreateMultipartUpload',
      'UploadPart',
      'CompleteMultipartUpload',
      'AbortMultipartUpload',
    ];
    const operations = new Set(proxy.requests.map((request) => request.operation));
    expect([...operations].filter((name) => !allowed.includes(name))).toEqual([]);
    // The file above the multipart threshold went up in parts.
    const parts = proxy.requests.filter((request) => request.operation === 'UploadPart').map((request) => request.key);
    expect(parts.length).toBeGreaterThan(1);
    expect(new Set(parts)).toEqual(new Set([`${prefix}artifacts/large.bin`]));
  });

  it('re-runs hydrate idempotently and resumes a partial restore', async () => {
    const pod = await newPod(agentEnv(minio, bucket, session));
    pods.push(pod);
    expect(await pod.hydrate()).toBe(true);
    // Run again after a complete hydrate (a recreated sandbox): the workspace is the
    // runner's now, and nothing is restored over it (DESIGN rule 11).
    expect(await pod.hydrate()).toBe(true);
    expect(pod.log.text()).toContain('init-hydrate already completed in this pod');
    expect(pod.log.text()).toContain(`Hydrate complete (0 files restored, 0 B, ${fixtures.length} already in place`);

    // A hydrate killed before its record (it clears the record first) left a file cut
    // short: the next attempt finds no record of its own and resumes the restore.
    await rm(path.join(pod.stateDir, 'record.json'));
    await writeFile(path.join(pod.workspace, 'artifacts/large.bin'), 'truncated by a crash');
    expect(await pod.hydrate()).toBe(true);
    expect(pod.log.text()).toContain(`Hydrate complete (1 files restored`);
    const large = fixtures.find((fixture) => fixture.rel === 'artifacts/large.bin');
    expect(sha(await readFile(path.join(pod.workspace, 'artifacts/large.bin')))).toBe(sha(large?.body ?? Buffer.alloc(0)));
  });

  it.each([
    ['continues an interrupted large download with a ranged GET', true],
    ['starts over when the object changed since the interruption', false],
  ])('%s', async (_name, sameVersion) => {
    const large = fixtures.find((fixture) => fixture.rel === 'artifacts/large.bin')?.body ?? Buffer.alloc(0);
    const pod = await proxiedPod();
    pods.push(pod);
    const head = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/large.bin` }));
    // What an attempt killed after 5 MiB leaves behind.
    const target = path.join(pod.workspace, 'artifacts/large.bin');
    await mkdir(path.dirname(target), { recursive: true });
    const partial = partialPaths(target);
    await writeFile(partial.data, large.subarray(0, 5 * 2 ** 20));
    await writeFile(partial.etag, sameVersion ? (head.ETag ?? '') : '"stale-etag"');
    proxy.requests.length = 0;

    expect(await pod.hydrate()).toBe(true);
    const ranges = proxy.requests
      .filter((request) => request.operation === 'GetObject' && request.key === `${prefix}artifacts/large.bin`)
      .map((request) => request.range);
    expect(ranges).toEqual(sameVersion ? [`bytes=${5 * 2 ** 20}-`] : [`bytes=${5 * 2 ** 20}-`, undefined]);
    expect(sha(await readFile(target))).toBe(sha(large));
    await expect(stat(partial.data)).rejects.toThrow();
    await expect(stat(partial.etag)).rejects.toThrow();
  });
});
