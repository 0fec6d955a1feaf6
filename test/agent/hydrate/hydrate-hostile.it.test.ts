import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { partialPaths } from '../../../src/agent/files/partial-names.js';
import { addUser, createBucket, rootClient } from '../../support/minio.js';
import { agentEnv, getMetadata, listKeys, newPod, uniqueSession, type Pod } from '../support/helpers.js';
import { allowAllBut, perProjectPolicy } from '../../support/policies.js';

const minio = inject('minio');

async function put(workspace: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(workspace, rel)), { recursive: true });
    await writeFile(path.join(workspace, rel), body);
  }
}

// Everything a write through a symlink could change: content, mode, mtime, and for a
// directory the names inside it.
async function snapshot(target: string): Promise<string> {
  const info = await lstat(target);
  if (info.isDirectory()) {
    const names = (await readdir(target)).sort();
    const inner = await Promise.all(names.map(async (name) => `${name}=${await snapshot(path.join(target, name))}`));
    return `dir ${(info.mode & 0o7777).toString(8)} ${info.mtimeMs} [${inner.join(',')}]`;
  }
  return `file ${(info.mode & 0o7777).toString(8)} ${info.mtimeMs} ${(await readFile(target)).toString('base64')}`;
}

describe('hydrate never writes through a symlink or outside the workspace', () => {
  let bucket: string;
  let root: S3Client;
  let session: string;
  let outside: string;
  const outsides: string[] = [];
  const pods: Pod[] = [];
  const big = randomBytes(2 * 2 ** 20 + 3);
  const seed: Record<string, string | Buffer> = {
    'artifacts/final.txt': 'restored final',
    'artifacts/small.txt': 'restored small',
    'artifacts/big.bin': big,
    'artifacts/sub/inner.txt': 'restored inner',
    'artifacts/sub/deeper/leaf.txt': 'restored leaf',
    'uploads/u.txt': 'restored upload',
    '.claude/history.jsonl': 'history',
  };

  beforeAll(async () => {
    bucket = await createBucket(minio, 'symlinks');
    root = rootClient(minio);
    session = uniqueSession();
    const writer = await newPod(agentEnv(minio, bucket, session));
    pods.push(writer);
    expect(await writer.hydrate()).toBe(true);
    await put(writer.workspace, seed);
    // A mode the restore applies with chmod: a chmod through a link would show outside.
    await chmod(path.join(writer.workspace, 'artifacts/final.txt'), 0o600);
    await chmod(path.join(writer.workspace, 'artifacts/small.txt'), 0o600);
    expect((await writer.sync()).ok).toBe(true);
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
    for (const dir of outsides) await rm(dir, { recursive: true, force: true });
  });

  // A fresh pod and a directory outside its workspace, holding a file and a directory an
  // attacker would like the restore to overwrite.
  async function podWithOutside(): Promise<{ pod: Pod; outsideFile: string; outsideDir: string; before: string }> {
    const pod = await newPod(agentEnv(minio, bucket, session));
    pods.push(pod);
    outside = await mkdtemp(path.join(tmpdir(), 'outside-'));
    outsides.push(outside);
    const outsideFile = path.join(outside, 'victim.txt');
    const outsideDir = path.join(outside, 'victim-dir');
    await writeFile(outsideFile, 'host data');
    await chmod(outsideFile, 0o644);
    await utimes(outsideFile, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    await mkdir(outsideDir);
    await writeFile(path.join(outsideDir, 'existing.txt'), 'host dir data');
    return { pod, outsideFile, outsideDir, before: await snapshot(outside) };
  }

  async function expectRestored(pod: Pod, rels: string[]): Promise<void> {
    for (const rel of rels) {
      const file = path.join(pod.workspace, rel);
      expect((await lstat(file)).isFile(), rel).toBe(true);
      // Buffer.equals: a deep equality over 2 MiB takes seconds.
      expect((await readFile(file)).equals(Buffer.from(seed[rel] as string | Buffer)), rel).toBe(true);
    }
  }

  it('replaces a symlink at a file\'s own path instead of writing through it', async () => {
    const { pod, outsideFile, before } = await podWithOutside();
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    await symlink(outsideFile, path.join(pod.workspace, 'artifacts/final.txt'));
    await symlink(outsideFile, path.join(pod.workspace, 'artifacts/big.bin'));
    expect(await pod.hydrate()).toBe(true);
    expect(await snapshot(outside)).toBe(before);
    await expectRestored(pod, Object.keys(seed));
    expect((await stat(path.join(pod.workspace, 'artifacts/final.txt'))).mode & 0o777).toBe(0o600);
  });

  it('never writes through a symlink planted at a temporary path', async () => {
    const { pod, outsideFile, before } = await podWithOutside();
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    for (const rel of ['artifacts/small.txt', 'artifacts/big.bin']) {
      const partial = partialPaths(path.join(pod.workspace, rel));
      await symlink(outsideFile, partial.data);
      await symlink(outsideFile, partial.etag);
    }
    expect(await pod.hydrate()).toBe(true);
    expect(await snapshot(outside)).toBe(before);
    await expectRestored(pod, Object.keys(seed));
  });

  it('does not resume into a temporary file with a second hard link', async () => {
    const { pod, before } = await podWithOutside();
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    // A hard link cannot cross file systems: the victim sits beside the workspace.
    const victim = path.join(pod.workspace, 'victim-link-target');
    await writeFile(victim, big.subarray(0, 2 ** 20));
    const partial = partialPaths(path.join(pod.workspace, 'artifacts/big.bin'));
    await link(victim, partial.data);
    await writeFile(partial.etag, 'unused');
    expect(await pod.hydrate()).toBe(true);
    expect((await readFile(victim)).length).toBe(2 ** 20);
    expect(await snapshot(outside)).toBe(before);
    await expectRestored(pod, ['artifacts/big.bin']);
  });

  it.each([
    ['pointing outside the workspace', true],
    ['pointing inside the workspace', false],
  ])('refuses an intermediate directory that is a symlink %s, naming the keys below it', async (_name, out) => {
    const { pod, outsideDir, before } = await podWithOutside();
    await mkdir(path.join(pod.workspace, 'artifacts'), { recursive: true });
    const target = out ? outsideDir : path.join(pod.workspace, 'elsewhere');
    await mkdir(target, { recursive: true });
    await symlink(target, path.join(pod.workspace, 'artifacts/sub'));
    expect(await pod.hydrate()).toBe(true);
    const log = pod.log.text();
    expect(log).toContain('cannot restore artifacts/sub/inner.txt: artifacts/sub is a symlink');
    expect(log).toContain('cannot restore artifacts/sub/deeper/leaf.txt: artifacts/sub is a symlink');
    expect(await snapshot(outside)).toBe(before);
    expect(await readdir(target)).toEqual(out ? ['existing.txt'] : []);
    await expectRestored(pod, ['artifacts/final.txt', 'artifacts/big.bin', 'uploads/u.txt']);
    // Unrestored objects are never deleted by the sync that follows.
    expect((await pod.sync()).ok).toBe(true);
    expect(await listKeys(root, bucket, `project-a/${session}/`)).toEqual([...Object.keys(seed), 'metadata.json'].sort());
  });

  it('refuses a sync path directory that is a symlink, naming the keys below it', async () => {
    const { pod, outsideDir, before } = await podWithOutside();
    await symlink(outsideDir, path.join(pod.workspace, 'uploads'));
    expect(await pod.hydrate()).toBe(true);
    expect(pod.log.text()).toContain('cannot restore uploads/u.txt: uploads is a symlink');
    expect(await snapshot(outside)).toBe(before);
    await expectRestored(pod, ['artifacts/final.txt', 'artifacts/sub/inner.txt']);
  });

  it('refuses a sync path mapped below a symlinked directory', async () => {
    const { pod, outsideDir, before } = await podWithOutside();
    const mapped = await newPod({ ...agentEnv(minio, bucket, session), WORKSPACE_DIR: pod.workspace, SYNC_PATHS: '.claude=home/.claude,artifacts' });
    pods.push(mapped);
    await symlink(outsideDir, path.join(pod.workspace, 'home'));
    expect(await mapped.hydrate()).toBe(true);
    expect(mapped.log.text()).toContain('cannot restore .claude/history.jsonl: home is a symlink');
    expect(await snapshot(outside)).toBe(before);
  });
});

describe('one bad object never wedges the session', () => {
  let bucket: string;
  let root: S3Client;
  const pods: Pod[] = [];
  const pod = async (session: string, overrides: Record<string, string> = {}) => {
    const created = await newPod(agentEnv(minio, bucket, session, overrides));
    pods.push(created);
    return created;
  };
  const putObject = (key: string, body: string, metadata?: Record<string, string>) =>
    root.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));

  beforeAll(async () => {
    bucket = await createBucket(minio, 'bad-objects');
    root = rootClient(minio);
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
  });

  it('restores the directory of a key that is also a file, names the file, and keeps both in S3', async () => {
    // S3 holds `artifacts/a` and `artifacts/a/b` side by side; MinIO, which stores objects
    // as files, keeps only one of them. The file half therefore comes from the manifest,
    // as a bucket on AWS would hand it over.
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const writer = await pod(session);
    expect(await writer.hydrate()).toBe(true);
    await put(writer.workspace, { 'artifacts/a/b': 'a file in a directory named like a file', 'artifacts/ok.txt': 'ok' });
    expect((await writer.sync()).ok).toBe(true);
    const metadata = await getMetadata(root, bucket, prefix);
    // Written just now, as on AWS where the object exists: sync's refresh leaves it alone
    // (a refresh would find MinIO has no such object and rightly drop the entry).
    metadata.manifest = { ...metadata.manifest, 'artifacts/a': { size: 6, mtimeMs: Date.parse('2024-01-01T00:00:00Z'), uploadedAt: Date.now() } };
    await putObject(`${prefix}metadata.json`, JSON.stringify(metadata));

    // Without s3:ListBucket, as under the seed's per-project policy: with a listing, sync
    // would rightly drop the manifest entry MinIO has no object for.
    const noList = await addUser(minio, perProjectPolicy(bucket));
    const runner = await pod(session, { AWS_ACCESS_KEY_ID: noList.accessKey, AWS_SECRET_ACCESS_KEY: noList.secretKey });
    expect(await runner.hydrate()).toBe(true);
    expect(runner.log.text()).toContain('cannot restore artifacts/a: it is also a directory (artifacts/a/...)');
    expect(await readFile(path.join(runner.workspace, 'artifacts/a/b'), 'utf8')).toBe('a file in a directory named like a file');
    await rm(path.join(runner.workspace, 'artifacts/ok.txt'));
    // The deletion of a file that was restored still goes through; the unrestored key
    // stays in the manifest, and its object is never deleted.
    expect(await runner.sync()).toMatchObject({ ok: true, deleted: 1 });
    expect(await listKeys(root, bucket, prefix)).toEqual(['artifacts/a/b', 'metadata.json']);
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).toEqual(['artifacts/a', 'artifacts/a/b']);
  });

  it('restores objects with an unusable x-amz-meta-mtime with their upload time, naming each', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const bad = ['1e300', 'abc', '-5', 'Infinity', ''];
    for (const [index, mtime] of bad.entries()) await putObject(`${prefix}artifacts/bad-${index}.txt`, `bad ${index}`, { mtime });
    await putObject(`${prefix}artifacts/good.txt`, 'good', { mtime: '1700000000.25' });
    const uploaded = Date.now();
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    for (const [index, mtime] of bad.entries()) {
      const rel = `artifacts/bad-${index}.txt`;
      expect(await readFile(path.join(runner.workspace, rel), 'utf8')).toBe(`bad ${index}`);
      expect(Math.abs((await stat(path.join(runner.workspace, rel))).mtimeMs - uploaded)).toBeLessThan(10_000);
      if (mtime !== '') expect(runner.log.text()).toContain(`${rel} has an unusable x-amz-meta-mtime ("${mtime}")`);
    }
    expect((await stat(path.join(runner.workspace, 'artifacts/good.txt'))).mtimeMs).toBe(1700000000250);
    // What was restored is what sync finds: nothing goes up again.
    expect(await runner.sync()).toMatchObject({ ok: true, uploaded: 0, unchanged: bad.length + 1 });
  });

  it('restores everything else when the server refuses one object, and never deletes it', async () => {
    const writerSession = uniqueSession();
    const prefix = `project-a/${writerSession}/`;
    const writer = await pod(writerSession);
    expect(await writer.hydrate()).toBe(true);
    await put(writer.workspace, { 'artifacts/denied.txt': 'denied', 'artifacts/a.txt': 'a', 'artifacts/b.txt': 'b' });
    expect((await writer.sync()).ok).toBe(true);
    const blocked = await addUser(minio, allowAllBut(bucket, { action: 's3:GetObject', key: `${prefix}artifacts/denied.txt` }));
    const runner = await pod(writerSession, { AWS_ACCESS_KEY_ID: blocked.accessKey, AWS_SECRET_ACCESS_KEY: blocked.secretKey });
    expect(await runner.hydrate()).toBe(true);
    expect(runner.log.text()).toContain('cannot restore artifacts/denied.txt: access denied');
    expect(await readFile(path.join(runner.workspace, 'artifacts/a.txt'), 'utf8')).toBe('a');
    await rm(path.join(runner.workspace, 'artifacts/b.txt'));
    expect(await runner.sync()).toMatchObject({ ok: true, deleted: 1 });
    expect(await listKeys(root, bucket, prefix)).toEqual(['artifacts/a.txt', 'artifacts/denied.txt', 'metadata.json']);
  });

  it('restores everything else when an object disappears between listing and download', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    await putObject(`${prefix}artifacts/vanishing.txt`, 'gone soon');
    await putObject(`${prefix}artifacts/stays.txt`, 'stays');
    const runner = await pod(session);
    runner.faults.inject(async (command, key) => {
      if (command === 'GetObject' && key === `${prefix}artifacts/vanishing.txt`) {
        await root.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      }
    });
    expect(await runner.hydrate()).toBe(true);
    expect(runner.log.text()).toContain('artifacts/vanishing.txt');
    expect(await readFile(path.join(runner.workspace, 'artifacts/stays.txt'), 'utf8')).toBe('stays');
  });

  it('fails when no object of the prefix may be read at all', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    await putObject(`${prefix}file-uploads/report.pdf`, 'pre-uploaded by the platform backend');
    const blocked = await addUser(minio, allowAllBut(bucket, { action: 's3:GetObject', key: `${prefix}file-uploads/*` }));
    const runner = await pod(session, {
      AWS_ACCESS_KEY_ID: blocked.accessKey,
      AWS_SECRET_ACCESS_KEY: blocked.secretKey,
      SYNC_PATHS: 'artifacts,file-uploads',
    });
    expect(await runner.hydrate()).toBe(false);
    expect(runner.log.text()).toContain('hydrate failed: access denied');
    expect(runner.log.text()).not.toContain('No existing state found');
  });

  it.each([
    ['wrong credentials', { AWS_SECRET_ACCESS_KEY: 'not-the-secret-123' }, 'access denied'],
    ['a missing bucket', { S3_BUCKET: 'no-such-bucket-here' }, 'bucket not found'],
  ])('gives up on %s after 3 attempts instead of the whole HYDRATE_TIMEOUT_SECONDS', async (_name, overrides, kind) => {
    const runner = await pod(uniqueSession(), { HYDRATE_TIMEOUT_SECONDS: '120', ...overrides });
    const started = Date.now();
    expect(await runner.hydrate()).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(runner.log.text()).toMatch(new RegExp(`hydrate failed: ${kind}: .* \\(gave up after 3 attempts`));
  });
});
