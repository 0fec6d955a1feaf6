import { createHash } from 'node:crypto';
import { DeleteObjectCommand, DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { toStoreError } from './s3-errors.js';
import { StoreError, type FailureKind } from './store.js';

/*
 * Deletions that reach every S3 server. DeleteObjects carries a Content-MD5 of its body:
 * the SDK sends only its CRC32 header since 3.729, which AWS accepts but older MinIO, Ceph
 * RGW and others answer "Missing required header for this request: Content-Md5". Servers
 * without multi-object delete (501 NotImplemented) get one DeleteObject per key instead,
 * remembered for the client's life so each later cycle goes there at once.
 */

const DELETE_BATCH = 1000;
// Single deletes in parallel on the servers that need them: a batch of 1000 stays seconds.
const SINGLE_DELETES = 16;

// The body serialized by then, and signed after: the header is part of the signature.
function withContentMd5(command: DeleteObjectsCommand): DeleteObjectsCommand {
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if (request.headers !== undefined && (typeof request.body === 'string' || request.body instanceof Uint8Array)) {
        request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'sessionStorageContentMd5', override: true },
  );
  return command;
}

// Failures of the server as a whole, not of one key: they end the batch.
const UNREACHABLE = new Set<FailureKind>(['connection refused', 'endpoint not found', 'timed out', 'server error']);

// A server that has no multi-object delete at all, as opposed to one refusing this request.
function notImplemented(error: unknown): boolean {
  const cause = error instanceof StoreError ? error.cause : error;
  const shape = cause as { name?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined;
  return shape?.name === 'NotImplemented' || shape?.Code === 'NotImplemented' || shape?.$metadata?.httpStatusCode === 501;
}

export class ObjectDeleter {
  private multiDelete = true;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  /** Deletes the keys; the ones the server refused come back in `failed`. */
  async deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }> {
    const failed = new Set<string>();
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      if (this.multiDelete) {
        try {
          const response = await this.client.send(
            withContentMd5(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: false } })),
            { abortSignal: signal },
          );
          // Not quiet: a key counts as deleted only when the answer names it so. A 2xx that
          // is not a DeleteResult (a proxy's page) names none, and deletes nothing (rule 10).
          const deleted = new Set<string>();
          for (const object of response.Deleted ?? []) if (object.Key !== undefined) deleted.add(object.Key);
          for (const key of batch) if (!deleted.has(key)) failed.add(key);
          continue;
        } catch (error) {
          if (!notImplemented(error)) throw toStoreError(error);
          this.multiDelete = false;
        }
      }
      await this.deleteEach(batch, failed, signal);
    }
    return { failed };
  }

  // A key the server refuses is named in `failed` like DeleteObjects' per-key errors; a
  // connection-level failure ends the batch as it would have ended DeleteObjects.
  private async deleteEach(keys: readonly string[], failed: Set<string>, signal: AbortSignal): Promise<void> {
    const limit = pLimit(SINGLE_DELETES);
    await Promise.all(
      keys.map((key) =>
        limit(async () => {
          try {
            await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
          } catch (error) {
            const mapped = toStoreError(error);
            if (mapped instanceof StoreError && !UNREACHABLE.has(mapped.failure.kind) && mapped.kind !== 'credentials') {
              failed.add(key);
              return;
            }
            throw mapped;
          }
        }),
      ),
    );
  }
}
