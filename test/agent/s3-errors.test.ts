import { describe, expect, it } from 'vitest';
import { classifyS3Error, isAccessDenied } from '../../src/agent/s3.js';

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

  it('tells a policy denial from credentials the server rejects', () => {
    expect(isAccessDenied(s3Error('AccessDenied', 403))).toBe(true);
    expect(isAccessDenied(s3Error('InvalidAccessKeyId', 403))).toBe(false);
    expect(isAccessDenied(s3Error('SignatureDoesNotMatch', 403))).toBe(false);
    expect(isAccessDenied(s3Error('NoSuchKey', 404))).toBe(false);
  });
});
