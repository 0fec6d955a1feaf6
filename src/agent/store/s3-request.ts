import type { IncomingMessage } from 'node:http';
import { beforeRetry, retryable, type Method, type S3Endpoint } from './s3-endpoint.js';
import { responseError, toStoreError } from './s3-errors.js';

/*
 * One request of the lean client whose body is in memory (GET, HEAD, list, DELETE and
 * DeleteObjects; PutObject streams its own, s3-put.ts): a success's response with its body
 * unread, or a StoreError after one more attempt where one can succeed.
 */

export interface S3Request {
  method: Method;
  path: string;
  headers: Record<string, string | number>;
  body?: Uint8Array;
  // Names the request in errors and timeouts: "GetObject of KEY".
  what: string;
}

export function readText(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.once('error', reject);
  });
}

export async function send(endpoint: S3Endpoint, request: S3Request, signal: AbortSignal): Promise<IncomingMessage> {
  try {
    return await attempt(endpoint, request, signal);
  } catch (error) {
    if (signal.aborted || !retryable(error)) throw toStoreError(error);
    await beforeRetry();
    try {
      return await attempt(endpoint, request, signal);
    } catch (again) {
      throw toStoreError(again);
    }
  }
}

async function attempt(endpoint: S3Endpoint, { method, path, headers, body, what }: S3Request, signal: AbortSignal): Promise<IncomingMessage> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const request = endpoint.request(method, path, headers, signal, what);
    request.once('response', resolve);
    request.once('error', reject);
    request.end(body);
  });
  const status = response.statusCode ?? 0;
  if (status >= 200 && status < 300) return response;
  throw responseError(method, status, await readText(response), what);
}
