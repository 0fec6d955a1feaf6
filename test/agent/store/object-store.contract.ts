import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStoreError, type ObjectRead, type ObjectStore, type StoreErrorKind } from '../../../src/agent/store/store.js';

/*
 * What every ObjectStore does, as hydrate, sync and the tools rely on it: run against the
 * in-memory store of the unit tier (object-store.contract.test.ts) and against the S3
 * adapter on MinIO (object-store.contract.it.test.ts), so the unit tier's store answers as
 * the real one does.
 */

export interface ContractStore {
  store: ObjectStore;
  close(): void;
}

const signal = new AbortController().signal;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function bodyOf(read: ObjectRead): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of read.body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function failure(promise: Promise<unknown>): Promise<StoreErrorKind | 'none' | 'not a StoreError'> {
  try {
    await promise;
    return 'none';
  } catch (error) {
    return isStoreError(error, 'not-found', 'access-denied', 'credentials', 'precondition-failed', 'invalid-range', 'other') ? error.kind : 'not a StoreError';
  }
}

function bytes(length: number): Buffer {
  const body = Buffer.alloc(length);
  for (let index = 0; index < length; index += 1) body[index] = (index * 7) % 251;
  return body;
}

export function objectStoreContract(name: string, open: () => Promise<ContractStore>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let subject: ContractStore;
    let store: ObjectStore;
    // Each test under a prefix of its own.
    const prefix = () => `contract-${randomBytes(4).toString('hex')}/`;

    beforeAll(async () => {
      subject = await open();
      store = subject.store;
    });
    afterAll(() => subject.close());

    describe('get and head', () => {
      it('reads a whole object back with its ETag, metadata, length and time', async () => {
        const key = `${prefix()}notes.md`;
        const body = bytes(5_000);
        const put = await store.put(key, body, { metadata: { mtime: '1700000000.250000', mode: '644' } }, signal);
        expect(put.sha256).toBe(sha256(body));
        const read = await store.get(key, {}, signal);
        expect(read.etag).toBe(put.etag);
        expect(read.metadata).toEqual({ mtime: '1700000000.250000', mode: '644' });
        expect(read.contentLength).toBe(body.length);
        expect(read.lastModified).toBeInstanceOf(Date);
        expect(Buffer.from(await read.bytes())).toEqual(body);
        expect(await bodyOf(await store.get(key, {}, signal))).toEqual(body);
      });

      it('reads the rest of an object from an offset while it has the ETag', async () => {
        const key = `${prefix()}big.bin`;
        const body = bytes(300_000);
        const { etag } = await store.put(key, body, {}, signal);
        const tail = await store.get(key, { from: { offset: 123_457, ifMatch: etag } }, signal);
        expect(tail.contentRange).toBe('bytes 123457-299999/300000');
        expect(tail.contentLength).toBe(300_000 - 123_457);
        expect(await bodyOf(tail)).toEqual(body.subarray(123_457));
        expect(await failure(store.get(key, { from: { offset: 10, ifMatch: '"0123456789abcdef0123456789abcdef"' } }, signal))).toBe('precondition-failed');
        expect(await failure(store.get(key, { from: { offset: 300_000, ifMatch: etag } }, signal))).toBe('invalid-range');
      });

      it('heads an object: size, ETag, metadata, time', async () => {
        const key = `${prefix()}a.txt`;
        const { etag } = await store.put(key, 'hello', { metadata: { mtime: '1.000000' } }, signal);
        const info = await store.head(key, signal);
        expect(info).toMatchObject({ size: 5, etag, metadata: { mtime: '1.000000' } });
        expect(info.lastModified).toBeInstanceOf(Date);
      });

      it('names a missing object not-found, whole, ranged, headed or copied', async () => {
        const key = `${prefix()}none`;
        expect(await failure(store.get(key, {}, signal))).toBe('not-found');
        expect(await failure(store.get(key, { from: { offset: 1, ifMatch: '"0123456789abcdef0123456789abcdef"' } }, signal))).toBe('not-found');
        expect(await failure(store.head(key, signal))).toBe('not-found');
        expect(await failure(store.copyOnto(key, { size: 1, etag: '"0123456789abcdef0123456789abcdef"', metadata: {}, headers: {} }, signal))).toBe('not-found');
      });
    });

    describe('put', () => {
      it('writes a string, a buffer, a stream of a given length and a file, each read back', async () => {
        const base = prefix();
        await store.put(`${base}s`, 'text', {}, signal);
        await store.put(`${base}empty`, '', {}, signal);
        await store.put(`${base}stream`, Readable.from([Buffer.from('ab'), Buffer.from('cd')]), { contentLength: 4 }, signal);
        const dir = await mkdtemp(path.join(tmpdir(), 'contract-'));
        try {
          const file = path.join(dir, 'file.bin');
          await writeFile(file, bytes(2 ** 20 + 5));
          // Cut at the size given: bytes past it are left out.
          const put = await store.put(`${base}file`, { file, size: 2 ** 20 }, {}, signal);
          expect(put.sha256).toBe(sha256(bytes(2 ** 20 + 5).subarray(0, 2 ** 20)));
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
        expect(Buffer.from(await (await store.get(`${base}s`, {}, signal)).bytes()).toString()).toBe('text');
        expect((await store.head(`${base}empty`, signal)).size).toBe(0);
        expect(Buffer.from(await (await store.get(`${base}stream`, {}, signal)).bytes()).toString()).toBe('abcd');
        expect(sha256(await bodyOf(await store.get(`${base}file`, {}, signal)))).toBe(sha256(bytes(2 ** 20)));
      });

      it('writes only a new object under If-None-Match: *', async () => {
        const key = `${prefix()}lease`;
        await store.put(key, 'first', { ifNoneMatch: '*' }, signal);
        expect(await failure(store.put(key, 'second', { ifNoneMatch: '*' }, signal))).toBe('precondition-failed');
        expect(Buffer.from(await (await store.get(key, {}, signal)).bytes()).toString()).toBe('first');
      });

      it('replaces an object under If-Match only while it has that ETag', async () => {
        const key = `${prefix()}lease`;
        const first = await store.put(key, 'first', {}, signal);
        const second = await store.put(key, 'second', { ifMatch: first.etag }, signal);
        expect(second.etag).not.toBe(first.etag);
        expect(await failure(store.put(key, 'third', { ifMatch: first.etag }, signal))).toBe('precondition-failed');
        expect(Buffer.from(await (await store.get(key, {}, signal)).bytes()).toString()).toBe('second');
      });

      it('uploads in parts, returning the SHA-256 of the bytes sent', async () => {
        const key = `${prefix()}large.tar`;
        const body = bytes(9 * 2 ** 20 + 123);
        const result = await store.putMultipart(key, Readable.from([body.subarray(0, 2 ** 20), body.subarray(2 ** 20)]), { metadata: { mtime: '2.000000' } }, signal);
        expect(result.sha256).toBe(sha256(body));
        const read = await store.get(key, {}, signal);
        expect(read.etag).toBe(result.etag);
        expect(read.metadata).toEqual({ mtime: '2.000000' });
        expect(sha256(await bodyOf(read))).toBe(sha256(body));
      });
    });

    describe('copy onto itself', () => {
      it('rewrites the object with the metadata and headers given, its bytes unchanged', async () => {
        const key = `${prefix()}kept.md`;
        await store.put(key, 'kept', { metadata: { mtime: '3.000000' } }, signal);
        const before = await store.head(key, signal);
        await store.copyOnto(key, { ...before, metadata: { mtime: '3.000000', mode: '600' } }, signal);
        const after = await store.head(key, signal);
        expect(after.metadata).toEqual({ mtime: '3.000000', mode: '600' });
        expect(after.headers.contentType).toBe(before.headers.contentType);
        expect(Buffer.from(await (await store.get(key, {}, signal)).bytes()).toString()).toBe('kept');
      });

      it('fails precondition-failed once the object has another ETag', async () => {
        const key = `${prefix()}changed.md`;
        await store.put(key, 'one', {}, signal);
        const before = await store.head(key, signal);
        await store.put(key, 'two', {}, signal);
        expect(await failure(store.copyOnto(key, before, signal))).toBe('precondition-failed');
      });
    });

    describe('copy to another key', () => {
      it('copies an object with its metadata and content type, the source unchanged; a missing source is not-found', async () => {
        const base = prefix();
        const source = await store.put(`${base}parent/report.md`, '# report', { metadata: { mtime: '4.000000' } }, signal);
        await store.copy(`${base}parent/report.md`, `${base}child/report.md`, signal);
        const copied = await store.get(`${base}child/report.md`, {}, signal);
        expect(Buffer.from(await copied.bytes()).toString()).toBe('# report');
        expect(copied.metadata).toEqual({ mtime: '4.000000' });
        expect((await store.head(`${base}child/report.md`, signal)).headers.contentType).toBe((await store.head(`${base}parent/report.md`, signal)).headers.contentType);
        expect((await store.head(`${base}parent/report.md`, signal)).etag).toBe(source.etag);
        expect(await failure(store.copy(`${base}parent/gone.md`, `${base}child/gone.md`, signal))).toBe('not-found');
      });
    });

    describe('delete', () => {
      it('deletes one object; a missing one is no failure', async () => {
        const key = `${prefix()}gone`;
        await store.put(key, 'x', {}, signal);
        await store.delete(key, signal);
        expect(await failure(store.get(key, {}, signal))).toBe('not-found');
        expect(await failure(store.delete(key, signal))).toBe('none');
      });

      it('deletes many, missing keys included, and names none failed', async () => {
        const base = prefix();
        for (const name of ['a', 'b & <c>', 'd']) await store.put(`${base}${name}`, name, {}, signal);
        expect(await store.deleteMany([`${base}a`, `${base}b & <c>`, `${base}never`], signal)).toEqual({ failed: new Set() });
        expect((await store.list(base, signal)).map((object) => object.key)).toEqual([`${base}d`]);
      });
    });

    describe('list', () => {
      it('lists the objects under a prefix, full keys with size and ETag, and nothing beside it', async () => {
        const base = prefix();
        const a = await store.put(`${base}p/a`, 'aa', {}, signal);
        const c = await store.put(`${base}p/b/c`, 'ccc', {}, signal);
        await store.put(`${base}pq/x`, 'x', {}, signal);
        expect(await store.list(`${base}p/`, signal)).toEqual([
          { key: `${base}p/a`, size: 2, etag: a.etag },
          { key: `${base}p/b/c`, size: 3, etag: c.etag },
        ]);
        expect(await store.list(`${base}none/`, signal)).toEqual([]);
      });

      it('lists past a page (1,005 objects)', async () => {
        const base = prefix();
        const keys = Array.from({ length: 1_005 }, (_, index) => `${base}${String(index).padStart(5, '0')}`);
        for (let start = 0; start < keys.length; start += 50) {
          await Promise.all(keys.slice(start, start + 50).map((key) => store.put(key, key, {}, signal)));
        }
        expect((await store.list(base, signal)).map((object) => object.key)).toEqual(keys);
      });
    });
  });
}
