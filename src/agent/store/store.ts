import type { Readable } from 'node:stream';
import type { FsPath } from '../../shared/fs-path.js';

/*
 * The agent's storage port: the few object-store calls hydrate, sync, refresh and the user
 * tools make. The S3 adapter (s3-store.ts) turns whatever S3, the SDK or the socket throws
 * into a StoreError, so the agent's decisions never read SDK error shapes and the unit tier
 * can run them against an in-memory store.
 */

// What a caller decides on. `credentials`: the server rejects the keys outright, as
// opposed to `access-denied`, a policy refusing this one request.
export type StoreErrorKind = 'not-found' | 'access-denied' | 'credentials' | 'precondition-failed' | 'invalid-range' | 'other';

// The words operators grep for in the logs; `detail` is the server's or socket's message.
export type FailureKind =
  | 'connection refused'
  | 'access denied'
  | 'bucket not found'
  | 'endpoint not found'
  | 'timed out'
  | 'server error'
  | 'wrong region'
  | 'error';

export interface Failure {
  kind: FailureKind;
  detail: string;
}

export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    readonly failure: Failure,
    options?: { cause?: unknown },
  ) {
    super(failure.detail, options);
  }
}

export function isStoreError(error: unknown, ...kinds: StoreErrorKind[]): error is StoreError {
  return error instanceof StoreError && kinds.includes(error.kind);
}

// A StoreError carries its own words; anything else was thrown by the agent itself (a
// local file, an aborted signal) and is named by its message.
export function failureOf(error: unknown): Failure {
  if (error instanceof StoreError) return error.failure;
  const detail = error instanceof Error && error.message !== '' ? error.message : String(error);
  return { kind: error instanceof Error && error.name === 'TimeoutError' ? 'timed out' : 'error', detail };
}

export function describeFailure(error: unknown): string {
  const failure = failureOf(error);
  return failure.kind === 'error' ? failure.detail : `${failure.kind} (${failure.detail})`;
}

// The object's headers that S3 browsers and downloads use, kept when it is rewritten.
export interface ObjectHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
}

export interface ObjectInfo {
  size: number;
  etag?: string;
  lastModified?: Date;
  // x-amz-meta-* (mtime, mode).
  metadata: Record<string, string>;
  headers: ObjectHeaders;
}

export interface ObjectRead {
  etag?: string;
  lastModified?: Date;
  metadata: Record<string, string>;
  // Bytes in this response (the rest of the object for a range read).
  contentLength?: number;
  // "bytes START-END/TOTAL" for a range read.
  contentRange?: string;
  // The SHA-256 (hex) the store keeps for the whole object, where it keeps one (uploaded
  // with x-amz-checksum-sha256 in one part) and returns it (x-amz-checksum-mode).
  storedSha256?: string;
  body: AsyncIterable<Uint8Array>;
  bytes(): Promise<Uint8Array>;
  // Releases a body that will not be read (it would hold its connection otherwise).
  discard(): void;
}

export interface GetOptions {
  // Read from this offset to the end, only if the object still has this ETag
  // (precondition-failed otherwise; invalid-range when the offset is at or past the end).
  from?: { offset: number; ifMatch: string };
}

// The first `size` bytes of a local file, read by the store itself: an adapter can reuse
// its buffers, where every chunk of a stream is a new allocation the heap keeps until the
// next GC (docs/BENCHMARKS.md). A file found shorter than `size` fails the
// put (it changed: the next cycle sends it again); bytes past `size` are left out.
export interface FileBody {
  file: FsPath;
  size: number;
}

export type PutBody = Uint8Array | string | Readable | FileBody;

export function isFileBody(body: PutBody): body is FileBody {
  return typeof body === 'object' && 'file' in body;
}

export function shrankError(key: string, read: number, size: number): Error {
  return new Error(`${key} shrank during upload (${read} of ${size} bytes)`);
}

export interface PutOptions {
  // x-amz-meta-*.
  metadata?: Record<string, string>;
  // Required for a stream body: the request is sent with this length.
  contentLength?: number;
  // Conditional writes (S3's If-Match / If-None-Match on PutObject): the put fails with
  // precondition-failed when the object no longer has this ETag, or already exists. The
  // session's ownership is decided with them (lease.ts).
  ifMatch?: string;
  ifNoneMatch?: '*';
  // The SHA-256 (hex) of a stream body, sent for the server to verify (rule 9). A buffer
  // or a file body is hashed by the store itself.
  sha256?: string;
}

// What the store confirmed it holds.
export interface PutResult {
  etag: string;
  // The SHA-256 (hex) of the bytes stored, as the server verified them (a multipart
  // upload: each part verified, this hash taken of the bytes as they were sent). Absent
  // only for a stream sent without one (the restore bundle, whose entries carry theirs).
  sha256?: string;
}

export interface ListedObject {
  key: string;
  size: number;
  etag?: string;
}

export interface ObjectStore {
  readonly bucket: string;
  get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead>;
  head(key: string, signal: AbortSignal): Promise<ObjectInfo>;
  put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<PutResult>;
  // In parts, for files large enough that a dropped connection should cost one part.
  putMultipart(key: string, body: Readable, options: PutOptions, signal: AbortSignal): Promise<PutResult>;
  // Rewrites the object onto itself with `info`'s metadata and headers, only if it still
  // has `info.etag` (precondition-failed otherwise): its lifecycle clock starts again.
  copyOnto(key: string, info: ObjectInfo, signal: AbortSignal): Promise<void>;
  // Copies another object of the bucket to `key` inside the store, metadata and headers
  // kept: a continuation's first pod seeds its prefix from its parent's.
  copy(sourceKey: string, key: string, signal: AbortSignal): Promise<void>;
  delete(key: string, signal: AbortSignal): Promise<void>;
  // Returns the keys the store reported it could not delete.
  deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }>;
  // Every object under the prefix, with full keys.
  list(prefix: string, signal: AbortSignal): Promise<ListedObject[]>;
}
