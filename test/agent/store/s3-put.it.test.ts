import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Endpoint } from '../../../src/agent/store/s3-endpoint.js';
import { ObjectPut, type PutSettings } from '../../../src/agent/store/s3-put.js';
import { StoreError, failureOf, isStoreError } from '../../../src/agent/store/store.js';
import { createBucket, rootClient } from '../../support/minio.js';
import { caught } from '../support/helpers.js';

const minio = inject('minio');
const signal = new AbortController().signal;

function settingsFor(bucket: string, overrides: Partial<PutSettings> = {}): PutSettings {
  return {
    endpoint: minio.endpoint,
    region: minio.region,
    accessKeyId: minio.accessKey,
    secretAccessKey: minio.secretKey,
    bucket,
    ...overrides,
  };
}

describe('PutObject without the SDK (s3-put.ts)', () => {
  let bucket: string;
  let root: S3Client;
  const endpoints: S3Endpoint[] = [];
  const putter = (settings: PutSettings) => {
    const endpoint = new S3Endpoint(settings, 4);
    endpoints.push(endpoint);
    return new ObjectPut(endpoint, settings);
  };

  beforeAll(async () => {
    bucket = await createBucket(minio, 'put');
    root = rootClient(minio);
  });
  afterAll(() => {
    root.destroy();
    for (const endpoint of endpoints) endpoint.close();
  });

  it.each([
    ['a plain name', 'ns/s/artifacts/report.md'],
    ['spaces, plus and percent', 'ns/s/artifacts/a b+c%20d.txt'],
    ['reserved and sub-delimiters', "ns/s/artifacts/x!'()*&=;,@$:[].json"],
    ['non-ASCII', 'ns/s/artifacts/résumé ‛E9 日本.md'],
  ])('writes a buffer under %s with its Content-Type and metadata', async (_, key) => {
    await putter(settingsFor(bucket)).put(key, Buffer.from('hello'), { metadata: { mtime: '1700000000.250000', mode: '644' } }, signal);
    const head = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(5);
    expect(head.Metadata).toEqual({ mtime: '1700000000.250000', mode: '644' });
    expect(head.ContentType).toBe(key.endsWith('.md') ? 'text/markdown; charset=utf-8' : key.endsWith('.json') ? 'application/json' : 'text/plain; charset=utf-8');
  });

  it('streams a body of the given length', async () => {
    const body = Readable.from([Buffer.alloc(70_000, 'a'), Buffer.alloc(30_000, 'b')]);
    await putter(settingsFor(bucket)).put('ns/s/big.bin', body, { contentLength: 100_000 }, signal);
    const object = await root.send(new GetObjectCommand({ Bucket: bucket, Key: 'ns/s/big.bin' }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    expect(bytes.length).toBe(100_000);
    expect(bytes.subarray(69_999, 70_001).toString()).toBe('ab');
  });

  it('writes an empty string', async () => {
    await putter(settingsFor(bucket)).put('ns/s/empty', '', {}, signal);
    const head = await root.send(new HeadObjectCommand({ Bucket: bucket, Key: 'ns/s/empty' }));
    expect(head.ContentLength).toBe(0);
  });

  it('a file read error stays the file\'s error, not the store\'s', async () => {
    const failing = new Readable({
      read() {
        this.destroy(Object.assign(new Error('EACCES: permission denied, open /x'), { code: 'EACCES', syscall: 'open', path: '/x' }));
      },
    });
    const error = await caught(putter(settingsFor(bucket)).put('ns/s/denied', failing, { contentLength: 10 }, signal));
    expect(error).not.toBeInstanceOf(StoreError);
    expect((error as NodeJS.ErrnoException).code).toBe('EACCES');
  });

  it('names a missing bucket, rejected keys and a refused connection as the SDK adapter does', async () => {
    const missing = await caught(putter(settingsFor(`${bucket}-missing`)).put('k', 'x', {}, signal));
    expect(failureOf(missing).kind).toBe('bucket not found');

    const badKeys = await caught(putter(settingsFor(bucket, { secretAccessKey: 'wrong-secret-key' })).put('k', 'x', {}, signal));
    expect(isStoreError(badKeys, 'credentials')).toBe(true);
    expect(failureOf(badKeys).kind).toBe('access denied');

    const refused = await caught(putter(settingsFor(bucket, { endpoint: 'http://127.0.0.1:9' })).put('k', 'x', {}, signal));
    expect(failureOf(refused).kind).toBe('connection refused');
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    const endless = new Readable({ read() {} });
    const put = putter(settingsFor(bucket)).put('ns/s/never', endless, { contentLength: 1_000 }, controller.signal);
    setTimeout(() => controller.abort(), 50);
    const error = await caught(put);
    expect(((error as StoreError).cause as Error).name).toBe('AbortError');
  });
});
