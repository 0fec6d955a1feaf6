import { createHash } from 'node:crypto';
import { mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FRESH_SESSION_MESSAGE } from '../../src/agent/hydrate/hydrate.js';
import { partialPaths } from '../../src/agent/files/partial-names.js';
import { MEMORY_PREFIX, newMemoryPod, removeMemoryPods, type MemoryPod } from './support/memory-pod.js';
import { MemoryStore, storeError } from './support/memory-store.js';

// The whole agent (hydrate, sync, refresh) over the in-memory store: the decisions the
// MinIO tier proves against a real server, here in milliseconds and with faults on demand.

const PREFIX = MEMORY_PREFIX;
const signal = new AbortController().signal;
afterEach(removeMemoryPods);
const newPod = newMemoryPod;

const remove = (pod: MemoryPod, rel: string) => unlink(path.join(pod.settings.workspaceDir, rel));
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('the agent over the in-memory store', () => {
  it('deletes nothing in a cycle where an upload failed, and propagates the deletion once all went up', async () => {
    const store = new MemoryStore();
    const pod = await newPod(store);
    expect(await pod.hydrate()).toBe(true);
    await pod.write({ 'artifacts/a.txt': 'a', 'artifacts/b.txt': 'b' });
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 2 });

    await remove(pod, 'artifacts/a.txt');
    await pod.write({ 'artifacts/c.txt': 'c' });
    store.failNth('put', 1);
    expect(await pod.sync()).toMatchObject({ ok: false, failed: 1, deleted: 0 });
    expect(store.keys(PREFIX)).toContain('artifacts/a.txt');

    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1, deleted: 1 });
    expect(store.keys(PREFIX)).toEqual(['artifacts/b.txt', 'artifacts/c.txt', 'metadata.json']);
  });

  it('a pod that did not hydrate uploads but never deletes', async () => {
    const store = new MemoryStore();
    const first = await newPod(store);
    expect(await first.hydrate()).toBe(true);
    await first.write({ 'artifacts/a.txt': 'a', 'artifacts/b.txt': 'b' });
    // Its last sync: the session is released, so the second pod owns it.
    expect((await first.sync({ final: true })).ok).toBe(true);

    const second = await newPod(store);
    await second.write({ 'artifacts/b.txt': 'b2' });
    expect(await second.sync()).toMatchObject({ ok: true, uploaded: 1, deleted: 0 });
    expect(second.log.text()).toContain('No hydrate record in this pod: reading the remote state once (deletions stay disabled)');
    expect(store.keys(PREFIX)).toEqual(['.session-storage/restore-bundle.tar', 'artifacts/a.txt', 'artifacts/b.txt', 'metadata.json']);
    expect(store.calls.filter((call) => call.op === 'deleteMany')).toEqual([]);
  });

  it('without s3:ListBucket a missing metadata.json answers 403: the probe shows it missing, the session starts fresh, and a later pod restores from the manifest', async () => {
    const store = new MemoryStore().withoutListBucket();
    const first = await newPod(store);
    expect(await first.hydrate()).toBe(true);
    expect(first.log.text()).toContain(FRESH_SESSION_MESSAGE);
    expect(store.calls.filter((call) => call.key.includes('.session-storage-probe-')).map((call) => call.op)).toEqual(['put', 'get', 'delete']);
    await first.write({ 'artifacts/a.txt': 'a', '.claude/history.jsonl': '{}\n' });
    expect((await first.sync()).ok).toBe(true);

    const second = await newPod(store);
    expect(await second.hydrate()).toBe(true);
    expect((await second.read('artifacts/a.txt')).toString()).toBe('a');
    expect((await second.read('.claude/history.jsonl')).toString()).toBe('{}\n');
  });

  it('fails hydrate instead of starting fresh when metadata.json is refused and the policy may not read here', async () => {
    const store = new MemoryStore().withoutListBucket();
    store.failAll('get', storeError('access-denied', 'AccessDenied'));
    // A permanent failure is retried a few times with backoff; a short budget keeps it quick.
    const pod = await newPod(store, { hydrateTimeoutSeconds: 1 });
    expect(await pod.hydrate()).toBe(false);
    expect(pod.log.text()).toContain('hydrate failed: access denied: reading metadata.json was refused, and these credentials may write but not read objects');
    expect(pod.log.text()).not.toContain(FRESH_SESSION_MESSAGE);
  });

  it('without s3:ListBucket, state the platform wrote (metadata.json without a manifest) fails hydrate naming the cause, never a fresh start', async () => {
    const store = new MemoryStore().withoutListBucket();
    const platform = { lastSync: '2026-11-30T10:00:00Z', session: 's1', namespace: 'project-a', pathsSynced: 3 };
    await store.put(`${PREFIX}metadata.json`, JSON.stringify(platform), {}, signal);
    await store.put(`${PREFIX}artifacts/a.txt`, 'a', {}, signal);
    const pod = await newPod(store, { hydrateTimeoutSeconds: 1 });
    expect(await pod.hydrate()).toBe(false);
    expect(pod.log.text()).toContain("hydrate failed: state cannot be enumerated: metadata.json has no manifest (written by the platform's sync.sh); listing denied: grant s3:ListBucket");
    expect(pod.log.text()).not.toContain(FRESH_SESSION_MESSAGE);
  });

  it('names one object the store refuses, restores the rest, and never deletes the refused one', async () => {
    const store = new MemoryStore();
    const first = await newPod(store);
    expect(await first.hydrate()).toBe(true);
    await first.write({ 'artifacts/a.txt': 'a', 'artifacts/secret.txt': 's' });
    expect((await first.sync()).ok).toBe(true);

    const second = await newPod(store);
    store.refuse(`${PREFIX}artifacts/secret.txt`);
    expect(await second.hydrate()).toBe(true);
    expect(second.log.text()).toContain(`cannot restore artifacts/secret.txt: access denied (AccessDenied: ${PREFIX}artifacts/secret.txt)`);
    await second.write({ 'artifacts/new.txt': 'n' });
    expect(await second.sync()).toMatchObject({ ok: true, deleted: 0 });
    expect(store.keys(PREFIX)).toContain('artifacts/secret.txt');
  });

  it.each([
    // metadata.json is read whole (no offset) before the object.
    ['continues an interrupted download with a ranged read of the same version', true, [undefined, 2 ** 20]],
    ['starts over when the object changed since the interruption', false, [undefined, 2 ** 20, undefined]],
  ])('%s', async (_, sameVersion, offsets) => {
    const store = new MemoryStore();
    const first = await newPod(store);
    expect(await first.hydrate()).toBe(true);
    const large = Buffer.alloc(3 * 2 ** 20);
    for (let i = 0; i < large.length; i += 4096) large[i] = i % 251;
    await first.write({ 'artifacts/large.bin': large });
    expect((await first.sync()).ok).toBe(true);

    const second = await newPod(store);
    const target = path.join(second.settings.workspaceDir, 'artifacts/large.bin');
    await mkdir(path.dirname(target), { recursive: true });
    const partial = partialPaths(target);
    await writeFile(partial.data, large.subarray(0, 2 ** 20));
    await writeFile(partial.etag, sameVersion ? store.objects.get(`${PREFIX}artifacts/large.bin`)!.etag : '"stale"');
    const before = store.calls.length;
    expect(await second.hydrate()).toBe(true);
    expect(store.calls.slice(before).filter((call) => call.op === 'get').map((call) => call.from)).toEqual(offsets);
    expect(sha(await second.read('artifacts/large.bin'))).toBe(sha(large));
    await expect(stat(partial.data)).rejects.toThrow();
  });

  it('uploads again from the local copy an object lost behind its back, also where the store answers 403 for it', async () => {
    for (const store of [new MemoryStore(), new MemoryStore().withoutListBucket()]) {
      const pod = await newPod(store, { refreshAfterDays: 1e-12 });
      expect(await pod.hydrate()).toBe(true);
      await pod.write({ 'artifacts/a.txt': 'a', 'artifacts/b.txt': 'b' });
      expect((await pod.sync()).ok).toBe(true);
      store.lose(`${PREFIX}artifacts/a.txt`);
      expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
      expect(pod.log.text()).toContain('artifacts/a.txt was missing in S3 (expired or deleted): uploading the local copy again');
      expect(store.text(`${PREFIX}artifacts/a.txt`)).toBe('a');
    }
  });

  it('refreshes old objects by copying them onto themselves, oldest first and a bounded number per cycle', async () => {
    const store = new MemoryStore();
    const pod = await newPod(store, {}, 2);
    expect(await pod.hydrate()).toBe(true);
    await pod.write({ 'artifacts/a.txt': 'a', 'artifacts/b.txt': 'b', 'artifacts/c.txt': 'c' });
    expect((await pod.sync()).ok).toBe(true);
    const copies = () => store.calls.filter((call) => call.op === 'copyOnto').map((call) => call.key.slice(PREFIX.length));
    expect(copies()).toEqual([]);

    // Eight days on: every object is past REFRESH_AFTER_DAYS (7).
    const later = Date.now() + 8 * 86_400_000;
    for (const key of store.keys()) store.age(key, 8 * 86_400_000);
    const realNow = Date.now;
    Date.now = () => later;
    try {
      expect((await pod.sync()).ok).toBe(true);
      expect(copies()).toEqual(['artifacts/a.txt', 'artifacts/b.txt']);
      expect((await pod.sync()).ok).toBe(true);
      expect(copies()).toEqual(['artifacts/a.txt', 'artifacts/b.txt', 'artifacts/c.txt']);
    } finally {
      Date.now = realNow;
    }
  });

  it('past MAX_SYNC_SIZE skips the largest files, says so, and records the skip in metadata.json', async () => {
    const store = new MemoryStore();
    const pod = await newPod(store, { maxSyncSize: 10 });
    expect(await pod.hydrate()).toBe(true);
    await pod.write({ 'artifacts/small.txt': '12345', 'artifacts/big.txt': '1234567890' });
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1, skipped: 1 });
    expect(pod.log.text()).toContain('MAX_SYNC_SIZE (10 B) exceeded: 1 largest files (10 B) not synced');
    expect(store.keys(PREFIX)).toEqual(['artifacts/small.txt', 'metadata.json']);
    expect(JSON.parse(store.text(`${PREFIX}metadata.json`)!).skipped).toEqual([{ path: 'artifacts/big.txt', size: 10, reason: 'MAX_SYNC_SIZE' }]);
  });

  it('never uploads excluded directories', async () => {
    const store = new MemoryStore();
    const pod = await newPod(store);
    expect(await pod.hydrate()).toBe(true);
    await pod.write({ 'artifacts/app/node_modules/x/index.js': 'x', 'artifacts/app/main.py': 'print()', 'artifacts/__pycache__/m.pyc': 'c' });
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    expect(store.keys(PREFIX)).toEqual(['artifacts/app/main.py', 'metadata.json']);
  });
});
