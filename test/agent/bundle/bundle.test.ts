import { readdir, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLE_FILE_LIMIT, BUNDLE_KEY, bundleLength, entryHeader, entryLength, fillerHeader, parseEntryHeader, type BundleEntry } from '../../../src/agent/bundle/bundle-format.js';
import { bundleTimeLimitMs, writeBundle } from '../../../src/agent/bundle/bundle-writer.js';
import type { PutBody, PutOptions } from '../../../src/agent/store/store.js';
import { listRemote } from '../../../src/agent/state/remote.js';
import { captureLog } from '../support/helpers.js';
import { MEMORY_PREFIX, newMemoryPod, removeMemoryPods, type MemoryPod } from '../support/memory-pod.js';
import { MemoryStore } from '../support/memory-store.js';

// The restore bundle over the in-memory store: written by the final sync, used by hydrate
// only where it holds exactly the object, never trusted over S3.

const PREFIX = MEMORY_PREFIX;
const BUNDLE = PREFIX + BUNDLE_KEY;
const signal = new AbortController().signal;
afterEach(removeMemoryPods);
const newPod = (store: MemoryStore) => newMemoryPod(store, { hydrateTimeoutSeconds: 5 });

const SMALL = {
  '.claude/a.jsonl': 'first file\n',
  '.claude/projects/b.json': '{"b":1}',
  'artifacts/c.txt': 'c'.repeat(5000),
  'artifacts/empty': '',
};
const LARGE = Buffer.alloc(BUNDLE_FILE_LIMIT + 1, 7);

// A pod that ran and ended with its final sync (the bundle), and its files.
async function finishedPod(store: MemoryStore, files: Record<string, string | Buffer> = { ...SMALL, 'artifacts/large.bin': LARGE }) {
  const pod = await newPod(store);
  expect(await pod.hydrate()).toBe(true);
  await pod.write(files);
  expect(await pod.sync({ final: true })).toMatchObject({ ok: true });
  return pod;
}

// Object keys fetched per object by a hydrate (metadata.json and the bundle aside).
function perObjectGets(store: MemoryStore, from: number): string[] {
  return store.calls
    .slice(from)
    .filter((call) => call.op === 'get' && call.key !== BUNDLE && call.key !== `${PREFIX}metadata.json`)
    .map((call) => call.key.slice(PREFIX.length))
    .sort();
}

async function entriesOf(bundle: Buffer): Promise<Array<{ name: string; pax: unknown; body: Buffer }>> {
  const entries = [];
  const extract = tar.extract();
  Readable.from([bundle]).pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    entries.push({ name: entry.header.name, pax: entry.header.pax, body: Buffer.concat(chunks) });
  }
  return entries;
}

async function expectRestored(pod: MemoryPod, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, body] of Object.entries(files)) expect((await pod.read(rel)).equals(Buffer.from(body)), rel).toBe(true);
}

describe('the restore bundle', () => {
  it('is written by the final sync only: a tar of the small files with key, ETag, size, mtime, mode and SHA-256', async () => {
    const store = new MemoryStore();
    const pod = await newPod(store);
    expect(await pod.hydrate()).toBe(true);
    await pod.write({ ...SMALL, 'artifacts/large.bin': LARGE });
    expect(await pod.sync()).toMatchObject({ ok: true });
    expect(store.objects.has(BUNDLE)).toBe(false);

    expect(await pod.sync({ final: true })).toMatchObject({ ok: true });
    const entries = await entriesOf(store.objects.get(BUNDLE)!.body);
    expect(entries.map((entry) => entry.name).sort()).toEqual(Object.keys(SMALL).sort());
    for (const entry of entries) {
      expect(entry.body.equals(Buffer.from(SMALL[entry.name as keyof typeof SMALL]))).toBe(true);
      const parsed = parseEntryHeader({ name: entry.name, size: entry.body.length, type: 'file', pax: entry.pax } as never);
      expect(parsed?.etag).toBe(store.objects.get(PREFIX + entry.name)!.etag);
    }
    expect(pod.log.text()).toMatch(/Restore bundle written: 4 files/);
  });

  it('restores the small files from the bundle and the large ones per object, with their mtimes and modes', async () => {
    const store = new MemoryStore();
    await finishedPod(store);
    const next = await newPod(store);
    const from = store.calls.length;
    expect(await next.hydrate()).toBe(true);
    expect(perObjectGets(store, from)).toEqual(['artifacts/large.bin']);
    await expectRestored(next, { ...SMALL, 'artifacts/large.bin': LARGE });
    // A sync right after finds everything unchanged: mtimes and sizes are the recorded ones.
    expect(await next.sync()).toMatchObject({ ok: true, uploaded: 0, deleted: 0 });
  });

  it('uses no entry whose object changed or went since, and restores new objects per object', async () => {
    const store = new MemoryStore();
    const first = await finishedPod(store);
    // A later pod (crashed: no final sync) changed one file, deleted one, added one.
    const second = await newPod(store);
    expect(await second.hydrate()).toBe(true);
    await second.write({ '.claude/a.jsonl': 'changed since the bundle\n', 'artifacts/new.txt': 'new' });
    await unlink(path.join(second.settings.workspaceDir, 'artifacts/c.txt'));
    expect(await second.sync()).toMatchObject({ ok: true, uploaded: 2, deleted: 1 });
    void first;

    const third = await newPod(store);
    const from = store.calls.length;
    expect(await third.hydrate()).toBe(true);
    expect(perObjectGets(store, from)).toEqual(['.claude/a.jsonl', 'artifacts/large.bin', 'artifacts/new.txt']);
    await expectRestored(third, { '.claude/a.jsonl': 'changed since the bundle\n', 'artifacts/new.txt': 'new', 'artifacts/empty': '' });
    await expect(third.read('artifacts/c.txt')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  // Rule 9: the object no longer has the content the manifest names. Before, the object's
  // new bytes were restored and became the manifest's truth; now neither they nor the
  // bundle's stale entry are: the key is named and left as it is in S3.
  it('ignores an entry changed in S3 behind the agent (another ETag) without a manifest update, and restores no bytes the manifest does not name', async () => {
    const store = new MemoryStore();
    await finishedPod(store);
    await store.put(`${PREFIX}artifacts/c.txt`, 'C'.repeat(5000), {}, signal);
    const next = await newPod(store);
    expect(await next.hydrate()).toBe(true);
    await expect(next.read('artifacts/c.txt')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(next.log.text()).toMatch(/cannot restore artifacts\/c\.txt: content does not match the manifest/);
    expect(store.text(`${PREFIX}artifacts/c.txt`)).toBe('C'.repeat(5000));
  });

  it.each([
    ['a corrupt entry', (bundle: Buffer) => Buffer.from(bundle.toString('latin1').replace('first file', 'FIRST FILE'), 'latin1')],
    ['a truncated bundle', (bundle: Buffer) => bundle.subarray(0, Math.floor(bundle.length / 2))],
    ['garbage', () => Buffer.from('this is not a tar file at all'.repeat(40))],
    ['an empty object', () => Buffer.alloc(0)],
  ])('restores the right bytes from %s', async (_name, damage) => {
    const store = new MemoryStore();
    await finishedPod(store);
    const object = store.objects.get(BUNDLE)!;
    object.body = damage(object.body);
    const next = await newPod(store);
    expect(await next.hydrate()).toBe(true);
    await expectRestored(next, { ...SMALL, 'artifacts/large.bin': LARGE });
  });

  // Issue 21 case 3/4: under SSE-KMS an ETag is no MD5, so the writer could not tell a
  // pod's changed local bytes (same size and mtime as recorded) from the object, and
  // hydrate paired them with the object's current ETag: wrong bytes restored.
  it('under S3_SSE=aws:kms takes no local copy that differs from what the store confirmed', async () => {
    const store = new MemoryStore();
    const pod = await newMemoryPod(store, { hydrateTimeoutSeconds: 5, sse: 'aws:kms' });
    expect(await pod.hydrate()).toBe(true);
    await pod.write({ 'artifacts/c.txt': 'uploaded' });
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 1 });
    const file = path.join(pod.settings.workspaceDir, 'artifacts/c.txt');
    const { mtime } = await stat(file);
    await pod.write({ 'artifacts/c.txt': 'stale!!!' });
    await utimes(file, mtime, mtime);
    expect(await pod.sync({ final: true })).toMatchObject({ ok: true, uploaded: 0 });

    const next = await newPod(store);
    expect(await next.hydrate()).toBe(true);
    expect((await next.read('artifacts/c.txt')).toString()).toBe('uploaded');
  });

  it('warns about a corrupt entry and fetches that object', async () => {
    const store = new MemoryStore();
    await finishedPod(store);
    const object = store.objects.get(BUNDLE)!;
    object.body = Buffer.from(object.body.toString('latin1').replace('first file', 'FIRST FILE'), 'latin1');
    const next = await newPod(store);
    const from = store.calls.length;
    expect(await next.hydrate()).toBe(true);
    expect(perObjectGets(store, from)).toEqual(['.claude/a.jsonl', 'artifacts/large.bin']);
    expect(next.log.text()).toMatch(/1 corrupt entries/);
  });

  it('restores per object when the bundle is missing or denied', async () => {
    for (const lose of [(store: MemoryStore) => store.lose(BUNDLE), (store: MemoryStore) => store.refuse(BUNDLE)]) {
      const store = new MemoryStore();
      await finishedPod(store);
      lose(store);
      const next = await newPod(store);
      const from = store.calls.length;
      expect(await next.hydrate()).toBe(true);
      expect(perObjectGets(store, from)).toEqual([...Object.keys(SMALL), 'artifacts/large.bin'].sort());
      await expectRestored(next, SMALL);
    }
  });

  it('is not even asked for when the listing shows there is none', async () => {
    const store = new MemoryStore();
    await finishedPod(store);
    store.lose(BUNDLE);
    const next = await newPod(store);
    const from = store.calls.length;
    expect(await next.hydrate()).toBe(true);
    expect(store.calls.slice(from).filter((call) => call.key === BUNDLE)).toEqual([]);
    await expectRestored(next, SMALL);
  });

  it('restores names of 250 to 255 bytes from the bundle', async () => {
    const store = new MemoryStore();
    const names: Record<string, string> = {};
    for (const length of [250, 254, 255]) names[`artifacts/${'n'.repeat(length - 4)}.txt`] = `length ${length}`;
    names[`artifacts/${'é'.repeat(127)}x`] = 'two-byte characters, 255 bytes';
    await finishedPod(store, names);
    const next = await newPod(store);
    const from = store.calls.length;
    expect(await next.hydrate()).toBe(true);
    expect(perObjectGets(store, from)).toEqual([]);
    await expectRestored(next, names);
  });

  it('works without s3:ListBucket, by the manifest, and ignores entries the manifest no longer matches', async () => {
    const store = new MemoryStore().withoutListBucket();
    await finishedPod(store);
    const next = await newPod(store);
    let from = store.calls.length;
    expect(await next.hydrate()).toBe(true);
    expect(perObjectGets(store, from)).toEqual(['artifacts/large.bin']);
    await expectRestored(next, SMALL);

    await next.write({ 'artifacts/c.txt': 'rewritten by the next pod' });
    expect(await next.sync()).toMatchObject({ ok: true, uploaded: 1 });
    const third = await newPod(store);
    from = store.calls.length;
    expect(await third.hydrate()).toBe(true);
    expect(perObjectGets(store, from)).toEqual(['artifacts/c.txt', 'artifacts/large.bin']);
    expect((await third.read('artifacts/c.txt')).toString()).toBe('rewritten by the next pod');
  });

  it('is never synced, deleted or adopted as a user file, nor restored into the workspace', async () => {
    const store = new MemoryStore();
    const pod = await finishedPod(store);
    const bundle = store.objects.get(BUNDLE)!.body;
    // Periodic cycles with deletions allowed, and the adoption listing of a final sync.
    for (let cycle = 0; cycle < 11; cycle += 1) expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 0, deleted: 0 });
    expect(store.objects.get(BUNDLE)!.body.equals(bundle)).toBe(true);
    const metadata = JSON.parse(store.text(`${PREFIX}metadata.json`)!) as { manifest: Record<string, unknown> };
    expect(Object.keys(metadata.manifest).some((key) => key.startsWith('.session-storage'))).toBe(false);
    const listing = await listRemote({ store, prefix: PREFIX }, signal);
    expect(listing.kind === 'listed' && [...listing.sizes.keys()].some((key) => key.startsWith('.session-storage'))).toBe(false);

    const next = await newPod(store);
    expect(await next.hydrate()).toBe(true);
    expect(await readdir(next.settings.workspaceDir)).not.toContain('.session-storage');
  });

  it('gets half of what is left of the final sync budget, at most 30 s, and is skipped without time', async () => {
    expect(bundleTimeLimitMs(45_000, 5_000)).toBe(20_000);
    expect(bundleTimeLimitMs(120_000, 0)).toBe(30_000);
    expect(bundleTimeLimitMs(45_000, 46_000)).toBe(0);
    const store = new MemoryStore();
    const pod = await finishedPod(store);
    store.lose(BUNDLE);
    const log = captureLog();
    const context = { settings: pod.settings, target: { store, prefix: PREFIX }, log };
    expect(await writeBundle(context, new Map([['artifacts/c.txt', { size: 5000, mtimeMs: 1 }]]), signal, 0)).toBeUndefined();
    expect(store.objects.has(BUNDLE)).toBe(false);
    expect(log.text()).toMatch(/restore bundle not written \(no time left/);
  });

  it('gives up at its time limit without failing the final sync, and the data is up', async () => {
    const store = new MemoryStore();
    // A server that takes the bundle's bytes but never answers.
    const hanging = Object.assign(Object.create(store) as MemoryStore, {
      put: (key: string, body: PutBody, options: PutOptions, abort: AbortSignal) =>
        key === BUNDLE
          ? new Promise<void>((_resolve, reject) => abort.addEventListener('abort', () => reject(abort.reason), { once: true }))
          : store.put(key, body, options, abort),
    });
    const pod = await newPod(hanging);
    expect(await pod.hydrate()).toBe(true);
    await pod.write(SMALL);
    const context = { settings: pod.settings, target: { store: hanging, prefix: PREFIX }, log: pod.log };
    expect(await pod.sync()).toMatchObject({ ok: true, uploaded: 4 });
    const record = new Map(Object.entries((JSON.parse(store.text(`${PREFIX}metadata.json`)!) as { manifest: Record<string, { size: number; mtimeMs: number }> }).manifest));
    expect(await writeBundle(context, record, signal, 1_000)).toBeUndefined();
    expect(pod.log.text()).toMatch(/restore bundle not written \(it did not fit in 1\.0s\)/);
    expect(store.objects.has(BUNDLE)).toBe(false);
    for (const key of Object.keys(SMALL)) expect(store.objects.has(PREFIX + key)).toBe(true);
  });

  it('announces its length before the first file is read: each entry takes what tar-stream writes for it', async () => {
    const sizes = [0, 1, 511, 512, 513, 4096, BUNDLE_FILE_LIMIT];
    const entry = (index: number, key: string, etag?: string): BundleEntry => ({
      key,
      size: sizes[index % sizes.length]!,
      sha256: 'f'.repeat(64),
      mtimeMs: index % 5 === 0 ? 0 : 1_700_000_000_000 + index / 3,
      ...(etag === undefined ? {} : { etag }),
      ...(index % 3 === 0 ? {} : { mode: 0o600 + index }),
    });
    // Every name length, ASCII and UTF-8; then a name whose path record is at a digit
    // boundary (99 bytes without its length) with ETags of every length, so the records
    // end on each side of a block.
    const entries = Array.from({ length: 255 }, (_, index) => entry(index, (index % 2 ? 'é' : 'a').padEnd(index + 1, 'n'), index % 4 ? `"${index}"` : undefined));
    for (let length = 1; length <= 600; length += 1) entries.push(entry(length, 'n'.repeat(92), 'e'.repeat(length)));
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    const read = (async () => {
      for await (const chunk of pack) chunks.push(chunk as Buffer);
    })();
    for (const { sha256: _hash, ...facts } of entries) {
      const before = chunks.reduce((total, chunk) => total + chunk.length, 0);
      await new Promise<void>((resolve, reject) =>
        pack.entry(entryHeader({ ...facts, sha256: _hash }), Buffer.alloc(facts.size), (error) => (error ? reject(error) : resolve())),
      );
      await new Promise((resolve) => setImmediate(resolve));
      expect(chunks.reduce((total, chunk) => total + chunk.length, 0) - before, facts.key).toBe(entryLength(facts));
    }
    const filler = fillerHeader(3 * 512);
    pack.entry(filler, Buffer.alloc(filler.size));
    pack.finalize();
    await read;
    const lengths = entries.map(({ sha256: _hash, ...facts }) => entryLength(facts));
    expect(Buffer.concat(chunks).length).toBe(bundleLength([...lengths, 3 * 512]));
  });

  it('keeps the place of a file changed since its record with a stand-in hydrate skips', async () => {
    const store = new MemoryStore();
    const pod = await finishedPod(store, SMALL);
    store.lose(BUNDLE);
    // Rewritten after the record: another mtime, the same size.
    await pod.write({ 'artifacts/c.txt': 'd'.repeat(5000) });
    const record = new Map(Object.entries((JSON.parse(store.text(`${PREFIX}metadata.json`)!) as { manifest: Record<string, { size: number; mtimeMs: number }> }).manifest));
    const context = { settings: pod.settings, target: { store, prefix: PREFIX }, log: pod.log };
    expect(await writeBundle(context, record, signal, 10_000)).toMatchObject({ files: 3, truncated: false });
    const entries = await entriesOf(store.objects.get(BUNDLE)!.body);
    expect(entries.map((entry) => entry.name).sort()).toEqual(['.claude/a.jsonl', '.claude/projects/b.json', '.session-storage/left-out', 'artifacts/empty']);

    const next = await newPod(store);
    const from = store.calls.length;
    expect(await next.hydrate()).toBe(true);
    expect(perObjectGets(store, from)).toEqual(['artifacts/c.txt']);
    await expectRestored(next, SMALL);
    expect(next.log.text()).not.toMatch(/corrupt/);
  });

  it('closes early at its fill time and pads to the length it announced, a tar hydrate reads', async () => {
    const store = new MemoryStore();
    const files = Object.fromEntries(Array.from({ length: 40 }, (_, index) => [`artifacts/f${String(index).padStart(2, '0')}`, `file ${index} `.repeat(500)]));
    const pod = await finishedPod(store, files);
    store.lose(BUNDLE);
    // A server that starts reading the body only after the fill time (60% of 3 s).
    const slow = Object.assign(Object.create(store) as MemoryStore, {
      put: async (key: string, body: PutBody, options: PutOptions, abort: AbortSignal) => {
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        return store.put(key, body, options, abort);
      },
    });
    const record = new Map(Object.entries((JSON.parse(store.text(`${PREFIX}metadata.json`)!) as { manifest: Record<string, { size: number; mtimeMs: number }> }).manifest));
    const context = { settings: pod.settings, target: { store: slow, prefix: PREFIX }, log: pod.log };
    const written = await writeBundle(context, record, signal, 3_000);
    expect(written).toMatchObject({ truncated: true });
    expect(written!.files).toBeLessThan(40);
    const entries = await entriesOf(store.objects.get(BUNDLE)!.body);
    expect(entries).toHaveLength(written!.files);

    const next = await newPod(store);
    const from = store.calls.length;
    expect(await next.hydrate()).toBe(true);
    expect(perObjectGets(store, from)).toHaveLength(40 - written!.files);
    await expectRestored(next, files);
  });

  it('skips entries it cannot attribute: other entry types and headers without its records', () => {
    expect(parseEntryHeader({ name: 'x', size: 1, type: 'symlink', pax: {} } as never)).toBeUndefined();
    expect(parseEntryHeader({ name: 'x', size: 1, type: 'file', pax: null } as never)).toBeUndefined();
    const header = entryHeader({ key: 'a/b', size: 1, sha256: 'a'.repeat(64), mtimeMs: 1_700_000_000_123.5, mode: 0o640, etag: '"e"' });
    expect(parseEntryHeader({ ...header, type: 'file' } as never)).toEqual({
      key: 'a/b',
      size: 1,
      sha256: 'a'.repeat(64),
      mtimeMs: 1_700_000_000_123.5,
      mode: 0o640,
      etag: '"e"',
    });
  });
});
