import type { Readable } from 'node:stream';
import { CredentialSource } from './credentials.js';
import { S3Endpoint } from './s3-endpoint.js';
import { ObjectDeleter } from './s3-delete.js';
import { ObjectReader } from './s3-get.js';
import { ObjectPut } from './s3-put.js';
import { toStoreError } from './s3-errors.js';
import type { SdkWrites } from './sdk-writes.js';
import type { AgentSettings } from '../settings.js';
import type { GetOptions, ListedObject, ObjectInfo, ObjectRead, ObjectStore, PutBody, PutOptions, PutResult } from './store.js';

/*
 * The S3 adapter of the agent and of the user tools: PUT, GET, HEAD, list and deletes go
 * through the lean client (s3-put.ts, s3-get.ts, s3-delete.ts over s3-endpoint.ts); the two
 * calls only the SDK makes, multipart upload and copy, through sdk-writes.ts, loaded on
 * the first of them. A restore or a cycle without them never loads the SDK (its start-up
 * time and heap: docs/BENCHMARKS.md).
 */
export class AgentStore implements ObjectStore {
  readonly bucket: string;
  // One configuration and one socket pool, sized to the transfer pool, for both clients.
  private readonly endpoint: S3Endpoint;
  private readonly putter: ObjectPut;
  private readonly reader: ObjectReader;
  private readonly deleter: ObjectDeleter;
  private sdk: Promise<{ writes: SdkWrites; close: () => void }> | undefined;
  // One credential chain for both clients; the lean ones sign with what `ready` fetched.
  private readonly credentials: CredentialSource;

  constructor(
    private readonly settings: AgentSettings,
    workers: number,
  ) {
    this.bucket = settings.bucket;
    this.credentials = new CredentialSource(settings);
    this.endpoint = new S3Endpoint(settings, workers, this.credentials);
    this.putter = new ObjectPut(this.endpoint, settings);
    this.reader = new ObjectReader(this.endpoint);
    this.deleter = new ObjectDeleter(this.endpoint);
  }

  private async sdkWrites(): Promise<SdkWrites> {
    this.sdk ??= import('./sdk-writes.js').then(({ createSdkClient, SdkWrites }) => {
      const client = createSdkClient(this.endpoint, this.credentials);
      return { writes: new SdkWrites(client, this.settings.bucket, this.settings), close: () => client.destroy() };
    });
    return (await this.sdk).writes;
  }

  async put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    await this.ready();
    return this.putter.put(key, body, options, signal);
  }

  async get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    await this.ready();
    return this.reader.get(key, options, signal);
  }

  async head(key: string, signal: AbortSignal): Promise<ObjectInfo> {
    await this.ready();
    return this.reader.head(key, signal);
  }

  async putMultipart(key: string, body: Readable, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    return (await this.sdkWrites()).putMultipart(key, body, options, signal);
  }

  async copyOnto(key: string, info: ObjectInfo, signal: AbortSignal): Promise<void> {
    return (await this.sdkWrites()).copyOnto(key, info, signal);
  }

  async copy(sourceKey: string, key: string, signal: AbortSignal): Promise<void> {
    return (await this.sdkWrites()).copy(sourceKey, key, signal);
  }

  async delete(key: string, signal: AbortSignal): Promise<void> {
    await this.ready();
    return this.deleter.delete(key, signal);
  }

  async deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }> {
    await this.ready();
    return this.deleter.deleteMany(keys, signal);
  }

  async list(prefix: string, signal: AbortSignal): Promise<ListedObject[]> {
    await this.ready();
    return this.reader.list(prefix, signal);
  }

  // Credentials fetched (or refreshed before expiry) for the lean requests, which sign
  // synchronously; a chain that cannot produce them fails the call as a StoreError.
  private async ready(): Promise<void> {
    try {
      await this.credentials.get();
    } catch (error) {
      throw toStoreError(error);
    }
  }

  // Releases the socket pool both clients share.
  close(): void {
    this.endpoint.close();
    void this.sdk?.then(({ close }) => close());
  }
}
