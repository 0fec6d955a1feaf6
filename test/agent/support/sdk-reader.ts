import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { CredentialSource } from '../../../src/agent/store/credentials.js';
import { S3Endpoint, type EndpointSettings } from '../../../src/agent/store/s3-endpoint.js';
import { toStoreError } from '../../../src/agent/store/s3-errors.js';
import { createSdkClient } from '../../../src/agent/store/sdk-writes.js';
import type { GetOptions, ListedObject, ObjectInfo, ObjectRead } from '../../../src/agent/store/store.js';

// The reads as the AWS SDK makes them, mapped as the adapter maps failures: the reference
// the lean reader (s3-get.ts) is compared with on a real server. The agent's own adapter
// made them so until the lean client took them over.

/** An SDK client with the agent's configuration (sdk-writes.ts) for these settings. */
export function sdkClientFor(settings: EndpointSettings, workers: number): S3Client {
  const credentials = new CredentialSource(settings);
  return createSdkClient(new S3Endpoint(settings, workers, credentials), credentials);
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

export class SdkReader {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
  ) {}

  async get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    const from = options.from;
    const response = await mapped(
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

  async list(prefix: string, signal: AbortSignal): Promise<ListedObject[]> {
    const objects: ListedObject[] = [];
    let token: string | undefined;
    do {
      const page = await mapped(this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal }));
      for (const object of page.Contents ?? []) if (object.Key !== undefined) objects.push({ key: object.Key, size: object.Size ?? 0, etag: object.ETag });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return objects;
  }
}
