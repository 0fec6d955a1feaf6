import type { Readable } from 'node:stream';
import { LEASE_KEY } from '../../../src/agent/state/lease.js';
import type { GetOptions, ListedObject, ObjectInfo, ObjectRead, ObjectStore, PutBody, PutOptions, PutResult } from '../../../src/agent/store/store.js';

export interface RecordedRequest {
  // The S3 operation, as MinIO's and AWS's logs name it.
  command: string;
  // Relative to the session prefix ({namespace}/{session}/).
  key: string;
}

const relative = (key: string) => key.split('/').slice(2).join('/');

/**
 * The agent's own store with every call written down, so integration tests assert the
 * requests the production store (not a test-only client) sends.
 */
export class RecordingStore implements ObjectStore {
  readonly bucket: string;
  private listeners: { requests: RecordedRequest[]; lease: boolean }[] = [];

  constructor(private readonly inner: ObjectStore & { close?(): void }) {
    this.bucket = inner.bucket;
  }

  /**
   * Requests from now on, in order. The session's lease (lease.ts) is protocol traffic
   * around the data's requests: left out unless `lease` asks for it.
   */
  record(options: { lease?: boolean } = {}): RecordedRequest[] {
    const requests: RecordedRequest[] = [];
    this.listeners.push({ requests, lease: options.lease === true });
    return requests;
  }

  private note(command: string, key: string): void {
    const lease = key.endsWith(LEASE_KEY);
    for (const listener of this.listeners) if (listener.lease || !lease) listener.requests.push({ command, key: relative(key) });
  }

  get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    this.note('GetObject', key);
    return this.inner.get(key, options, signal);
  }

  head(key: string, signal: AbortSignal): Promise<ObjectInfo> {
    this.note('HeadObject', key);
    return this.inner.head(key, signal);
  }

  put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    this.note('PutObject', key);
    return this.inner.put(key, body, options, signal);
  }

  putMultipart(key: string, body: Readable, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    this.note('MultipartUpload', key);
    return this.inner.putMultipart(key, body, options, signal);
  }

  copyOnto(key: string, info: ObjectInfo, signal: AbortSignal): Promise<void> {
    this.note('CopyObject', key);
    return this.inner.copyOnto(key, info, signal);
  }

  copy(sourceKey: string, key: string, signal: AbortSignal): Promise<void> {
    this.note('CopyObject', key);
    return this.inner.copy(sourceKey, key, signal);
  }

  delete(key: string, signal: AbortSignal): Promise<void> {
    this.note('DeleteObject', key);
    return this.inner.delete(key, signal);
  }

  deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }> {
    for (const key of keys) this.note('DeleteObjects', key);
    return this.inner.deleteMany(keys, signal);
  }

  list(prefix: string, signal: AbortSignal): Promise<ListedObject[]> {
    this.note('ListObjectsV2', prefix);
    return this.inner.list(prefix, signal);
  }

  close(): void {
    this.inner.close?.();
  }
}
