import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { partialPaths } from '../../src/agent/files/partial-names.js';
import { startAwsSemanticsProxy, type AwsSemanticsProxy } from '../support/aws-semantics-proxy.js';
import { createBucket, rootClient } from '../support/minio.js';
import { agentEnv, ensureBuilt, getMetadata, getText, newPod, type Pod, runCli, uniqueSession, writeFiles } from './support/helpers.js';

// Rule 9: every upload carries a checksum the server verifies, the manifest holds each
// file's hash, and every restored file is checked against it before it takes its name.
// Real processes (the built CLI) against MinIO; the proxy flips and cuts what MinIO never
// would.

const minio = inject('minio');
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

const exists = (file: string) => stat(file).then(() => true, () => false);

describe('every byte checked', () => {
  let bucket: string;
  let root: S3Client;
  let proxy: AwsSemanticsProxy;
  const pods: Pod[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'integrity');
    root = rootClient(minio);
    proxy = await startAwsSemanticsProxy(minio.endpoint);
  });
  afterEach(() => proxy.clearTampering());
  afterAll(async () => {
    await proxy.close();
    root.destroy();
    for (const pod of pods) await pod.dispose();
  });

  async function pod(session: string): Promise<Pod> {
    const created = await newPod(agentEnv(minio, bucket, session));
    pods.push(created);
    return created;
  }

  const viaProxy = (target: Pod) => ({ ...target.env, S3_ENDPOINT: proxy.endpoint });

  // A session whose files a first pod synced with `sync --once`; a second pod to restore it.
  async function synced(files: Record<string, string | Buffer>): Promise<{ prefix: string; next: Pod }> {
    const session = uniqueSession();
    const writer = await pod(session);
    expect((await runCli(['hydrate'], writer.env)).code).toBe(0);
    await writeFiles(writer.workspace, files);
    const run = await runCli(['sync', '--once'], writer.env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    return { prefix: `project-a/${session}/`, next: await pod(session) };
  }

  describe('uploads', () => {
    it('a flipped byte in a 1-64 MiB upload is refused by the server, never recorded as synced, and the file goes up intact next cycle', async () => {
      const session = uniqueSession();
      const prefix = `project-a/${session}/`;
      const runner = await pod(session);
      expect((await runCli(['hydrate'], runner.env)).code).toBe(0);
      const body = randomBytes(2 * 2 ** 20 + 7);
      await writeFiles(runner.workspace, { 'artifacts/medium.bin': body });
      proxy.tamper('PutObject', 'flip-request', { key: 'artifacts/medium.bin', times: 1 });
      const flipped = await runCli(['sync', '--once'], viaProxy(runner));
      expect(flipped.code, flipped.stdout).toBe(1);
      expect(flipped.stdout + flipped.stderr).toMatch(/upload of artifacts\/medium\.bin failed/);
      expect(await exists(path.join(runner.stateDir, 'record.json'))).toBe(true);
      const record = JSON.parse(await readFile(path.join(runner.stateDir, 'record.json'), 'utf8')) as { files: Record<string, unknown> };
      expect(record.files['artifacts/medium.bin']).toBeUndefined();

      const again = await runCli(['sync', '--once'], runner.env);
      expect(again.code, again.stdout).toBe(0);
      expect(again.stdout).toMatch(/1 uploaded/);
      const stored = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/medium.bin`, ChecksumMode: 'ENABLED' }));
      expect(stored.ChecksumSHA256).toBe(Buffer.from(sha256(body), 'hex').toString('base64'));
      expect((await getMetadata(root, bucket, prefix)).manifest?.['artifacts/medium.bin']?.sha256).toBe(sha256(body));
    });

    it('metadata.json, streamed in two passes, carries its hash: a flipped byte is refused and the previous manifest stays', async () => {
      const { prefix, next } = await synced({ 'artifacts/a.txt': 'a' });
      const before = await getText(root, bucket, `${prefix}metadata.json`);
      expect((await runCli(['hydrate'], next.env)).code).toBe(0);
      await writeFiles(next.workspace, { 'artifacts/b.txt': 'b' });
      // Both attempts of the write (it is retried once).
      proxy.tamper('PutObject', 'flip-request', { key: 'metadata.json', times: 2 });
      const run = await runCli(['sync', '--once'], viaProxy(next));
      expect(run.code, run.stdout).toBe(1);
      expect(run.stdout + run.stderr).toMatch(/writing metadata\.json/);
      expect(await getText(root, bucket, `${prefix}metadata.json`)).toBe(before);
    });

    it('a multipart upload (over 64 MiB) carries a verified checksum per part; a flipped part fails it, and the manifest holds the whole file hash', async () => {
      const session = uniqueSession();
      const prefix = `project-a/${session}/`;
      const runner = await pod(session);
      expect((await runCli(['hydrate'], runner.env)).code).toBe(0);
      const body = randomBytes(65 * 2 ** 20);
      await writeFiles(runner.workspace, { 'artifacts/large.bin': body });
      proxy.tamper('UploadPart', 'flip-request', { key: 'artifacts/large.bin', times: 1 });
      const flipped = await runCli(['sync', '--once'], viaProxy(runner));
      expect(flipped.code, flipped.stdout).toBe(1);
      expect(flipped.stdout + flipped.stderr).toMatch(/upload of artifacts\/large\.bin failed/);

      const again = await runCli(['sync', '--once'], runner.env);
      expect(again.code, again.stdout).toBe(0);
      expect((await getMetadata(root, bucket, prefix)).manifest?.['artifacts/large.bin']?.sha256).toBe(sha256(body));
      const restorer = await pod(session);
      expect((await runCli(['hydrate'], restorer.env)).code).toBe(0);
      expect(sha256(await readFile(path.join(restorer.workspace, 'artifacts/large.bin')))).toBe(sha256(body));
    });

    it('the manifest holds the hash of every file the store confirmed, small and streamed', async () => {
      const medium = randomBytes(1.5 * 2 ** 20);
      const { prefix } = await synced({ 'artifacts/small.txt': 'small', 'artifacts/medium.bin': medium });
      const manifest = (await getMetadata(root, bucket, prefix)).manifest ?? {};
      expect(manifest['artifacts/small.txt']?.sha256).toBe(sha256('small'));
      expect(manifest['artifacts/medium.bin']?.sha256).toBe(sha256(medium));
    });
  });

  describe('restores', () => {
    // The warning names the key and both hashes; the file never appears; the key stays
    // in S3 and in the manifest the next sync writes.
    async function expectRefused(next: Pod, prefix: string, key: string, expectedHash: string | undefined, env = next.env): Promise<void> {
      const run = await runCli(['hydrate'], { ...env, HYDRATE_TIMEOUT_SECONDS: '20' });
      const out = run.stdout + run.stderr;
      expect(run.code, out).toBe(0);
      expect(out).toMatch(new RegExp(`cannot restore ${key.replace(/[./]/g, '\\$&')}: .*fetched twice`));
      if (expectedHash !== undefined) expect(out).toContain(`expected ${expectedHash}`);
      expect(await exists(path.join(next.workspace, key))).toBe(false);
      const sync = await runCli(['sync', '--once'], next.env);
      expect(sync.code, sync.stdout).toBe(0);
      expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).toContain(key);
      expect(await getText(root, bucket, prefix + key)).not.toBe('');
    }

    it('an object rewritten behind the agent (same size, other bytes) is not restored: named with both hashes, kept in S3 and in the manifest', async () => {
      const { prefix, next } = await synced({ 'artifacts/report.md': 'the real report', 'artifacts/other.md': 'other' });
      await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/report.md`, Body: 'the fake report' }));
      await expectRefused(next, prefix, 'artifacts/report.md', sha256('the real report'));
      expect(await readFile(path.join(next.workspace, 'artifacts/other.md'), 'utf8')).toBe('other');
    });

    it('an object truncated behind the agent is not restored', async () => {
      const { prefix, next } = await synced({ 'artifacts/report.md': 'the real report' });
      await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/report.md`, Body: 'the real' }));
      await expectRefused(next, prefix, 'artifacts/report.md', sha256('the real report'));
    });

    it.each([
      // Over the bundle's file limit, under the in-memory limit: fetched per object.
      ['small, read in memory', 'artifacts/small.bin', randomBytes(300 * 2 ** 10)],
      ['large, streamed to a temporary file', 'artifacts/large.bin', randomBytes(3 * 2 ** 20)],
    ])('a short body with a matching Content-Length (%s) is fetched again, and restored whole', async (_what, key, body) => {
      const { next } = await synced({ [key]: body });
      proxy.tamper('GetObject', 'short', { key, times: 1 });
      const run = await runCli(['hydrate'], viaProxy(next));
      expect(run.code, run.stdout).toBe(0);
      expect(sha256(await readFile(path.join(next.workspace, key)))).toBe(sha256(body));
    });

    it.each([
      // Over the bundle's file limit, under the in-memory limit: fetched per object.
      ['small, read in memory', 'artifacts/small.bin', randomBytes(300 * 2 ** 10)],
      ['large, streamed to a temporary file', 'artifacts/large.bin', randomBytes(3 * 2 ** 20)],
    ])('a body that stays short (%s) is never written under its name', async (_what, key, body) => {
      const { prefix, next } = await synced({ [key]: body });
      proxy.tamper('GetObject', 'short', { key });
      await expectRefused(next, prefix, key, sha256(body), viaProxy(next));
    });

    it("objects without a hash in the manifest (the platform's rclone state) are checked against the announced length", async () => {
      const session = uniqueSession();
      const prefix = `project-a/${session}/`;
      await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/old.txt`, Body: 'written by rclone, long enough' }));
      await root.send(
        new PutObjectCommand({ Bucket: bucket, Key: `${prefix}metadata.json`, Body: JSON.stringify({ lastSync: 'x', session, namespace: 'project-a', pathsSynced: 3 }) }),
      );
      const next = await pod(session);
      proxy.tamper('GetObject', 'short', { key: 'artifacts/old.txt' });
      await expectRefused(next, prefix, 'artifacts/old.txt', undefined, viaProxy(next));
    });

    it('a resumed download whose partial file holds other bytes is fetched again whole', async () => {
      const body = randomBytes(3 * 2 ** 20);
      const { prefix, next } = await synced({ 'artifacts/large.bin': body });
      const head = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/large.bin` }));
      // What an interrupted attempt left, with bytes that are not the object's.
      await mkdir(path.join(next.workspace, 'artifacts'), { recursive: true });
      const partial = partialPaths(path.join(next.workspace, 'artifacts/large.bin'));
      await writeFile(partial.data, randomBytes(2 ** 20));
      await writeFile(partial.etag, head.ETag ?? '');
      const run = await runCli(['hydrate'], next.env);
      expect(run.code, run.stdout).toBe(0);
      expect(sha256(await readFile(path.join(next.workspace, 'artifacts/large.bin')))).toBe(sha256(body));
    });
  });
});
