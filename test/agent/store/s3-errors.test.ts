import { describe, expect, it } from 'vitest';
import type { S3Client } from '@aws-sdk/client-s3';
import { classifyS3Error } from '../../../src/agent/store/s3-errors.js';
import { S3Endpoint } from '../../../src/agent/store/s3-endpoint.js';
import { ObjectPut } from '../../../src/agent/store/s3-put.js';
import { SdkWrites } from '../../../src/agent/store/sdk-writes.js';
import { StoreError, type ObjectInfo } from '../../../src/agent/store/store.js';

function s3Error(name: string, status: number) {
  return Object.assign(new Error(`${name} message`), { name, $metadata: { httpStatusCode: status } });
}

describe('S3 error classification', () => {
  it('names a refused connection, also inside an AggregateError', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(classifyS3Error(refused).kind).toBe('connection refused');
    expect(classifyS3Error(new AggregateError([refused], 'failed')).kind).toBe('connection refused');
  });

  it.each([
    ['InvalidAccessKeyId', 403, 'access denied'],
    ['SignatureDoesNotMatch', 403, 'access denied'],
    ['AccessDenied', 403, 'access denied'],
    ['NoSuchBucket', 404, 'bucket not found'],
    ['InternalError', 500, 'server error'],
  ])('%s is "%s"', (name, status, kind) => {
    expect(classifyS3Error(s3Error(name, status)).kind).toBe(kind);
  });

  it('names DNS failures and timeouts', () => {
    expect(classifyS3Error(Object.assign(new Error('x'), { code: 'ENOTFOUND' })).kind).toBe('endpoint not found');
    expect(classifyS3Error(Object.assign(new Error('x'), { name: 'TimeoutError' })).kind).toBe('timed out');
  });

  // The adapter hands callers a StoreError: the kind they decide on, the operator's words.
  // The lean client's failures are read into the SDK's shape first (s3-get.test.ts).
  async function thrownBy(error: unknown): Promise<StoreError> {
    const client = { send: () => Promise.reject(error) } as unknown as S3Client;
    const info: ObjectInfo = { size: 1, etag: '"e"', metadata: {}, headers: {} };
    return new SdkWrites(client, 'bucket', {}).copyOnto('key', info, new AbortController().signal).then(
      () => expect.unreachable(),
      (thrown: unknown) => {
        expect(thrown).toBeInstanceOf(StoreError);
        return thrown as StoreError;
      },
    );
  }

  it.each([
    ['AccessDenied', 403, 'access-denied', 'access denied'],
    ['InvalidAccessKeyId', 403, 'credentials', 'access denied'],
    ['SignatureDoesNotMatch', 403, 'credentials', 'access denied'],
    ['NoSuchKey', 404, 'not-found', 'error'],
    ['NotFound', 404, 'not-found', 'error'],
    ['NoSuchBucket', 404, 'other', 'bucket not found'],
    // A HEAD's 403 has no body to name a code: refresh reads the operator's words.
    ['Forbidden', 403, 'other', 'access denied'],
    ['PreconditionFailed', 412, 'precondition-failed', 'error'],
    ['InvalidRange', 416, 'invalid-range', 'error'],
    ['InternalError', 500, 'other', 'server error'],
  ])('the adapter maps %s (%i) to %s, in the words "%s"', async (name, status, kind, words) => {
    const error = await thrownBy(s3Error(name, status));
    expect(error.kind).toBe(kind);
    expect(error.failure).toEqual({ kind: words, detail: `${name} message` });
  });

  it('leaves an error reading a local file as it is: sync tells a file it cannot read from a store it cannot reach', async () => {
    const local = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', syscall: 'open', path: '/workspace/x' });
    const client = { send: () => Promise.reject(local) } as unknown as S3Client;
    const info: ObjectInfo = { size: 1, etag: '"e"', metadata: {}, headers: {} };
    await expect(new SdkWrites(client, 'bucket', {}).copyOnto('k', info, new AbortController().signal)).rejects.toBe(local);
    // The lean PutObject opens a file body before any request: a file gone since the walk
    // fails with its own error.
    const settings = { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', bucket: 'bucket', accessKeyId: 'a', secretAccessKey: 'b' };
    const endpoint = new S3Endpoint(settings, 1);
    try {
      const gone = await new ObjectPut(endpoint, {}).put('k', { file: '/nonexistent/session-storage-file', size: 3 }, {}, new AbortController().signal).catch((error: unknown) => error);
      expect(gone).not.toBeInstanceOf(StoreError);
      expect(gone).toMatchObject({ code: 'ENOENT', syscall: 'open' });
    } finally {
      endpoint.close();
    }
  });
});
