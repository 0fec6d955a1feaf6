import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Endpoint } from '../../../src/agent/store/s3-endpoint.js';
import { ObjectPut, type PutSettings } from '../../../src/agent/store/s3-put.js';
import { failureOf } from '../../../src/agent/store/store.js';
import { caught } from '../support/helpers.js';

// What the lean PutObject sends, against a server that records each request and answers
// with the status queued for it. MinIO without a KMS refuses SSE headers, so the
// integration tier cannot show them.
describe('PutObject requests (s3-put.ts)', () => {
  let server: Server;
  let endpoint: string;
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];
  const statuses: number[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('latin1') });
        const status = statuses.shift() ?? 200;
        response.statusCode = status;
        // What S3 names every stored object with (a 2xx without one is not an S3 answer).
        if (status === 200) response.setHeader('ETag', '"stored"');
        response.end(status === 200 ? '' : '<Error><Code>InternalError</Code><Message>try again</Message></Error>');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  // Each putter's own socket pool, closed before the server so its keep-alive sockets do
  // not hold the server open.
  const endpoints: S3Endpoint[] = [];
  const putterOf = (putSettings: PutSettings) => {
    const endpoint = new S3Endpoint(putSettings, 2);
    endpoints.push(endpoint);
    return new ObjectPut(endpoint, putSettings);
  };
  afterAll(() => {
    for (const endpoint of endpoints) endpoint.close();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const settings = (overrides: Partial<PutSettings> = {}): PutSettings => ({
    endpoint,
    region: 'eu-west-1',
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'secret',
    bucket: 'bucket',
    ...overrides,
  });
  const signal = new AbortController().signal;

  it.each([
    ['AES256', { sse: 'AES256' as const }, { 'x-amz-server-side-encryption': 'AES256' }],
    [
      'aws:kms with a key',
      { sse: 'aws:kms' as const, sseKmsKeyId: 'arn:aws:kms:eu-west-1:1:key/k' },
      { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-west-1:1:key/k' },
    ],
  ])('S3_SSE=%s: the PutObject asks for it, signed', async (_, encryption, headers) => {
    seen.length = 0;
    const putter = putterOf(settings(encryption));
    await putter.put('ns/s/artifacts/a.md', 'abc', { metadata: { mtime: '1.000000' } }, signal);
    expect(seen[0]?.headers).toMatchObject(headers);
    for (const name of Object.keys(headers)) expect(seen[0]?.headers.authorization).toContain(name);
  });

  it('addresses a custom endpoint by path, with the Content-Type, length, metadata and a signed payload hash', async () => {
    seen.length = 0;
    const putter = putterOf(settings());
    await putter.put('ns/s/artifacts/a b.md', 'abc', { metadata: { mtime: '1.000000', mode: '644' } }, signal);
    const [request] = seen;
    expect(request).toMatchObject({ method: 'PUT', url: '/bucket/ns/s/artifacts/a%20b.md', body: 'abc' });
    expect(request?.headers).toMatchObject({
      'content-type': 'text/markdown; charset=utf-8',
      'content-length': '3',
      'x-amz-meta-mtime': '1.000000',
      'x-amz-meta-mode': '644',
      'x-amz-content-sha256': 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      // The same hash for the server to verify and keep (rule 9).
      'x-amz-checksum-sha256': 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=',
    });
    expect(request?.headers['x-amz-server-side-encryption']).toBeUndefined();
    expect(request?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/s3\/aws4_request/);
  });

  it('sends a buffer once more after a server error, and reports the second failure', async () => {
    seen.length = 0;
    const putter = putterOf(settings());
    statuses.push(500);
    await putter.put('ns/s/retried', 'abc', {}, signal);
    expect(seen.map((request) => request.body)).toEqual(['abc', 'abc']);

    seen.length = 0;
    statuses.push(500, 500);
    const error = await putter.put('ns/s/failed', 'abc', {}, signal).catch((caught: unknown) => caught);
    expect(seen).toHaveLength(2);
    expect(failureOf(error)).toEqual({ kind: 'server error', detail: 'try again' });
  });

  it('sends a file in chunks of one reused buffer, cut at the given size; a file that shrank fails', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'put-'));
    const file = path.join(dir, 'big.bin');
    const content = Buffer.alloc(700_000);
    for (let index = 0; index < content.length; index += 1) content[index] = index % 251;
    await writeFile(file, content);
    const putter = putterOf(settings());
    try {
      seen.length = 0;
      const sha256 = createHash('sha256').update(content.subarray(0, 600_000)).digest();
      // Hashed from disk before it is sent: the server refuses bytes that changed since.
      expect(await putter.put('ns/s/big.bin', { file, size: 600_000 }, {}, signal)).toEqual({ etag: '"stored"', sha256: sha256.toString('hex') });
      expect(seen[0]?.headers['content-length']).toBe('600000');
      expect(seen[0]?.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(seen[0]?.headers['x-amz-checksum-sha256']).toBe(sha256.toString('base64'));
      expect(seen[0]?.headers.authorization).toContain('x-amz-checksum-sha256');
      expect(Buffer.from(seen[0]!.body, 'latin1').equals(content.subarray(0, 600_000))).toBe(true);

      const error = await putter.put('ns/s/big.bin', { file, size: 800_000 }, {}, signal).catch((caught: unknown) => caught);
      expect(failureOf(error).detail).toBe('ns/s/big.bin shrank during upload (700000 of 800000 bytes)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('sends nothing under a signal already aborted, and an abort by timeout fails as timed out', async () => {
    const before = seen.length;
    const error = await caught(putterOf(settings()).put('k', 'x', {}, AbortSignal.abort(new DOMException('budget spent', 'TimeoutError'))));
    expect(failureOf(error).kind).toBe('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.length).toBe(before);
  });
});
