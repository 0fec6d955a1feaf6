import type { Readable } from 'node:stream';
import { ObjectPut } from './s3-put.js';
import type { S3Store } from './s3-store.js';
import type { AgentSettings } from './settings.js';
import type { GetOptions, ObjectInfo, ObjectRead, ObjectStore, PutBody, PutOptions } from './store.js';

/*
 * The agent's store: PutObject, sync's one request per changed file, goes through the
 * lean client (s3-put.ts); the other calls go through the SDK adapter, loaded on the first
 * of them. A no-change cycle makes no request and so never loads the SDK (~0.2 s and
 * ~35 MiB of every start).
 */
export class AgentStore implements ObjectStore {
  readonly bucket: string;
  private readonly putter: ObjectPut;
  private sdk: Promise<{ store: S3Store; close: () => void }> | undefined;

  constructor(
    private readonly settings: AgentSettings,
    private readonly workers: number,
  ) {
    this.bucket = settings.bucket;
    this.putter = new ObjectPut(settings, workers);
  }

  private async sdkStore(): Promise<S3Store> {
    this.sdk ??= import('./s3-store.js').then(({ createS3Client, S3Store }) => {
      const client = createS3Client(this.settings, this.workers);
      return { store: new S3Store(client, this.settings.bucket, this.settings), close: () => client.destroy() };
    });
    return (await this.sdk).store;
  }

  put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<void> {
    return this.putter.put(key, body, options, signal);
  }

  async get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    return (await this.sdkStore()).get(key, options, signal);
  }

  async head(key: string, signal: AbortSignal): Promise<ObjectInfo> {
    return (await this.sdkStore()).head(key, signal);
  }

  async putMultipart(key: string, body: Readable, options: PutOptions, signal: AbortSignal): Promise<void> {
    return (await this.sdkStore()).putMultipart(key, body, options, signal);
  }

  async copyOnto(key: string, info: ObjectInfo, signal: AbortSignal): Promise<void> {
    return (await this.sdkStore()).copyOnto(key, info, signal);
  }

  async delete(key: string, signal: AbortSignal): Promise<void> {
    return (await this.sdkStore()).delete(key, signal);
  }

  async deleteMany(keys: readonly string[], signal: AbortSignal): Promise<{ failed: Set<string> }> {
    return (await this.sdkStore()).deleteMany(keys, signal);
  }

  async list(prefix: string, signal: AbortSignal): Promise<Array<{ key: string; size: number }>> {
    return (await this.sdkStore()).list(prefix, signal);
  }

  // Releases the sockets of both clients.
  close(): void {
    this.putter.close();
    void this.sdk?.then(({ close }) => close());
  }
}
