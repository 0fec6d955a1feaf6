import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { AgentStore } from '../../src/agent/store/s3-store.js';
import { loadSettings } from '../../src/agent/settings.js';
import { failureOf } from '../../src/agent/store/store.js';
import { startAwsSemanticsProxy, type AwsSemanticsProxy } from '../support/aws-semantics-proxy.js';
import { createBucket, rootClient } from '../support/minio.js';
import { agentEnv, caught, ensureBuilt, getMetadata, listKeys, newPod, type Pod, runCli, uniqueSession, writeFiles } from './support/helpers.js';

// Rule 10: a 2xx that is not an S3 answer (an HTML page, a 200 without an ETag, without a
// ListBucketResult or a DeleteResult) is an error, never "empty", "stored" or "deleted".
// The proxy answers what MinIO never would; everything else is MinIO's.

const minio = inject('minio');
const signal = new AbortController().signal;

describe('an answer that is not S3', () => {
  let bucket: string;
  let root: S3Client;
  let proxy: AwsSemanticsProxy;
  const pods: Pod[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    bucket = await createBucket(minio, 'not-s3');
    root = rootClient(minio);
    proxy = await startAwsSemanticsProxy(minio.endpoint);
  });
  afterEach(() => proxy.clearTampering());
  afterAll(async () => {
    await proxy.close();
    root.destroy();
    for (const pod of pods) await pod.dispose();
  });

  // A session with state in S3, synced by a pod of its own; returns a fresh pod for it.
  async function sessionWithState(files: Record<string, string>): Promise<{ session: string; prefix: string; next: Pod }> {
    const session = uniqueSession();
    const writer = await newPod(agentEnv(minio, bucket, session));
    pods.push(writer);
    expect(await writer.hydrate()).toBe(true);
    await writeFiles(writer.workspace, files);
    expect((await writer.sync()).ok).toBe(true);
    const next = await newPod(agentEnv(minio, bucket, session));
    pods.push(next);
    return { session, prefix: `project-a/${session}/`, next };
  }

  const throughProxy = (pod: Pod, extra: Record<string, string> = {}) => ({ ...pod.env, S3_ENDPOINT: proxy.endpoint, HYDRATE_TIMEOUT_SECONDS: '4', ...extra });

  it('hydrate behind a captive portal (every answer an HTML 200) fails naming it and never starts fresh', async () => {
    const { session, next } = await sessionWithState({ 'artifacts/report.md': 'the report' });
    proxy.tamper('GetObject', 'html', { key: `${session}/metadata.json` });
    proxy.tamper('ListObjectsV2', 'html');
    const run = await runCli(['hydrate'], throughProxy(next));
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).not.toContain('starting fresh session');
    expect(run.stdout + run.stderr).toMatch(/hydrate failed: server error: not an S3 answer/);
    await expect(stat(path.join(next.stateDir, 'record.json'))).rejects.toThrow();
  });

  it("a listing answered with an HTML 200 is not an empty prefix: the platform's state is not taken for a fresh session", async () => {
    const session = uniqueSession();
    const prefix = `project-a/${session}/`;
    // What the platform's sync.sh leaves: rclone objects and a metadata.json without a manifest.
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}artifacts/old.txt`, Body: 'from rclone' }));
    await root.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${prefix}metadata.json`, Body: JSON.stringify({ lastSync: 'x', session, namespace: 'project-a', pathsSynced: 3 }) }),
    );
    const next = await newPod(agentEnv(minio, bucket, session));
    pods.push(next);
    proxy.tamper('ListObjectsV2', 'html');
    const run = await runCli(['hydrate'], throughProxy(next));
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).not.toContain('starting fresh session');
    expect(run.stdout + run.stderr).toMatch(/server error: not an S3 answer: ListObjectsV2 .* without a ListBucketResult \(body starts "<!DOCTYPE html>/);
  });

  it('an object answered with an HTML 200 (no ETag) is never restored as the file', async () => {
    const { session, next } = await sessionWithState({ 'artifacts/page.txt': 'the real bytes', 'artifacts/other.txt': 'other' });
    proxy.tamper('GetObject', 'html', { key: `${session}/artifacts/page.txt` });
    const run = await runCli(['hydrate'], throughProxy(next));
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/server error: not an S3 answer: GetObject of .*artifacts\/page\.txt: HTTP 200 without an ETag/);
    expect(await readFile(path.join(next.workspace, 'artifacts/page.txt'), 'utf8').catch(() => 'absent')).toBe('absent');
  });

  it('GET, HEAD and a listing answered 200 without an S3 document throw a named server error', async () => {
    const { prefix } = await sessionWithState({ 'artifacts/a.txt': 'a' });
    const store = new AgentStore(loadSettings({ ...agentEnv(minio, bucket, 'unused'), S3_ENDPOINT: proxy.endpoint }), 4);
    try {
      proxy.tamper('GetObject', 'html', { key: 'artifacts/a.txt', times: 2 });
      proxy.tamper('HeadObject', 'html', { key: 'artifacts/a.txt', times: 2 });
      proxy.tamper('ListObjectsV2', 'html', { times: 2 });
      for (const call of [
        () => store.get(`${prefix}artifacts/a.txt`, {}, signal),
        () => store.head(`${prefix}artifacts/a.txt`, signal),
        () => store.list(prefix, signal),
      ]) {
        const failure = failureOf(await caught(call()));
        expect(failure.kind).toBe('server error');
        expect(failure.detail).toMatch(/^not an S3 answer: /);
      }
    } finally {
      store.close();
    }
  });

  it('an upload answered with an HTML 200 fails the cycle, and the file goes up once S3 answers again', async () => {
    const { prefix, next } = await sessionWithState({ 'artifacts/a.txt': 'a' });
    expect((await runCli(['hydrate'], next.env)).code).toBe(0);
    await writeFiles(next.workspace, { 'artifacts/new.txt': 'new' });
    proxy.tamper('PutObject', 'html', { key: 'artifacts/new.txt' });
    const run = await runCli(['sync', '--once'], throughProxy(next));
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/upload of artifacts\/new\.txt failed: server error: not an S3 answer/);
    expect(await listKeys(root, bucket, prefix)).not.toContain('artifacts/new.txt');
    expect((await runCli(['sync', '--once'], next.env)).code).toBe(0);
    expect(await listKeys(root, bucket, prefix)).toContain('artifacts/new.txt');
  });

  it('a DeleteObjects answered with an HTML 200 deletes nothing: the key stays in the manifest and the cycle fails', async () => {
    const { prefix, next } = await sessionWithState({ 'artifacts/keep.txt': 'keep', 'artifacts/gone.txt': 'gone' });
    expect((await runCli(['hydrate'], next.env)).code).toBe(0);
    await rm(path.join(next.workspace, 'artifacts/gone.txt'));
    proxy.tamper('DeleteObjects', 'html', { times: 1 });
    const run = await runCli(['sync', '--once'], throughProxy(next));
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/deleting removed files failed/);
    expect(await listKeys(root, bucket, prefix)).toContain('artifacts/gone.txt');
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).toContain('artifacts/gone.txt');
    // S3 answering again, the deletion goes through.
    expect((await runCli(['sync', '--once'], next.env)).code).toBe(0);
    expect(await listKeys(root, bucket, prefix)).not.toContain('artifacts/gone.txt');
    expect(Object.keys((await getMetadata(root, bucket, prefix)).manifest ?? {})).not.toContain('artifacts/gone.txt');
  });
});
