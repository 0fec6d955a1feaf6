import type { ClientRequest, IncomingMessage } from 'node:http';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { hashFileHead, hexToBase64, sha256Hex } from '../../shared/checksum.js';
import { contentTypeFor } from './content-type.js';
import { beforeRetry, retryable, type EndpointSettings, type S3Endpoint } from './s3-endpoint.js';
import { notS3Answer, responseError, S3ResponseError, toStoreError } from './s3-errors.js';
import { encryptionHeaders, type EncryptionSettings } from './encryption.js';
import { readText } from './s3-request.js';
import { streamedThrough } from '../../shared/gc-pacing.js';
import { isFileBody, shrankError, type FileBody, type PutBody, type PutOptions, type PutResult } from './store.js';

/*
 * PutObject without the AWS SDK: a SigV4-signed (aws4) request on a keep-alive socket.
 * Sync's hot path is one PutObject per changed file; through the SDK each one built a
 * middleware stack and evaluated endpoint rules, garbage the heap kept across a cycle of
 * many files, and loading the SDK weighed on every start (docs/BENCHMARKS.md). Multipart uploads and copies stay with the SDK (sdk-writes.ts),
 * loaded only when a cycle needs them; GET, HEAD and list are s3-get.ts's.
 */

export type PutSettings = EndpointSettings & EncryptionSettings;

// A file body is read into one buffer of this size, reused for the whole file.
const FILE_CHUNK = 256 * 1024;

// The body of a success is empty and only drained: the socket goes back to the pool.
function drain(response: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    response.resume();
    response.once('end', resolve);
    response.once('error', reject);
  });
}

export class ObjectPut {
  private readonly encryption: Record<string, string>;

  constructor(
    private readonly endpoint: S3Endpoint,
    settings: EncryptionSettings,
  ) {
    this.encryption = encryptionHeaders(settings);
  }

  // A stream body needs options.contentLength. A buffer or a file is sent once more after
  // a server error or a dropped socket; a stream is consumed by the first attempt.
  async put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
    const source: Source = bytes ?? (body as Readable | FileBody);
    try {
      const result = await this.send(key, source, options, signal);
      // Each PUT leaves a few KiB (request, socket reads, signing strings) that outlive a
      // scavenge under --max-semi-space-size=1 and wait for a full GC, which a cold cycle
      // of many files would otherwise reach only late.
      streamedThrough();
      return result;
    } catch (error) {
      if (!(bytes || isFileBody(source)) || signal.aborted || !retryable(error)) throw toStoreError(error);
      await beforeRetry();
      try {
        return await this.send(key, source, options, signal);
      } catch (again) {
        throw toStoreError(again);
      }
    }
  }

  private async send(key: string, source: Source, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    const bytes = source instanceof Uint8Array ? source : undefined;
    const length = bytes?.length ?? (isFileBody(source) ? source.size : options.contentLength);
    if (length === undefined) throw new Error(`PutObject of ${key}: a stream body needs its length`);
    // Opened before the request, so a file that cannot be opened fails with its own error
    // (ENOENT: gone since the walk) without a request.
    const file = isFileBody(source) ? await open(source.file, 'r') : undefined;
    try {
      const buffer = file ? Buffer.allocUnsafe(Math.min(FILE_CHUNK, Math.max(length, 1))) : undefined;
      // A file is read once to hash it and once to send it (the second read comes from
      // the page cache): the server refuses bytes that changed in between (rule 9).
      let sha256 = bytes ? sha256Hex(bytes) : options.sha256;
      if (file && buffer) {
        const hashed = await hashFileHead(file, length, buffer);
        if (hashed.sha256 === undefined) throw shrankError(key, hashed.read, length);
        sha256 = hashed.sha256;
      }
      const headers: Record<string, string | number> = {
        'Content-Type': contentTypeFor(key),
        'Content-Length': length,
        // A buffer is signed with its hash, as the SDK does; a file or a stream is not:
        // x-amz-checksum-sha256 has the server verify it instead.
        'X-Amz-Content-Sha256': bytes && sha256 ? sha256 : 'UNSIGNED-PAYLOAD',
        ...this.encryption,
      };
      if (sha256 !== undefined) headers['x-amz-checksum-sha256'] = hexToBase64(sha256);
      if (options.ifMatch !== undefined) headers['If-Match'] = options.ifMatch;
      if (options.ifNoneMatch !== undefined) headers['If-None-Match'] = options.ifNoneMatch;
      for (const [name, value] of Object.entries(options.metadata ?? {})) headers[`x-amz-meta-${name}`] = value;
      const etag = await this.exchange(key, source, file && buffer ? { file, buffer } : undefined, headers, signal);
      return sha256 === undefined ? { etag } : { etag, sha256 };
    } finally {
      await file?.close();
    }
  }

  private async exchange(key: string, source: Source, file: OpenFile | undefined, headers: Record<string, string | number>, signal: AbortSignal): Promise<string> {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = this.endpoint.request('PUT', this.endpoint.keyPath(key), headers, signal, `PutObject of ${key}`);
      request.once('response', resolve);
      request.once('error', reject);
      if (source instanceof Uint8Array) {
        request.end(source);
      } else if (isFileBody(source) && file) {
        sendFile(file, source.size, key, request).catch((error: unknown) => request.destroy(error as Error));
      } else {
        const stream = source as Readable;
        // A file that cannot be read fails with its own error (the file's, not the store's).
        stream.once('error', (error) => request.destroy(error));
        stream.pipe(request);
      }
    });
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) throw responseError('PUT', status, await readText(response), `PutObject of ${key}`);
    await drain(response);
    const etag = response.headers.etag;
    // Every S3 server names what it stored; a 2xx without an ETag came from something
    // else (a proxy's page, a captive portal) and stored nothing (rule 10).
    if (typeof etag !== 'string' || etag === '') throw notS3Answer(`PutObject of ${key}: HTTP ${status} without an ETag`, status);
    // A server that names the checksum it stored names the one it was sent.
    const stored = response.headers['x-amz-checksum-sha256'];
    const sent = headers['x-amz-checksum-sha256'];
    if (typeof stored === 'string' && sent !== undefined && stored !== sent) {
      throw new S3ResponseError('BadDigest', `PutObject of ${key}: stored checksum ${stored}, sent ${String(sent)}`, { httpStatusCode: status });
    }
    return etag;
  }
}

type Source = Uint8Array | Readable | FileBody;

// A file body's handle, and the buffer its chunks are read into (hashed, then sent).
interface OpenFile {
  file: FileHandle;
  buffer: Buffer;
}

// Each chunk is read into the same buffer once the previous one has left for the socket.
async function sendFile({ file, buffer }: OpenFile, size: number, key: string, request: ClientRequest): Promise<void> {
  let sent = 0;
  while (sent < size) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, size - sent), sent);
    if (bytesRead === 0) throw shrankError(key, sent, size);
    await new Promise<void>((resolve, reject) => request.write(buffer.subarray(0, bytesRead), (error) => (error ? reject(error) : resolve())));
    sent += bytesRead;
  }
  request.end();
}
