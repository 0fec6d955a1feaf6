import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { CopyObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import pLimit from 'p-limit';
import type { CredentialSource } from './credentials.js';
import { encryptionParameters, type EncryptionSettings } from './encryption.js';
import { contentTypeFor } from './content-type.js';
import { CONNECT_TIMEOUT_MS, IDLE_TIMEOUT_MS, MAX_ATTEMPTS, type S3Endpoint } from './s3-endpoint.js';
import { toStoreError } from './s3-errors.js';
import { StoreError, type ObjectInfo, type PutOptions, type PutResult } from './store.js';

/*
 * The two calls only the AWS SDK makes for the agent: a multipart upload (@aws-sdk/lib-storage:
 * parts queued, each verified, the upload aborted on failure) and CopyObject (whose failure
 * AWS may report inside a 200). Loaded on the first of them (s3-store.ts), with the lean
 * client's configuration: its endpoint, addressing, region, credential chain, timeouts,
 * attempts and socket pool.
 */

export function createSdkClient(endpoint: S3Endpoint, credentials: CredentialSource): S3Client {
  return new S3Client({
    endpoint: endpoint.url,
    // The region the lean requests sign for, which follows AWS's redirect to the bucket's.
    region: () => Promise.resolve(endpoint.currentRegion),
    credentials: () => credentials.get(),
    forcePathStyle: endpoint.pathStyle,
    // Custom endpoints (MinIO, Ceph, ...) do not accept the aws-chunked CRC32 trailers the
    // SDK sends by default since 3.729.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: MAX_ATTEMPTS,
    followRegionRedirects: true,
    requestHandler: new NodeHttpHandler({
      [endpoint.secure ? 'httpsAgent' : 'httpAgent']: endpoint.socketPool(),
      connectionTimeout: CONNECT_TIMEOUT_MS,
      requestTimeout: IDLE_TIMEOUT_MS,
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

// The bytes of a stream, hashed as they pass into the upload's parts.
function hashing(body: Readable): { hashed: Readable; digest: () => string } {
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
  return { hashed, digest: () => hash.digest('hex') };
}

const PART_SIZE = 8 * 2 ** 20;
const PART_QUEUE = 2;
// Each multipart upload buffers up to PART_QUEUE parts; capping how many run at once keeps
// memory bounded whatever the worker count.
const multipartLimit = pLimit(2);

export class SdkWrites {
  private readonly encryption: ReturnType<typeof encryptionParameters>;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    settings: EncryptionSettings,
  ) {
    this.encryption = encryptionParameters(settings);
  }

  // Each part carries its SHA-256, which the server verifies (rule 9); the whole file's is
  // taken of the bytes as they stream into the parts.
  async putMultipart(key: string, body: Readable, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    return multipartLimit(async () => {
      if (signal.aborted) throw signal.reason;
      const { hashed, digest } = hashing(body);
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
        return { etag, sha256: digest() };
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

  async copy(sourceKey: string, key: string, signal: AbortSignal): Promise<void> {
    await mapped(
      this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: key,
          CopySource: `${this.bucket}/${sourceKey.split('/').map(encodeURIComponent).join('/')}`,
          ...this.encryption,
        }),
        { abortSignal: signal },
      ),
    );
  }
}
