import { readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addUser, createBucket, rootClient } from '../support/minio.js';
import { agentEnv, ensureBuilt, getMetadata, listKeys, newPod, type Pod, startCli, uniqueSession, writeFiles } from './support/helpers.js';
import { connectionRefused } from './support/faulty-store.js';
import { allowAllBut } from '../support/policies.js';
import { startAwsSemanticsProxy } from '../support/aws-semantics-proxy.js';

const minio = inject('minio');

describe('data-safety invariants', () => {
  let bucket: string;
  let root: S3Client;
  const pods: Pod[] = [];
  const pod = async (session: string, overrides: Record<string, string> = {}) => {
    const created = await newPod(agentEnv(minio, bucket, session, overrides));
    pods.push(created);
    return created;
  };
  const seed = {
    '.claude/history.jsonl': 'history',
    'artifacts/a.txt': 'a',
    'artifacts/b.txt': 'b',
    'artifacts/c.txt': 'c',
    'uploads/u.txt': 'u',
  };
  const seedKeys = [...Object.keys(seed), 'metadata.json'].sort();

  // A session whose state is in S3, written by an earlier pod.
  async function seededSession(): Promise<string> {
    const session = uniqueSession();
    const writer = await pod(session);
    expect(await writer.hydrate()).toBe(true);
    await writeFiles(writer.workspace, seed);
    expect((await writer.sync()).ok).toBe(true);
    return session;
  }

  beforeAll(async () => {
    bucket = await createBucket(minio, 'safety');
    root = rootClient(minio);
  });
  afterAll(async () => {
    root.destroy();
    for (const created of pods) await created.dispose();
  });

  it('propagates a deletion after a successful hydrate and drops it from the manifest', async () => {
    const session = await seededSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    await rm(path.join(runner.workspace, 'artifacts/b.txt'));
    expect(await runner.sync()).toMatchObject({ ok: true, deleted: 1 });
    expect(await listKeys(root, bucket, prefix)).toEqual(seedKeys.filter((key) => key !== 'artifacts/b.txt'));
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).not.toContain('artifacts/b.txt');
  });

  it('propagates a deletion in the first pod of a fresh session', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    expect(runner.log.text()).toContain('No existing state found, starting fresh session');
    await writeFiles(runner.workspace, { 'artifacts/keep.txt': 'k', 'artifacts/scratch.txt': 's' });
    expect((await runner.sync()).ok).toBe(true);
    await rm(path.join(runner.workspace, 'artifacts/scratch.txt'));
    expect(await runner.sync()).toMatchObject({ ok: true, deleted: 1 });
    expect(await listKeys(root, bucket, prefix)).toEqual(['artifacts/keep.txt', 'metadata.json']);
  });

  it('never deletes after a failed (partial) hydrate', async () => {
    const session = await seededSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session, { HYDRATE_TIMEOUT_SECONDS: '1' });
    // The endpoint goes away halfway through the restore (one object refused is restored
    // around and named instead: hydrate-hostile.it.test.ts).
    let endpointDown = true;
    runner.faults.inject((command, key) => {
      if (endpointDown && command === 'GetObject' && key === `${prefix}artifacts/b.txt`) throw connectionRefused();
    });
    expect(await runner.hydrate()).toBe(false);
    expect(runner.log.text()).toContain('hydrate failed: connection refused');
    endpointDown = false;
    // Whatever a partial restore left locally, b.txt is missing: sync must not read that
    // as a deletion.
    await expect(stat(path.join(runner.workspace, 'artifacts/b.txt'))).rejects.toThrow();
    const result = await runner.sync();
    expect(result.deleted).toBe(0);
    expect(runner.log.text()).toContain('deletions stay disabled');
    expect(await listKeys(root, bucket, prefix)).toEqual(seedKeys);
  });

  it('a hydrate killed mid-way leaves no file that a later hydrate or sync takes as restored', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const writer = await pod(session);
    expect(await writer.hydrate()).toBe(true);
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`artifacts/many/f${i}.txt`, `file ${i} `.repeat(50)]));
    await writeFiles(writer.workspace, { ...many, 'artifacts/stall.txt': 'stall' });
    expect((await writer.sync()).ok).toBe(true);

    // The killed pod's hydrate: every small file written into directories it created, one
    // GET stuck, then SIGKILL.
    const runner = await pod(session);
    const proxy = await startAwsSemanticsProxy(minio.endpoint);
    proxy.stalled.add(`${prefix}artifacts/stall.txt`);
    await ensureBuilt();
    const killed = startCli(['hydrate'], { ...runner.env, S3_ENDPOINT: proxy.endpoint, HYDRATE_TIMEOUT_SECONDS: '60' });
    const manyDir = path.join(runner.workspace, 'artifacts/many');
    for (let deadline = Date.now() + 30_000; (await readdir(manyDir).catch(() => [])).length < 40; ) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    killed.child.kill('SIGKILL');
    expect((await killed.exited).signal).toBe('SIGKILL');
    await proxy.close();
    // Written under their final names: the directory is on the list of what hydrate created.
    expect(await readFile(path.join(runner.stateDir, 'hydrate-created-dirs'), 'utf8')).toContain('"artifacts/many"');
    // What a kill in the middle of a write leaves (its bytes so far, today's mtime), in a
    // file whose object is still there and in one whose object is deleted before the next
    // attempt.
    await writeFile(path.join(manyDir, 'f1.txt'), 'file 1 file');
    await writeFile(path.join(manyDir, 'f2.txt'), 'file 2 file');
    await root.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/many/f2.txt` }));

    expect(await runner.hydrate()).toBe(true);
    expect(await readFile(path.join(manyDir, 'f1.txt'), 'utf8')).toBe(many['artifacts/many/f1.txt']);
    await expect(stat(path.join(manyDir, 'f2.txt'))).rejects.toThrow();
    await expect(stat(path.join(runner.stateDir, 'hydrate-created-dirs'))).rejects.toThrow();
    expect(await runner.sync()).toMatchObject({ ok: true, uploaded: 0 });
    expect(await listKeys(root, bucket, prefix)).not.toContain('artifacts/many/f2.txt');
  });

  it('deletes nothing from an empty workspace that was never hydrated', async () => {
    const session = await seededSession();
    const runner = await pod(session);
    expect(await runner.sync()).toMatchObject({ ok: true, deleted: 0, uploaded: 0 });
    expect(await listKeys(root, bucket, `project-a/${session}/`)).toEqual(seedKeys);
  });

  it('deletes nothing from a sync path that is empty locally, even after a hydrate', async () => {
    const session = await seededSession();
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    await rm(path.join(runner.workspace, 'artifacts'), { recursive: true });
    await rm(path.join(runner.workspace, 'uploads/u.txt'));
    expect(await runner.sync()).toMatchObject({ ok: true, deleted: 0 });
    expect(runner.log.text()).toContain('artifacts/ is empty locally but 3 files are in S3: not deleting them');
    expect(await listKeys(root, bucket, `project-a/${session}/`)).toEqual(seedKeys);
  });

  it('deletes nothing in a cycle where an upload failed', async () => {
    const session = await seededSession();
    const prefix = `project-a/${session}/`;
    const blocked = await addUser(minio, allowAllBut(bucket, { action: 's3:PutObject', key: `${prefix}artifacts/new.txt` }));
    const runner = await pod(session, { AWS_ACCESS_KEY_ID: blocked.accessKey, AWS_SECRET_ACCESS_KEY: blocked.secretKey });
    expect(await runner.hydrate()).toBe(true);
    await rm(path.join(runner.workspace, 'artifacts/a.txt'));
    // More files than transfer workers, queued behind the denied one (smallest first): a
    // policy denying one key must not hold the others back.
    const others: Record<string, string> = {};
    for (let index = 0; index < 40; index += 1) others[`artifacts/other-${String(index).padStart(2, '0')}.txt`] = `other ${index}`;
    await writeFiles(runner.workspace, { 'artifacts/new.txt': 'new', ...others });
    const result = await runner.sync();
    expect(result).toMatchObject({ ok: false, deleted: 0, failed: 1, uploaded: 40 });
    expect(await listKeys(root, bucket, prefix)).toEqual([...seedKeys, ...Object.keys(others)].sort());
  });

  it('writes the manifest in a later cycle when writing it failed after successful uploads', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    // Both attempts of the cycle (a single failure is retried at once: the next test).
    let failures = 2;
    runner.faults.inject((command, key) => {
      if (failures > 0 && command === 'PutObject' && key === `${prefix}metadata.json`) {
        failures -= 1;
        throw connectionRefused();
      }
    });
    await writeFiles(runner.workspace, { 'uploads/report.pdf': 'pdf' });
    expect(await runner.sync()).toMatchObject({ ok: false, uploaded: 1 });
    expect(await listKeys(root, bucket, prefix)).toEqual(['uploads/report.pdf']);
    expect(await runner.sync()).toMatchObject({ ok: true, uploaded: 0 });
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).toEqual(['uploads/report.pdf']);
  });

  it('writes the manifest in the same cycle when one attempt of it fails (the final sync has no later cycle)', async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    let failures = 1;
    runner.faults.inject((command, key) => {
      if (failures > 0 && command === 'PutObject' && key === `${prefix}metadata.json`) {
        failures -= 1;
        throw connectionRefused();
      }
    });
    await writeFiles(runner.workspace, { 'uploads/report.pdf': 'pdf' });
    expect(await runner.sync({ final: true })).toMatchObject({ ok: true, uploaded: 1 });
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).toEqual(['uploads/report.pdf']);
  });

  it('keeps the manifest entries of sync paths a pod does not sync', async () => {
    const session = await seededSession();
    const prefix = `project-a/${session}/`;
    const narrow = await pod(session, { SYNC_PATHS: '.claude,artifacts' });
    expect(await narrow.hydrate()).toBe(true);
    await expect(stat(path.join(narrow.workspace, 'uploads/u.txt'))).rejects.toThrow();
    await writeFiles(narrow.workspace, { '.claude/history.jsonl': 'more history' });
    expect(await narrow.sync()).toMatchObject({ ok: true, uploaded: 1, deleted: 0 });
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).toContain('uploads/u.txt');
    expect(await listKeys(root, bucket, prefix)).toEqual(seedKeys);
  });

  it('refuses object keys that would escape the workspace', async () => {
    const session = await seededSession();
    const prefix = `project-a/${session}/`;
    const metadata = await getMetadata(root, bucket, prefix);
    const evil = { size: 4, mtimeMs: Date.now() };
    metadata.manifest = {
      ...metadata.manifest,
      'artifacts/../../../escaped.txt': evil,
      '/etc/escaped.txt': evil,
      'artifacts//x': evil,
    };
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}metadata.json`, Body: JSON.stringify(metadata) }));
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    const log = runner.log.text();
    expect(log).toContain(`refusing object ${prefix}artifacts/../../../escaped.txt: contains ".."`);
    expect(log).toContain(`refusing object ${prefix}/etc/escaped.txt: absolute path`);
    expect(log).toContain('3 refused');
    await expect(stat(path.join(runner.workspace, '../escaped.txt'))).rejects.toThrow();
    expect(await readFile(path.join(runner.workspace, 'artifacts/a.txt'), 'utf8')).toBe('a');
  });

  it('does not follow symlinks out of the workspace', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'outside-'));
    await writeFile(path.join(outside, 'secret.txt'), 'host secret');
    const session = uniqueSession();
    const runner = await pod(session);
    expect(await runner.hydrate()).toBe(true);
    await writeFiles(runner.workspace, { 'artifacts/real.txt': 'real' });
    await symlink(path.join(outside, 'secret.txt'), path.join(runner.workspace, 'artifacts/escape-link'));
    await symlink(outside, path.join(runner.workspace, 'artifacts/escape-dir'));
    await symlink(path.join(runner.workspace, 'artifacts/real.txt'), path.join(runner.workspace, 'artifacts/inside-link'));
    await symlink(outside, path.join(runner.workspace, 'uploads'));
    expect((await runner.sync()).ok).toBe(true);
    expect(await listKeys(root, bucket, `project-a/${session}/`)).toEqual([
      'artifacts/inside-link',
      'artifacts/real.txt',
      'metadata.json',
    ]);
    expect(runner.log.text()).toContain('artifacts/escape-link is a symlink pointing outside the workspace: not synced');
    expect(runner.log.text()).toContain('uploads/ is a symlink pointing outside the workspace: not synced');
    await rm(outside, { recursive: true, force: true });
  });
});

describe('MAX_SYNC_SIZE', () => {
  it('skips the largest files past the budget, logs them and records them in metadata.json', async () => {
    const bucket = await createBucket(minio, 'budget');
    const session = uniqueSession();
    const runner = await newPod(agentEnv(minio, bucket, session, { MAX_SYNC_SIZE: '100' }));
    await writeFiles(runner.workspace, {
      '.claude/small.txt': 'x'.repeat(30),
      'artifacts/medium.txt': 'x'.repeat(50),
      'artifacts/large.txt': 'x'.repeat(80),
    });
    expect(await runner.sync()).toMatchObject({ ok: true, uploaded: 2, skipped: 1 });
    expect(runner.log.text()).toContain('MAX_SYNC_SIZE (100 B) exceeded: 1 largest files (80 B) not synced');
    expect(runner.log.text()).toContain('  skipped artifacts/large.txt (80 B)');
    const root = rootClient(minio);
    const metadata = await getMetadata(root, bucket, `project-a/${session}/`);
    expect(metadata.skipped).toEqual([{ path: 'artifacts/large.txt', size: 80, reason: 'MAX_SYNC_SIZE' }]);
    expect(metadata).toMatchObject({ files: 2, bytes: 80, maxSyncSize: 100 });
    expect(await listKeys(root, bucket, `project-a/${session}/`)).not.toContain('artifacts/large.txt');
    root.destroy();
    await runner.dispose();
  });
});
