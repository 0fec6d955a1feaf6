import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { partialPaths } from '../../../src/agent/files/partial-names.js';
import { createBucket, rootClient } from '../../support/minio.js';
import { startAwsSemanticsProxy } from '../../support/aws-semantics-proxy.js';
import { agentEnv, getMetadata, newPod, uniqueSession, type Pod } from '../support/helpers.js';

const minio = inject('minio');
const NAME_MAX = 255;

// A file name of exactly `bytes` UTF-8 bytes: as many `unit` characters as fit, padded
// with ASCII, so multibyte characters straddle the limit the way users' names do.
function nameOf(bytes: number, unit: string): string {
  const unitBytes = Buffer.byteLength(unit);
  const count = Math.floor((bytes - 4) / unitBytes);
  const name = `${unit.repeat(count)}.txt`;
  return name + 'a'.repeat(bytes - Buffer.byteLength(name));
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('hydrate restores every name the file system allows', () => {
  let bucket: string;
  let root: S3Client;
  const pods: Pod[] = [];
  const pod = async (session: string) => {
    const created = await newPod(agentEnv(minio, bucket, session));
    pods.push(created);
    return created;
  };

  beforeAll(async () => {
    bucket = await createBucket(minio, 'names');
    root = rootClient(minio);
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
  });

  // 1-, 2-, 3- and 4-byte characters at every length from 250 to NAME_MAX, a directory
  // name at the limit, the 78 CJK characters of the original report, and a file large
  // enough to be streamed to disk (the path that keeps an ETag beside its partial file).
  const files = new Map<string, Buffer>();
  for (const unit of ['a', 'é', '日', '😀']) {
    for (let bytes = 250; bytes <= NAME_MAX; bytes += 1) {
      files.set(`artifacts/${nameOf(bytes, unit)}`, Buffer.from(`${unit} ${bytes}`));
    }
  }
  files.set(`.claude/${'日'.repeat(78)}`, Buffer.from('78 CJK characters, 234 bytes'));
  files.set(`uploads/${nameOf(NAME_MAX, 'd')}/${nameOf(NAME_MAX, 'é')}`, Buffer.from('deep'));
  files.set(`artifacts/${nameOf(NAME_MAX, 'b')}`, randomBytes(3 * 2 ** 20 + 5));
  const mtime = new Date('2024-02-03T04:05:06.789Z');

  it('syncs and restores names of 250..255 bytes, byte-identical with their mtimes', async () => {
    for (const rel of files.keys()) {
      for (const segment of rel.split('/')) expect(Buffer.byteLength(segment)).toBeLessThanOrEqual(NAME_MAX);
    }
    const session = uniqueSession();
    const writer = await pod(session);
    expect(await writer.hydrate()).toBe(true);
    for (const [rel, body] of files) {
      const file = path.join(writer.workspace, rel);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, body);
      await utimes(file, mtime, mtime);
    }
    expect(await writer.sync()).toMatchObject({ ok: true, uploaded: files.size });

    const reader = await pod(session);
    const restored = await reader.hydrate();
    expect(reader.log.text()).not.toContain('ENAMETOOLONG');
    expect(restored).toBe(true);
    for (const [rel, body] of files) {
      const file = path.join(reader.workspace, rel);
      expect(sha(await readFile(file)), rel).toBe(sha(body));
      expect(Math.abs((await stat(file)).mtimeMs - mtime.getTime()), rel).toBeLessThan(1);
    }
    // A second hydrate finds everything in place, and sync sees nothing to do.
    expect(await reader.hydrate()).toBe(true);
    expect(reader.log.text()).toContain(`Hydrate complete (0 files restored, 0 B, ${files.size} already in place`);
    expect(await reader.sync()).toMatchObject({ ok: true, uploaded: 0, deleted: 0, unchanged: files.size });
  });

  it('resumes an interrupted download of a file whose name is at the limit', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const rel = `artifacts/${nameOf(NAME_MAX, '日')}`;
    const body = randomBytes(4 * 2 ** 20);
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: prefix + rel, Body: body }));
    const head = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: prefix + rel }));
    // The reader talks to MinIO through a loopback proxy that writes down each request.
    const proxy = await startAwsSemanticsProxy(minio.endpoint);
    const reader = await newPod(agentEnv(minio, bucket, session, { S3_ENDPOINT: proxy.endpoint }));
    pods.push(reader);
    const target = path.join(reader.workspace, rel);
    // What an attempt killed after 1 MiB leaves behind.
    const partial = partialPaths(target);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(partial.data, body.subarray(0, 2 ** 20));
    await writeFile(partial.etag, head.ETag ?? '');
    try {
      expect(await reader.hydrate()).toBe(true);
    } finally {
      await proxy.close();
    }
    const ranges = proxy.requests
      .filter((request) => request.operation === 'GetObject' && request.key === prefix + rel)
      .map((request) => request.range);
    expect(ranges).toEqual([`bytes=${2 ** 20}-`]);
    expect(sha(await readFile(target))).toBe(sha(body));
    await expect(stat(partial.data)).rejects.toThrow();
    await expect(stat(partial.etag)).rejects.toThrow();
  });

  it('skips a key no local file can have, naming it, restores the rest and never deletes it', async () => {
    // S3 allows 1,024-byte keys with any component length; MinIO (which stores objects as
    // files) refuses a component over 255 bytes. Such keys therefore reach this MinIO only
    // the way a bucket on AWS would hand them over without ListBucket: as manifest entries.
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const writer = await pod(session);
    expect(await writer.hydrate()).toBe(true);
    await mkdir(path.join(writer.workspace, 'artifacts'), { recursive: true });
    await writeFile(path.join(writer.workspace, 'artifacts/fine.txt'), 'fine');
    expect((await writer.sync()).ok).toBe(true);
    const tooLong = `artifacts/${'x'.repeat(NAME_MAX + 1)}`;
    const tooLongDir = `artifacts/${'日'.repeat(86)}/inside.txt`;
    const metadata = await getMetadata(root, bucket, prefix);
    const entry = { size: 8, mtimeMs: Date.parse('2024-01-01T00:00:00Z') };
    metadata.manifest = { ...metadata.manifest, [tooLong]: entry, [tooLongDir]: entry };
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}metadata.json`, Body: JSON.stringify(metadata) }));

    const reader = await pod(session);
    expect(await reader.hydrate()).toBe(true);
    expect(reader.log.text()).toContain(`cannot restore ${tooLong}: a path component is longer than 255 bytes`);
    expect(reader.log.text()).toContain(`cannot restore ${tooLongDir}: a path component is longer than 255 bytes`);
    expect(await readFile(path.join(reader.workspace, 'artifacts/fine.txt'), 'utf8')).toBe('fine');
    await writeFile(path.join(reader.workspace, 'artifacts/new.txt'), 'new');
    expect(await reader.sync({ final: true })).toMatchObject({ ok: true, uploaded: 1, deleted: 0 });
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {}).sort()).toEqual(
      ['artifacts/fine.txt', 'artifacts/new.txt', tooLong, tooLongDir].sort(),
    );
  });
});
