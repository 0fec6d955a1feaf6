import { createHash } from 'node:crypto';
import { LEASE_KEY } from '../../../src/agent/state/lease.js';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  isFileBody,
  shrankError,
  StoreError,
  type PutBody,
  type GetOptions,
  type ListedObject,
  type ObjectInfo,
  type ObjectRead,
  type ObjectStore,
  type PutOptions,
  type PutResult,
  type StoreErrorKind,
} from '../../../src/agent/store/store.js';

// The object store of the unit tier: S3's answers where the agent depends on them (ETags,
// ranges, If-Match, 403 for a missing key without s3:ListBucket), and faults on demand.

export type Operation = 'get' | 'head' | 'put' | 'putMultipart' | 'copyOnto' | 'copy' | 'delete' | 'deleteMany' | 'list';

interface StoredObject {
  body: Buffer;
  etag: string;
  lastModified: Date;
  metadata: Record<string, string>;
  contentType?: string;
}

const WORDS: Record<StoreErrorKind, string> = {
  'not-found': 'error',
  'access-denied': 'access denied',
  credentials: 'access denied',
  'precondition-failed': 'error',
  'invalid-range': 'error',
  other: 'error',
};

export function storeError(kind: StoreErrorKind, detail: string = kind): StoreError {
  return new StoreError(kind, { kind: WORDS[kind] as StoreError['failure']['kind'], detail });
}

async function bytesOf(key: string, body: PutBody): Promise<Buffer> {
  if (typeof body === 'string') return Buffer.from(body);
  if (isFileBody(body)) {
    const bytes = await readFile(body.file);
    if (bytes.length < body.size) throw shrankError(key, bytes.length, body.size);
    return bytes.subarray(0, body.size);
  }
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export class MemoryStore implements ObjectStore {
  readonly bucket = 'memory';
  readonly objects = new Map<string, StoredObject>();
  // Every call, in order, with its key (the first of a deleteMany) and a ranged get's offset.
  readonly calls: Array<{ op: Operation; key: string; from?: number }> = [];
  // The same for the session's lease (lease.ts).
  readonly leaseCalls: Array<{ op: Operation; key: string }> = [];
  // `from`..`to`: the counts of the calls of `op` that fail.
  private readonly faults: Array<{ op: Operation; from: number; to: number; error: StoreError }> = [];
  private readonly counts = new Map<Operation, number>();
  private readonly refused = new Set<string>();
  private listingDenied = false;
  private missingIsDenied = false;

  /** The nth call (1-based, counted from now) of `op` fails with `error`. */
  failNth(op: Operation, nth: number, error: StoreError = storeError('other', 'injected failure')): this {
    const at = (this.counts.get(op) ?? 0) + nth;
    this.faults.push({ op, from: at, to: at, error });
    return this;
  }

  /** Every call of `op` fails from now on. */
  failAll(op: Operation, error: StoreError = storeError('other', 'injected failure')): this {
    this.faults.push({ op, from: (this.counts.get(op) ?? 0) + 1, to: Infinity, error });
    return this;
  }

  /** A policy without s3:ListBucket: listing is denied and, as on AWS, a missing key answers 403. */
  withoutListBucket(): this {
    this.listingDenied = true;
    this.missingIsDenied = true;
    return this;
  }

  /** A policy denying this one key (reads and writes), as a per-object Deny would. */
  refuse(key: string): this {
    this.refused.add(key);
    return this;
  }

  /** Gone behind the agent's back (expired by the lifecycle rule, deleted by hand). */
  lose(key: string): void {
    this.objects.delete(key);
  }

  /** Makes an object look written `ms` ago. */
  age(key: string, ms: number): void {
    const object = this.objects.get(key);
    if (object) object.lastModified = new Date(Date.now() - ms);
  }

  text(key: string): string | undefined {
    return this.objects.get(key)?.body.toString('utf8');
  }

  // The session's files and the agent's own objects, the lease aside.
  keys(prefix = ''): string[] {
    return [...this.objects.keys()].filter((key) => key.startsWith(prefix) && !key.endsWith(LEASE_KEY)).map((key) => key.slice(prefix.length)).sort();
  }

  private call(op: Operation, key: string, signal: AbortSignal, from?: number): void {
    if (signal.aborted) throw signal.reason;
    // The session's lease is protocol traffic around every cycle: kept apart, so the
    // tests of the data path count and fault the data's own requests.
    if (key.endsWith(LEASE_KEY)) {
      this.leaseCalls.push({ op, key });
      if (this.refused.has(key)) throw storeError('access-denied', `AccessDenied: ${key}`);
      return;
    }
    this.calls.push(from === undefined ? { op, key } : { op, key, from });
    const count = (this.counts.get(op) ?? 0) + 1;
    this.counts.set(op, count);
    const fault = this.faults.find((candidate) => candidate.op === op && candidate.from <= count && count <= candidate.to);
    if (fault) throw fault.error;
    if (this.refused.has(key)) throw storeError('access-denied', `AccessDenied: ${key}`);
  }

  private find(key: string): StoredObject {
    const object = this.objects.get(key);
    if (object) return object;
    throw this.missingIsDenied ? storeError('access-denied', `AccessDenied: ${key}`) : storeError('not-found', `NoSuchKey: ${key}`);
  }

  private store(key: string, body: Buffer, metadata: Record<string, string>, contentType?: string): void {
    const etag = `"${createHash('md5').update(body).digest('hex')}"`;
    this.objects.set(key, { body, etag, lastModified: new Date(), metadata: { ...metadata }, contentType });
  }

  async get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    this.call('get', key, signal, options.from?.offset);
    const object = this.find(key);
    let body = object.body;
    let contentRange: string | undefined;
    if (options.from) {
      if (options.from.ifMatch !== object.etag) throw storeError('precondition-failed');
      if (options.from.offset >= object.body.length) throw storeError('invalid-range');
      body = object.body.subarray(options.from.offset);
      contentRange = `bytes ${options.from.offset}-${object.body.length - 1}/${object.body.length}`;
    }
    const stream = Readable.from([body]);
    return {
      etag: object.etag,
      lastModified: object.lastModified,
      metadata: { ...object.metadata },
      contentLength: body.length,
      contentRange,
      body: stream,
      bytes: async () => new Uint8Array(body),
      discard: () => stream.destroy(),
    };
  }

  async head(key: string, signal: AbortSignal): Promise<ObjectInfo> {
    this.call('head', key, signal);
    const object = this.find(key);
    return {
      size: object.body.length,
      etag: object.etag,
      lastModified: object.lastModified,
      metadata: { ...object.metadata },
      headers: { contentType: object.contentType },
    };
  }

  async put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    this.call('put', key, signal);
    const bytes = await bytesOf(key, body);
    // As S3 does, a body of another length than announced is refused.
    if (options.contentLength !== undefined && bytes.length !== options.contentLength) throw storeError('other', `${key}: ${bytes.length} bytes, ${options.contentLength} announced`);
    const existing = this.objects.get(key);
    if (options.ifNoneMatch === '*' && existing) throw storeError('precondition-failed');
    if (options.ifMatch !== undefined && existing?.etag !== options.ifMatch) throw storeError(existing ? 'precondition-failed' : 'not-found');
    // As S3 does with x-amz-checksum-sha256, a body that does not hash to it is refused.
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (options.sha256 !== undefined && options.sha256 !== sha256) throw storeError('other', `BadDigest: ${key}`);
    this.store(key, bytes, options.metadata ?? {});
    return { etag: this.objects.get(key)!.etag, sha256 };
  }

  async putMultipart(key: string, body: Readable, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    this.call('putMultipart', key, signal);
    const bytes = await bytesOf(key, body);
    this.store(key, bytes, options.metadata ?? {});
    return { etag: this.objects.get(key)!.etag, sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  async copyOnto(key: string, info: ObjectInfo, signal: AbortSignal): Promise<void> {
    this.call('copyOnto', key, signal);
    const object = this.find(key);
    if (info.etag !== undefined && info.etag !== object.etag) throw storeError('precondition-failed');
    this.store(key, object.body, info.metadata, info.headers.contentType);
  }

  async copy(sourceKey: string, key: string, signal: AbortSignal): Promise<void> {
    this.call('copy', key, signal);
    const object = this.find(sourceKey);
    this.store(key, object.body, object.metadata, object.contentType);
  }

  async delete(key: string, signal: AbortSignal): Promise<void> {
    this.call('delete', key, signal);
    this.objects.delete(key);
  }

  async deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }> {
    this.call('deleteMany', keys[0] ?? '', signal);
    for (const key of keys) this.objects.delete(key);
    return { failed: new Set() };
  }

  async list(prefix: string, signal: AbortSignal): Promise<ListedObject[]> {
    this.call('list', prefix, signal);
    if (this.listingDenied) throw storeError('access-denied', 'AccessDenied: ListObjectsV2');
    return [...this.objects]
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, object]) => ({ key, size: object.body.length, etag: object.etag }))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
  }
}
