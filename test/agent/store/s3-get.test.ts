import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3Endpoint } from '../../../src/agent/store/s3-endpoint.js';
import { ObjectReader } from '../../../src/agent/store/s3-get.js';
import { failureOf, StoreError } from '../../../src/agent/store/store.js';

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

async function caught(promise: Promise<unknown>): Promise<StoreError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a failure');
}

const page = (contents: string, next?: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name>` +
  `<IsTruncated>${next === undefined ? 'false' : 'true'}</IsTruncated>${next === undefined ? '' : `<NextContinuationToken>${next}</NextContinuationToken>`}${contents}</ListBucketResult>`;
const item = (key: string, size: number) => `<Contents><Key>${key}</Key><ETag>&quot;e${size}&quot;</ETag><Size>${size}</Size></Contents>`;

// What the lean reader sends and how it reads S3's answers, against a server that records
// each request and answers with what is queued for it.
describe('GET, HEAD and list requests (s3-get.ts)', () => {
  let server: Server;
  let s3: S3Endpoint;
  let reader: ObjectReader;
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];
  const answers: Answer[] = [];
  const signal = new AbortController().signal;

  beforeAll(async () => {
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
        const answer = answers.shift() ?? { status: 200, body: '' };
        response.writeHead(answer.status, answer.headers);
        response.end(request.method === 'HEAD' ? undefined : answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    s3 = new S3Endpoint({ endpoint, region: 'eu-west-1', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', bucket: 'bucket' }, 2);
    reader = new ObjectReader(s3);
  });
  afterAll(() => {
    s3.close();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    seen.length = 0;
    answers.length = 0;
  });

  it('follows continuation tokens and decodes XML entities in keys', async () => {
    answers.push(
      { status: 200, body: page(item('ns/a &amp; b &lt;1&gt;', 1) + item('ns/&#x1F600; 007', 2), 'token/+=?&amp;') },
      { status: 200, body: page(item('ns/&amp;lt;literal', 3)) },
    );
    expect(await reader.list('ns/ x&', signal)).toEqual([
      { key: 'ns/a & b <1>', size: 1, etag: '"e1"' },
      { key: 'ns/😀 007', size: 2, etag: '"e2"' },
      { key: 'ns/&lt;literal', size: 3, etag: '"e3"' },
    ]);
    expect(seen.map((request) => request.url)).toEqual([
      '/bucket/?list-type=2&prefix=ns%2F%20x%26',
      '/bucket/?list-type=2&prefix=ns%2F%20x%26&continuation-token=token%2F%2B%3D%3F%26',
    ]);
    expect(seen[1]?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
  });

  it('reads a single-object page as a list', async () => {
    answers.push({ status: 200, body: page(item('true', 5)) });
    expect(await reader.list('', signal)).toEqual([{ key: 'true', size: 5, etag: '"e5"' }]);
  });

  it('asks for the rest of an object only while it has the ETag, signed', async () => {
    answers.push({ status: 206, headers: { 'content-range': 'bytes 4-9/10', 'content-length': '6', etag: '"e"' }, body: 'abcdef' });
    const read = await reader.get('ns/a b/c', { from: { offset: 4, ifMatch: '"e"' } }, signal);
    expect(Buffer.from(await read.bytes()).toString()).toBe('abcdef');
    expect(read).toMatchObject({ contentRange: 'bytes 4-9/10', contentLength: 6, etag: '"e"', metadata: {} });
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/bucket/ns/a%20b/c', headers: { range: 'bytes=4-', 'if-match': '"e"' } });
    expect(seen[0]?.headers.authorization).toMatch(/SignedHeaders=[^,]*if-match/);
  });

  it('reads metadata and time from the headers', async () => {
    answers.push({
      status: 200,
      headers: { 'x-amz-meta-mtime': '1700000000.250000', 'x-amz-meta-mode': '644', 'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT', 'content-length': '2', etag: '"e"' },
      body: 'hi',
    });
    const read = await reader.get('k', {}, signal);
    expect(read.metadata).toEqual({ mtime: '1700000000.250000', mode: '644' });
    expect(read.lastModified).toEqual(new Date('2023-11-14T22:13:20Z'));
    read.discard();
  });

  it.each([
    [404, '<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>', { kind: 'not-found', failure: 'error' }],
    [403, '<Error><Code>AccessDenied</Code><Message>no</Message></Error>', { kind: 'access-denied', failure: 'access denied' }],
    [403, '<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>', { kind: 'credentials', failure: 'access denied' }],
    [404, '<Error><Code>NoSuchBucket</Code><Message>no</Message></Error>', { kind: 'other', failure: 'bucket not found' }],
    [412, '<Error><Code>PreconditionFailed</Code><Message>changed</Message></Error>', { kind: 'precondition-failed', failure: 'error' }],
    [416, '<Error><Code>InvalidRange</Code><Message>past</Message></Error>', { kind: 'invalid-range', failure: 'error' }],
    [403, '<html>denied by a proxy</html>', { kind: 'other', failure: 'access denied' }],
  ])('a GET answered %i %s fails as the SDK adapter did', async (status, body, shape) => {
    answers.push({ status, body });
    const error = await caught(reader.get('k', {}, signal));
    expect({ kind: error.kind, failure: failureOf(error).kind }).toEqual(shape);
  });

  it.each([
    [404, { kind: 'not-found', failure: 'error' }],
    // No body to carry a code: only the operator's words say "access denied".
    [403, { kind: 'other', failure: 'access denied' }],
  ])('a HEAD answered %i fails as the SDK adapter did', async (status, shape) => {
    answers.push({ status });
    const error = await caught(reader.head('k', signal));
    expect({ kind: error.kind, failure: failureOf(error).kind }).toEqual(shape);
  });

  it('tries a server error once more, and names the second', async () => {
    answers.push({ status: 503, body: '<Error><Code>SlowDown</Code><Message>busy</Message></Error>' }, { status: 200, headers: { 'content-length': '2', etag: '"e"' }, body: 'ok' });
    expect(Buffer.from(await (await reader.get('k', {}, signal)).bytes()).toString()).toBe('ok');
    answers.push({ status: 500, body: '<Error><Code>InternalError</Code><Message>one</Message></Error>' }, { status: 500, body: '<Error><Code>InternalError</Code><Message>two</Message></Error>' });
    const error = await caught(reader.get('k', {}, signal));
    expect(failureOf(error)).toEqual({ kind: 'server error', detail: 'two' });
    expect(seen).toHaveLength(4);
  });
});
