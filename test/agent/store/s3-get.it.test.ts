import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Endpoint, type EndpointSettings } from '../../../src/agent/store/s3-endpoint.js';
import { ObjectReader } from '../../../src/agent/store/s3-get.js';
import { failureOf, StoreError, type ObjectRead } from '../../../src/agent/store/store.js';
import { startAwsSemanticsProxy, type AwsSemanticsProxy } from '../../support/aws-semantics-proxy.js';
import { addUser, createBucket, rootClient } from '../../support/minio.js';
import { perProjectPolicy } from '../../support/policies.js';
import { caught } from '../support/helpers.js';
import { SdkReader, sdkClientFor } from '../support/sdk-reader.js';

const minio = inject('minio');
const signal = new AbortController().signal;

// Names a session can hold that S3's XML and URL encodings treat specially.
const ODD_NAMES = [
  'plain.txt',
  'a b  c.md',
  ' leading and trailing ',
  'amp & lt < gt > quot " apos \'.txt',
  '&amp;lt;already-escaped&gt;',
  'plus+percent%20hash#question?.txt',
  'résumé 日本語 😀.md',
  'tab\there',
  '007',
  'true',
  'x'.repeat(250),
  'y'.repeat(255),
  `${'é'.repeat(127)}z`,
  'dots/../up',
  'dots/./here',
  '..dotdot',
  'trailing-dot.',
];

function settingsFor(bucket: string, overrides: Partial<EndpointSettings> = {}): EndpointSettings {
  return { endpoint: minio.endpoint, region: minio.region, accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey, bucket, ...overrides };
}

function shapeOf(error: unknown) {
  expect(error).toBeInstanceOf(StoreError);
  return { kind: (error as StoreError).kind, failure: failureOf(error).kind };
}

async function readAll(read: ObjectRead): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of read.body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

// Each read is compared with the SDK's answer to the same request, mapped as the adapter
// maps failures: the lean path must restore exactly what the SDK did, and fail with the
// same words.
describe('GET, HEAD and list without the SDK (s3-get.ts)', () => {
  let bucket: string;
  let root: S3Client;
  let sdkClient: S3Client;
  let sdk: SdkReader;
  const endpoints: S3Endpoint[] = [];
  const reader = (settings: EndpointSettings) => {
    const endpoint = new S3Endpoint(settings, 8);
    endpoints.push(endpoint);
    return new ObjectReader(endpoint);
  };
  const stored: string[] = [];

  beforeAll(async () => {
    bucket = await createBucket(minio, 'get');
    root = rootClient(minio);
    sdkClient = sdkClientFor(settingsFor(bucket), 8);
    sdk = new SdkReader(sdkClient, bucket);
    for (const name of ODD_NAMES) {
      const key = `ns/odd/${name}`;
      try {
        await root.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `body of ${name}`, Metadata: { mtime: '1700000000.500000', mode: '640' } }));
        stored.push(key);
      } catch {
        // A name the server refuses (MinIO: some `..` forms) cannot be in a session either.
      }
    }
    const many = Array.from({ length: 1_005 }, (_, index) => `ns/many/${String(index).padStart(5, '0')} & <${index}>`);
    for (let start = 0; start < many.length; start += 50) {
      await Promise.all(many.slice(start, start + 50).map((key) => root.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }))));
    }
  }, 120_000);
  afterAll(() => {
    root.destroy();
    sdkClient.destroy();
    for (const endpoint of endpoints) endpoint.close();
  });

  it('stores most of the odd names (the parity below would prove little otherwise)', () => {
    expect(stored.length).toBeGreaterThan(ODD_NAMES.length - 4);
  });

  it('lists odd names exactly as the SDK does', async () => {
    const lean = await reader(settingsFor(bucket)).list('ns/odd/', signal);
    expect(lean).toEqual(await sdk.list('ns/odd/', signal));
    expect(lean.map((object) => object.key).sort()).toEqual([...stored].sort());
    for (const object of lean) expect(object.etag).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it('lists more than one page (1,005 keys) exactly as the SDK does', async () => {
    const lean = await reader(settingsFor(bucket)).list('ns/many/', signal);
    expect(lean).toHaveLength(1_005);
    expect(lean).toEqual(await sdk.list('ns/many/', signal));
  });

  it('reads every odd name with its bytes, ETag, metadata and time as the SDK does', async () => {
    const lean = reader(settingsFor(bucket));
    for (const key of stored) {
      const [mine, theirs] = [await lean.get(key, {}, signal), await sdk.get(key, {}, signal)];
      expect(Buffer.from(await mine.bytes()).toString()).toBe(Buffer.from(await theirs.bytes()).toString());
      expect({ ...mine, body: 0, bytes: 0, discard: 0 }).toEqual({ ...theirs, body: 0, bytes: 0, discard: 0 });
      expect(mine.metadata).toEqual({ mtime: '1700000000.500000', mode: '640' });
      expect(await lean.head(key, signal)).toEqual(await sdk.head(key, signal));
    }
  });

  it('resumes a read from an offset while the ETag matches', async () => {
    const key = 'ns/range/big.bin';
    const body = Buffer.alloc(300_000);
    for (let index = 0; index < body.length; index += 1) body[index] = index % 251;
    await root.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    const lean = reader(settingsFor(bucket));
    const whole = await lean.get(key, {}, signal);
    expect(await readAll(whole)).toEqual(body);
    const tail = await lean.get(key, { from: { offset: 123_457, ifMatch: whole.etag! } }, signal);
    expect(tail.contentRange).toBe(`bytes 123457-299999/300000`);
    expect(tail.contentLength).toBe(300_000 - 123_457);
    expect(await readAll(tail)).toEqual(body.subarray(123_457));

    const changed = await caught(lean.get(key, { from: { offset: 10, ifMatch: '"0123456789abcdef0123456789abcdef"' } }, signal));
    expect(shapeOf(changed)).toEqual(shapeOf(await caught(sdk.get(key, { from: { offset: 10, ifMatch: '"0123456789abcdef0123456789abcdef"' } }, signal))));
    expect(shapeOf(changed).kind).toBe('precondition-failed');
    const pastEnd = await caught(lean.get(key, { from: { offset: 300_000, ifMatch: whole.etag! } }, signal));
    expect(shapeOf(pastEnd)).toEqual(shapeOf(await caught(sdk.get(key, { from: { offset: 300_000, ifMatch: whole.etag! } }, signal))));
    expect(shapeOf(pastEnd).kind).toBe('invalid-range');
  });

  it('fails a missing key, a missing bucket, rejected keys and a dead endpoint with the SDK adapter\'s words', async () => {
    const lean = reader(settingsFor(bucket));
    expect(shapeOf(await caught(lean.get('ns/none', {}, signal)))).toEqual(shapeOf(await caught(sdk.get('ns/none', {}, signal))));
    expect(shapeOf(await caught(lean.get('ns/none', {}, signal))).kind).toBe('not-found');
    expect(shapeOf(await caught(lean.head('ns/none', signal)))).toEqual(shapeOf(await caught(sdk.head('ns/none', signal))));

    const missingBucket = reader(settingsFor(`${bucket}-missing`));
    expect(shapeOf(await caught(missingBucket.list('ns/', signal)))).toEqual({ kind: 'other', failure: 'bucket not found' });
    expect(shapeOf(await caught(missingBucket.get('ns/k', {}, signal))).failure).toBe('bucket not found');

    const badKeys = reader(settingsFor(bucket, { secretAccessKey: 'wrong-secret-key' }));
    expect(shapeOf(await caught(badKeys.get('ns/odd/plain.txt', {}, signal)))).toEqual({ kind: 'credentials', failure: 'access denied' });
    expect(shapeOf(await caught(badKeys.list('ns/', signal)))).toEqual({ kind: 'credentials', failure: 'access denied' });

    const dead = reader(settingsFor(bucket, { endpoint: 'http://127.0.0.1:9' }));
    expect(shapeOf(await caught(dead.get('k', {}, signal))).failure).toBe('connection refused');
    expect(shapeOf(await caught(dead.list('ns/', signal))).failure).toBe('connection refused');
  });

  describe('a caller without s3:ListBucket, on AWS', () => {
    let proxy: AwsSemanticsProxy;
    let credentials: { accessKey: string; secretKey: string };
    beforeAll(async () => {
      proxy = await startAwsSemanticsProxy(minio.endpoint);
      credentials = await addUser(minio, perProjectPolicy(bucket));
      proxy.withoutList.add(credentials.accessKey);
    });
    afterAll(() => proxy.close());

    it('gets 403 for a missing key, classified as the SDK adapter classifies it', async () => {
      const settings = settingsFor(bucket, { endpoint: proxy.endpoint, accessKeyId: credentials.accessKey, secretAccessKey: credentials.secretKey });
      const sdkDenied = sdkClientFor(settings, 2);
      const theirs = new SdkReader(sdkDenied, bucket);
      try {
        const lean = reader(settings);
        const get = await caught(lean.get('project-a/none/metadata.json', {}, signal));
        expect(shapeOf(get)).toEqual({ kind: 'access-denied', failure: 'access denied' });
        expect(shapeOf(get)).toEqual(shapeOf(await caught(theirs.get('project-a/none/metadata.json', {}, signal))));
        const head = await caught(lean.head('project-a/none/metadata.json', signal));
        expect(shapeOf(head)).toEqual(shapeOf(await caught(theirs.head('project-a/none/metadata.json', signal))));
      } finally {
        sdkDenied.destroy();
      }
    });
  });
});
