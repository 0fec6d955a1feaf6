import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../../src/agent/settings.js';
import { contentTypeFor } from '../../../src/agent/store/content-type.js';
import { AgentStore } from '../../../src/agent/store/s3-store.js';

// What the adapter's writes send, both clients' (PutObject lean, multipart and copy through
// the SDK), against a server that records each request and answers it as S3 would. MinIO
// without a KMS refuses SSE headers, so the integration tier cannot show them.
interface Seen {
  command: string;
  key: string;
  headers: IncomingHttpHeaders;
}

function operationOf(method: string, url: URL, headers: IncomingHttpHeaders): string {
  if (method === 'POST' && url.searchParams.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && url.searchParams.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'PUT' && url.searchParams.has('partNumber')) return 'UploadPart';
  if (method === 'PUT' && headers['x-amz-copy-source'] !== undefined) return 'CopyObject';
  return method === 'PUT' ? 'PutObject' : `${method} ${url.search}`;
}

const ANSWERS: Record<string, { headers?: Record<string, string>; body?: string }> = {
  CreateMultipartUpload: { body: '<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><UploadId>upload-1</UploadId></InitiateMultipartUploadResult>' },
  UploadPart: { headers: { ETag: '"part"' } },
  // What S3 names every stored object with (a 2xx without one is not an S3 answer).
  PutObject: { headers: { ETag: '"stored"' } },
  CompleteMultipartUpload: { body: '<CompleteMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><ETag>"whole-2"</ETag></CompleteMultipartUploadResult>' },
  CopyObject: { body: '<CopyObjectResult><ETag>"copied"</ETag><LastModified>2024-01-01T00:00:00.000Z</LastModified></CopyObjectResult>' },
};

const signal = new AbortController().signal;
const info = { size: 3, etag: '"e"', metadata: { mtime: '1.000000' }, headers: { contentType: 'text/markdown; charset=utf-8' } };

describe('S3 adapter requests', () => {
  let server: Server;
  let endpoint: string;
  let sent: Seen[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        const url = new URL(request.url ?? '/', 'http://localhost');
        const command = operationOf(request.method ?? '', url, request.headers);
        sent.push({ command, key: decodeURIComponent(url.pathname.replace(/^\/bucket\//, '')), headers: request.headers });
        const answer = ANSWERS[command] ?? {};
        response.writeHead(200, answer.headers).end(answer.body ?? '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function everyWrite(encryption: Record<string, string>): Promise<Seen[]> {
    sent = [];
    const store = new AgentStore(
      loadSettings({ S3_ENDPOINT: endpoint, S3_BUCKET: 'bucket', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', NAMESPACE: 'p', SESSION_NAME: 's', ...encryption }),
      2,
    );
    try {
      await store.put('p/s/artifacts/a.md', 'abc', { metadata: { mtime: '1.000000' } }, signal);
      await store.put('p/s/artifacts/b.bin', Readable.from([Buffer.from('abc')]), { contentLength: 3 }, signal);
      await store.putMultipart('p/s/artifacts/big.tar', Readable.from([Buffer.alloc(9 * 2 ** 20)]), {}, signal);
      await store.copyOnto('p/s/artifacts/a.md', info, signal);
    } finally {
      store.close();
    }
    return sent;
  }

  it.each([
    ['AES256', { S3_SSE: 'AES256' }, { 'x-amz-server-side-encryption': 'AES256' }],
    [
      'aws:kms with a key',
      { S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:1:key/k' },
      { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-west-1:1:key/k' },
    ],
    ['aws:kms, the bucket key', { S3_SSE: 'aws:kms' }, { 'x-amz-server-side-encryption': 'aws:kms' }],
  ])('S3_SSE=%s: every PutObject, CreateMultipartUpload and CopyObject asks for it', async (_, encryption, headers) => {
    const requests = await everyWrite(encryption);
    const writes = requests.filter((request) => ['PutObject', 'CreateMultipartUpload', 'CopyObject'].includes(request.command));
    expect(writes.map((request) => request.command)).toEqual(['PutObject', 'PutObject', 'CreateMultipartUpload', 'CopyObject']);
    for (const write of writes) {
      expect(write.headers).toMatchObject(headers);
      if (!('x-amz-server-side-encryption-aws-kms-key-id' in headers)) expect(write.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
    }
  });

  it('without S3_SSE sends no encryption header: the bucket default applies', async () => {
    const requests = await everyWrite({});
    expect(requests.length).toBeGreaterThanOrEqual(4);
    for (const request of requests) {
      expect(request.headers['x-amz-server-side-encryption']).toBeUndefined();
      expect(request.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
    }
  });

  it('uploads carry a Content-Type from the file name; the refresh copy keeps the object\'s own', async () => {
    const requests = await everyWrite({});
    const types = Object.fromEntries(
      requests
        .filter((request) => request.command !== 'UploadPart' && request.command !== 'CompleteMultipartUpload')
        .map((request) => [`${request.command} ${request.key}`, request.headers['content-type']]),
    );
    expect(types).toEqual({
      'PutObject p/s/artifacts/a.md': 'text/markdown; charset=utf-8',
      'PutObject p/s/artifacts/b.bin': 'application/octet-stream',
      'CreateMultipartUpload p/s/artifacts/big.tar': 'application/x-tar',
      'CopyObject p/s/artifacts/a.md': 'text/markdown; charset=utf-8',
    });
  });

  it.each([
    ['notes.md', 'text/markdown; charset=utf-8'],
    ['README.TXT', 'text/plain; charset=utf-8'],
    ['metadata.json', 'application/json'],
    ['history.jsonl', 'application/jsonl'],
    ['index.html', 'text/html; charset=utf-8'],
    ['a/b/style.css', 'text/css; charset=utf-8'],
    ['main.js', 'text/javascript; charset=utf-8'],
    ['main.ts', 'text/plain; charset=utf-8'],
    ['run.py', 'text/x-python; charset=utf-8'],
    ['shot.png', 'image/png'],
    ['photo.JPG', 'image/jpeg'],
    ['photo.jpeg', 'image/jpeg'],
    ['anim.gif', 'image/gif'],
    ['logo.svg', 'image/svg+xml'],
    ['paper.pdf', 'application/pdf'],
    ['out.zip', 'application/zip'],
    ['out.tar.gz', 'application/gzip'],
    ['out.tar', 'application/x-tar'],
    ['table.csv', 'text/csv; charset=utf-8'],
    ['conf.yaml', 'application/yaml'],
    ['conf.yml', 'application/yaml'],
    ['build.log', 'text/plain; charset=utf-8'],
    ['Makefile', 'application/octet-stream'],
    ['.claude/.credentials', 'application/octet-stream'],
    ['weights.safetensors', 'application/octet-stream'],
  ])('%s is %s', (key, type) => {
    expect(contentTypeFor(key)).toBe(type);
  });
});
