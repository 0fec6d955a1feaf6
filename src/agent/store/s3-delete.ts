import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import pLimit from 'p-limit';
import { sha256Hex } from '../../shared/checksum.js';
import type { S3Endpoint } from './s3-endpoint.js';
import { notS3Answer, toStoreError } from './s3-errors.js';
import { readText, send } from './s3-request.js';
import { escapeXml, parseXml } from './s3-xml.js';
import { StoreError, type FailureKind } from './store.js';

/*
 * DeleteObject and DeleteObjects without the SDK, in a form every S3 server takes.
 * DeleteObjects carries a Content-MD5 of its body: the SDK sends only its CRC32 header
 * since 3.729, which AWS accepts but older MinIO, Ceph RGW and others answer "Missing
 * required header for this request: Content-Md5". Servers without multi-object delete
 * (501 NotImplemented) get one DeleteObject per key instead, remembered for the client's
 * life so each later cycle goes there at once.
 */

const DELETE_BATCH = 1000;
// Single deletes in parallel on the servers that need them: a batch of 1000 stays seconds.
const SINGLE_DELETES = 16;

// Failures of the server as a whole, not of one key: they end the batch.
const UNREACHABLE = new Set<FailureKind>(['connection refused', 'endpoint not found', 'timed out', 'server error']);

interface DeleteAnswer {
  DeleteResult?: { Deleted?: Array<{ Key?: unknown }> } | string;
}

// A server that has no multi-object delete at all, as opposed to one refusing this request.
function notImplemented(error: unknown): boolean {
  const cause = error instanceof StoreError ? error.cause : error;
  const shape = cause as { name?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined;
  return shape?.name === 'NotImplemented' || shape?.Code === 'NotImplemented' || shape?.$metadata?.httpStatusCode === 501;
}

function deleteDocument(keys: readonly string[]): Buffer {
  const objects = keys.map((key) => `<Object><Key>${escapeXml(key)}</Key></Object>`).join('');
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${objects}<Quiet>false</Quiet></Delete>`);
}

// Not quiet: a key counts as deleted only when the answer names it so. A 2xx that is not
// a DeleteResult (a proxy's page) deletes nothing (rule 10).
async function deletedKeys(response: IncomingMessage, what: string): Promise<Set<string>> {
  let text: string;
  try {
    text = await readText(response);
  } catch (error) {
    throw toStoreError(error);
  }
  const answer = parseXml(text) as DeleteAnswer | undefined;
  if (answer?.DeleteResult === undefined) {
    const status = response.statusCode ?? 0;
    throw toStoreError(notS3Answer(`${what}: HTTP ${status} without a DeleteResult`, status));
  }
  const deleted = new Set<string>();
  const result = answer.DeleteResult;
  for (const object of typeof result === 'object' ? (result.Deleted ?? []) : []) if (typeof object.Key === 'string') deleted.add(object.Key);
  return deleted;
}

export class ObjectDeleter {
  private multiDelete = true;

  constructor(private readonly endpoint: S3Endpoint) {}

  async delete(key: string, signal: AbortSignal): Promise<void> {
    const response = await send(this.endpoint, { method: 'DELETE', path: this.endpoint.keyPath(key), headers: {}, what: `DeleteObject of ${key}` }, signal);
    response.resume();
  }

  /** Deletes the keys; the ones the server refused come back in `failed`. */
  async deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }> {
    const failed = new Set<string>();
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      if (this.multiDelete) {
        try {
          const deleted = await this.deleteBatch(batch, signal);
          for (const key of batch) if (!deleted.has(key)) failed.add(key);
          continue;
        } catch (error) {
          if (!notImplemented(error)) throw error;
          this.multiDelete = false;
        }
      }
      await this.deleteEach(batch, failed, signal);
    }
    return { failed };
  }

  // The body is signed with its hash, and its MD5 is part of the signature too.
  private async deleteBatch(keys: readonly string[], signal: AbortSignal): Promise<Set<string>> {
    const body = deleteDocument(keys);
    const headers = {
      'Content-Type': 'application/xml',
      'Content-Length': body.length,
      'Content-MD5': createHash('md5').update(body).digest('base64'),
      'X-Amz-Content-Sha256': sha256Hex(body),
    };
    const what = `DeleteObjects of ${keys.length} key${keys.length === 1 ? '' : 's'}`;
    const response = await send(this.endpoint, { method: 'POST', path: this.endpoint.bucketPath('delete'), headers, body, what }, signal);
    return deletedKeys(response, what);
  }

  // A key the server refuses is named in `failed` like DeleteObjects' per-key errors; a
  // connection-level failure ends the batch as it would have ended DeleteObjects.
  private async deleteEach(keys: readonly string[], failed: Set<string>, signal: AbortSignal): Promise<void> {
    const limit = pLimit(SINGLE_DELETES);
    await Promise.all(
      keys.map((key) =>
        limit(async () => {
          try {
            await this.delete(key, signal);
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
