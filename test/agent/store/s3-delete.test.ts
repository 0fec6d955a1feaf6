import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3Endpoint } from '../../../src/agent/store/s3-endpoint.js';
import { ObjectDeleter } from '../../../src/agent/store/s3-delete.js';
import { failureOf, StoreError } from '../../../src/agent/store/store.js';
import { caught } from '../support/helpers.js';

interface Answer {
  status: number;
  body?: string;
}

const result = (inner: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${inner}</DeleteResult>`;
const deleted = (key: string) => `<Deleted><Key>${key}</Key></Deleted>`;

// What the lean deletes send and how they read S3's answers, against a server that records
// each request and answers with what is queued for it.
describe('DeleteObject and DeleteObjects requests (s3-delete.ts)', () => {
  let server: Server;
  let endpoint: string;
  const endpoints: S3Endpoint[] = [];
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];
  const answers: Answer[] = [];
  const signal = new AbortController().signal;
  const deleter = () => {
    const s3 = new S3Endpoint({ endpoint, region: 'eu-west-1', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', bucket: 'bucket' }, 2);
    endpoints.push(s3);
    return new ObjectDeleter(s3);
  };

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
        const answer = answers.shift() ?? { status: 204 };
        response.writeHead(answer.status).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    for (const s3 of endpoints) s3.close();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    seen.length = 0;
    answers.length = 0;
  });

  it('sends the keys escaped, with the body\'s Content-MD5 and SHA-256 signed, and reads the keys deleted', async () => {
    answers.push({ status: 200, body: result(deleted('ns/a &amp; b &lt;1&gt;') + deleted('ns/line&#xA;break') + deleted('007')) });
    const keys = ['ns/a & b <1>', 'ns/line\nbreak', '007'];
    expect(await deleter().deleteMany(keys, signal)).toEqual({ failed: new Set() });
    const [request] = seen;
    expect(request).toMatchObject({ method: 'POST', url: '/bucket/?delete=' });
    expect(request?.body).toContain('<Object><Key>ns/a &amp; b &lt;1&gt;</Key></Object><Object><Key>ns/line&#x0A;break</Key></Object><Object><Key>007</Key></Object><Quiet>false</Quiet>');
    expect(request?.headers['content-md5']).toBe(createHash('md5').update(request?.body ?? '').digest('base64'));
    expect(request?.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(request?.body ?? '').digest('hex'));
    expect(request?.headers.authorization).toMatch(/SignedHeaders=content-length;content-md5;content-type;host;x-amz-content-sha256;x-amz-date/);
  });

  it('counts a key as deleted only where the answer names it so', async () => {
    answers.push({ status: 200, body: result(deleted('a') + '<Error><Key>b</Key><Code>AccessDenied</Code><Message>no</Message></Error>') });
    expect(await deleter().deleteMany(['a', 'b', 'c'], signal)).toEqual({ failed: new Set(['b', 'c']) });
  });

  it('sends a thousand keys per request', async () => {
    const keys = Array.from({ length: 1_001 }, (_, index) => `k${index}`);
    answers.push({ status: 200, body: result(keys.slice(0, 1000).map(deleted).join('')) }, { status: 200, body: result(deleted('k1000')) });
    expect(await deleter().deleteMany(keys, signal)).toEqual({ failed: new Set() });
    expect(seen.map((request) => request.body.split('<Object>').length - 1)).toEqual([1000, 1]);
  });

  it('fails a 200 that is not a DeleteResult: nothing is deleted (rule 10)', async () => {
    answers.push({ status: 200, body: '<html>maintenance</html>' });
    const error = await caught(deleter().deleteMany(['a'], signal));
    expect(error).toBeInstanceOf(StoreError);
    expect(failureOf(error)).toMatchObject({ kind: 'server error' });
    expect(failureOf(error).detail).toMatch(/not an S3 answer: DeleteObjects of 1 key: HTTP 200 without a DeleteResult/);
  });

  it('deletes one key at a time where multi-object delete is not implemented, and stays there', async () => {
    const once = deleter();
    answers.push({ status: 501, body: '<Error><Code>NotImplemented</Code><Message>no</Message></Error>' }, { status: 204 }, { status: 403, body: '<Error><Code>AccessDenied</Code><Message>no</Message></Error>' });
    expect(await once.deleteMany(['a b', 'c'], signal)).toEqual({ failed: new Set(['c']) });
    expect(seen.map((request) => `${request.method} ${request.url}`)).toEqual(['POST /bucket/?delete=', 'DELETE /bucket/a%20b', 'DELETE /bucket/c']);
    seen.length = 0;
    expect(await once.deleteMany(['d'], signal)).toEqual({ failed: new Set() });
    expect(seen.map((request) => `${request.method} ${request.url}`)).toEqual(['DELETE /bucket/d']);
  });

  it('ends single deletes at a server that fails as a whole', async () => {
    const once = deleter();
    answers.push({ status: 501 }, { status: 500 }, { status: 500 });
    const error = await caught(once.deleteMany(['a'], signal));
    expect(failureOf(error).kind).toBe('server error');
  });

  it('tries a DeleteObjects once more after a server error', async () => {
    answers.push({ status: 503, body: '<Error><Code>SlowDown</Code><Message>busy</Message></Error>' }, { status: 200, body: result(deleted('a')) });
    expect(await deleter().deleteMany(['a'], signal)).toEqual({ failed: new Set() });
    expect(seen).toHaveLength(2);
    expect(seen[0]?.body).toBe(seen[1]?.body);
  });

  it('names a refused DeleteObject as a StoreError', async () => {
    answers.push({ status: 403, body: '<Error><Code>AccessDenied</Code><Message>denied</Message></Error>' });
    const error = await caught(deleter().delete('k', signal));
    expect(error).toMatchObject({ kind: 'access-denied', failure: { kind: 'access denied', detail: 'denied' } });
    expect(seen[0]).toMatchObject({ method: 'DELETE', url: '/bucket/k' });
  });
});
