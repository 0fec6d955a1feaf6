import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Transform, type Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import pLimit from 'p-limit';
import type { AgentSettings } from '../settings.js';
import { hexToBase64, sha256Hex } from '../../shared/checksum.js';
import { CredentialSource } from './credentials.js';
import { socketPoolOptions } from './http-agent.js';
import { contentTypeFor } from './content-type.js';
import { toStoreError } from './s3-errors.js';
import { ObjectDeleter } from './s3-delete.js';
import { isFileBody, shrankError, StoreError, type FileBody, type PutResult, type GetOptions, type ListedObject, type ObjectInfo, type ObjectRead, type ObjectStore, type PutBody, type PutOptions } from './store.js';

// One client per process. Sockets are kept alive and sized to the transfer pool so a
// cycle of many small files reuses connections instead of opening one per object.
export function createS3Client(settings: AgentSettings, workers: number, credentials = new CredentialSource(settings)): S3Client {
  const agentOptions = socketPoolOptions(workers);
  const amazon = new URL(settings.endpoint).hostname.endsWith('amazonaws.com');
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    credentials: () => credentials.get(),
    // Custom endpoints (MinIO, Ceph, ...) are addressed by path and do not accept the
    // aws-chunked CRC32 trailers the SDK sends by default since 3.729.
    forcePathStyle: !amazon,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    // AWS's 301 to the bucket's region is followed, as the lean requests do (s3-endpoint.ts).
    followRegionRedirects: true,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: 5_000,
      requestTimeout: 60_000,
    }),
  });
}

async function mapped<T>(request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    throw toStoreError(error);
  }
}

async function* mappedBody(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } catch (error) {
    throw toStoreError(error);
  }
}

// The SDK sends a file as a stream of exactly body.size bytes: one that shrank would leave
// the request waiting for bytes that never come, so a short read aborts it. Opened first,
// so a file that cannot be opened fails with its own error before any request.
async function putFile(
  body: FileBody,
  send: (stream: Readable, signal: AbortSignal) => Promise<PutResult>,
  key: string,
  signal: AbortSignal,
): Promise<PutResult> {
  const stream = createReadStream(body.file, { start: 0, end: body.size - 1 });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  const shortRead = new AbortController();
  stream.once('end', () => {
    if (stream.bytesRead < body.size) shortRead.abort();
  });
  try {
    return await send(stream, AbortSignal.any([signal, shortRead.signal]));
  } catch (error) {
    if (shortRead.signal.aborted && !signal.aborted) throw shrankError(key, stream.bytesRead, body.size);
    throw error;
  } finally {
    stream.destroy();
  }
}

const PART_SIZE = 8 * 2 ** 20;
const PART_QUEUE = 2;
// Each multipart upload buffers up to PART_QUEUE parts; capping how many run at once keeps
// memory bounded whatever the worker count.
const multipartLimit = pLimit(2);

export type EncryptionSettings = Pick<AgentSettings, 'sse' | 'sseKmsKeyId'>;

// The object store over @aws-sdk/client-s3. Every write carries the server-side encryption
// asked for in S3_SSE (absent: the bucket's default applies).
export class S3Store implements ObjectStore {
  private readonly encryption: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };
  private deleter: ObjectDeleter | undefined;

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    settings: EncryptionSettings,
  ) {
    this.encryption =
      settings.sse === undefined ? {} : { ServerSideEncryption: settings.sse, ...(settings.sseKmsKeyId === undefined ? {} : { SSEKMSKeyId: settings.sseKmsKeyId }) };
  }

  async get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    const from = options.from;
    const response: GetObjectCommandOutput = await mapped(
      this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(from ? { Range: `bytes=${from.offset}-`, IfMatch: from.ifMatch } : {}) }),
        { abortSignal: signal },
      ),
    );
    const body = response.Body;
    return {
      etag: response.ETag,
      lastModified: response.LastModified,
      metadata: response.Metadata ?? {},
      contentLength: response.ContentLength,
      contentRange: response.ContentRange,
      body: mappedBody((body ?? []) as AsyncIterable<Uint8Array>),
      bytes: () => mapped(body ? body.transformToByteArray() : Promise.resolve(new Uint8Array())),
      discard: () => (body as { destroy?: () => void } | undefined)?.destroy?.(),
    };
  }

  async head(key: string, signal: AbortSignal): Promise<ObjectInfo> {
    const head = await mapped(this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal }));
    return {
      size: head.ContentLength ?? 0,
      etag: head.ETag,
      lastModified: head.LastModified,
      metadata: head.Metadata ?? {},
      headers: {
        contentType: head.ContentType,
        contentEncoding: head.ContentEncoding,
        contentDisposition: head.ContentDisposition,
        contentLanguage: head.ContentLanguage,
        cacheControl: head.CacheControl,
      },
    };
  }

  async put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    if (isFileBody(body)) {
      return putFile(body, (stream, streamSignal) => this.put(key, stream, { ...options, contentLength: body.size }, streamSignal), key, signal);
    }
    // The server verifies the body's SHA-256 where it is known up front (rule 9).
    const sha256 = typeof body === 'string' || body instanceof Uint8Array ? sha256Hex(typeof body === 'string' ? Buffer.from(body) : body) : options.sha256;
    const response = await mapped(
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ChecksumSHA256: sha256 === undefined ? undefined : hexToBase64(sha256),
          ContentLength: options.contentLength,
          ContentType: contentTypeFor(key),
          Metadata: options.metadata,
          IfMatch: options.ifMatch,
          IfNoneMatch: options.ifNoneMatch,
          ...this.encryption,
        }),
        { abortSignal: signal },
      ),
    );
    if (!response.ETag) throw new StoreError('other', { kind: 'server error', detail: `PutObject of ${key}: no ETag: not an S3 answer` });
    return sha256 === undefined ? { etag: response.ETag } : { etag: response.ETag, sha256 };
  }

  // Each part carries its SHA-256, which the server verifies (rule 9); the whole file's is
  // taken of the bytes as they stream into the parts.
  async putMultipart(key: string, body: Readable, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    return multipartLimit(async () => {
      if (signal.aborted) throw signal.reason;
      const hash = createHash('sha256');
      const hashed = body.pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            hash.update(chunk);
            done(null, chunk);
          },
        }),
      );
      body.once('error', (error) => hashed.destroy(error));
      const upload = new Upload({
        client: this.client,
        params: {
          Bucket: this.bucket,
          Key: key,
          Body: hashed,
          ContentType: contentTypeFor(key),
          Metadata: options.metadata,
          ChecksumAlgorithm: 'SHA256',
          ...this.encryption,
        },
        partSize: PART_SIZE,
        queueSize: PART_QUEUE,
        leavePartsOnError: false,
      });
      const abort = () => void upload.abort();
      signal.addEventListener('abort', abort, { once: true });
      try {
        const result = await mapped(upload.done());
        const etag = 'ETag' in result ? result.ETag : undefined;
        if (!etag) throw new StoreError('other', { kind: 'server error', detail: `multipart upload of ${key}: no ETag: not an S3 answer` });
        return { etag, sha256: hash.digest('hex') };
      } finally {
        signal.removeEventListener('abort', abort);
      }
    });
  }

  async copyOnto(key: string, info: ObjectInfo, signal: AbortSignal): Promise<void> {
    await mapped(
      this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: key,
          CopySource: `${this.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
          CopySourceIfMatch: info.etag,
          // Copying an object onto itself is only allowed when its metadata is replaced:
          // it is written back unchanged.
          MetadataDirective: 'REPLACE',
          Metadata: info.metadata,
          ContentType: info.headers.contentType,
          ContentEncoding: info.headers.contentEncoding,
          ContentDisposition: info.headers.contentDisposition,
          ContentLanguage: info.headers.contentLanguage,
          CacheControl: info.headers.cacheControl,
          ...this.encryption,
        }),
        { abortSignal: signal },
      ),
    );
  }

  async delete(key: string, signal: AbortSignal): Promise<void> {
    await mapped(this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal }));
  }

  async deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }> {
    this.deleter ??= new ObjectDeleter(this.client, this.bucket);
    return this.deleter.deleteMany(keys, signal);
  }

  async list(prefix: string, signal: AbortSignal): Promise<ListedObject[]> {
    const objects: ListedObject[] = [];
    let token: string | undefined;
    do {
      const page = await mapped(
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }), {
          abortSignal: signal,
        }),
      );
      for (const object of page.Contents ?? []) if (object.Key !== undefined) objects.push({ key: object.Key, size: object.Size ?? 0, etag: object.ETag });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return objects;
  }
}
