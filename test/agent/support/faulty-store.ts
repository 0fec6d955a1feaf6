import type { Readable } from 'node:stream';
import { LEASE_KEY } from '../../../src/agent/state/lease.js';
import { toStoreError } from '../../../src/agent/store/s3-errors.js';
import type { GetOptions, ListedObject, ObjectInfo, ObjectRead, ObjectStore, PutBody, PutOptions, PutResult } from '../../../src/agent/store/store.js';

// Runs before a call reaches the store, with the full object key: it may change the world
// (append to the file being uploaded, delete the object about to be read) or throw the
// error the call should fail with.
export type Fault = (command: string, key: string) => void | Promise<void>;

/** The agent's production store with a test's faults injected at the ObjectStore port. */
export class FaultyStore implements ObjectStore {
  readonly bucket: string;
  private faults: Fault[] = [];

  constructor(private readonly inner: ObjectStore & { close?(): void }) {
    this.bucket = inner.bucket;
  }

  inject(fault: Fault): void {
    this.faults.push(fault);
  }

  // Faults are the data's: the session's lease (lease.ts) passes untouched.
  private async before(command: string, key: string): Promise<void> {
    if (key.endsWith(LEASE_KEY)) return;
    for (const fault of this.faults) await fault(command, key);
  }

  async get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    await this.before('GetObject', key);
    return this.inner.get(key, options, signal);
  }

  async head(key: string, signal: AbortSignal): Promise<ObjectInfo> {
    await this.before('HeadObject', key);
    return this.inner.head(key, signal);
  }

  async put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    await this.before('PutObject', key);
    return this.inner.put(key, body, options, signal);
  }

  async putMultipart(key: string, body: Readable, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    await this.before('MultipartUpload', key);
    return this.inner.putMultipart(key, body, options, signal);
  }

  async copyOnto(key: string, info: ObjectInfo, signal: AbortSignal): Promise<void> {
    await this.before('CopyObject', key);
    return this.inner.copyOnto(key, info, signal);
  }

  async copy(sourceKey: string, key: string, signal: AbortSignal): Promise<void> {
    await this.before('CopyObject', key);
    return this.inner.copy(sourceKey, key, signal);
  }

  async delete(key: string, signal: AbortSignal): Promise<void> {
    await this.before('DeleteObject', key);
    return this.inner.delete(key, signal);
  }

  async deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }> {
    for (const key of keys) await this.before('DeleteObjects', key);
    return this.inner.deleteMany(keys, signal);
  }

  async list(prefix: string, signal: AbortSignal): Promise<ListedObject[]> {
    await this.before('ListObjectsV2', prefix);
    return this.inner.list(prefix, signal);
  }

  close(): void {
    this.inner.close?.();
  }
}

// What the production store throws when the endpoint refuses the connection.
export const connectionRefused = (): Error =>
  toStoreError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1'), { code: 'ECONNREFUSED', syscall: 'connect' })) as Error;
