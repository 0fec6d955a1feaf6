import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { S3Endpoint } from './s3-endpoint.js';
import { wholeObjectSha256 } from '../../shared/checksum.js';
import { notS3Answer, toStoreError } from './s3-errors.js';
import { readText, send } from './s3-request.js';
import { parseXml } from './s3-xml.js';
import type { GetOptions, ListedObject, ObjectInfo, ObjectRead } from './store.js';
import { streamedThrough } from '../../shared/gc-pacing.js';

/*
 * GetObject, HeadObject and ListObjectsV2 without the AWS SDK: SigV4-signed (aws4)
 * requests on keep-alive sockets, as s3-put.ts does for PutObject. A restore is one GET per
 * object; through the SDK each one built a middleware stack and evaluated endpoint rules,
 * and loading the SDK weighed on the heap, which made a crashed pod's restore of many
 * small files slower than s5cmd's (docs/BENCHMARKS.md). Errors are read as the
 * SDK read them (code, status, message), so s3-errors.ts classifies them the same.
 */

interface ListPage {
  ListBucketResult?: {
    IsTruncated?: string;
    NextContinuationToken?: string;
    Contents?: Array<{ Key?: string; Size?: string; ETag?: string }>;
  };
}

// RFC 3986 for a query value, as SigV4 canonicalises it.
function encodeQuery(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function numberHeader(headers: IncomingHttpHeaders, name: string): number | undefined {
  const value = header(headers, name);
  return value === undefined || value === '' ? undefined : Number(value);
}

function dateHeader(headers: IncomingHttpHeaders, name: string): Date | undefined {
  const value = header(headers, name);
  return value === undefined ? undefined : new Date(value);
}

function storedChecksum(headers: IncomingHttpHeaders, whole: boolean): { storedSha256?: string } {
  const sha256 = whole ? wholeObjectSha256(header(headers, 'x-amz-checksum-sha256')) : undefined;
  return sha256 === undefined ? {} : { storedSha256: sha256 };
}

// x-amz-meta-* with the prefix dropped; Node gives header names in lower case, as the SDK's.
function metadataOf(headers: IncomingHttpHeaders): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = header(headers, name) ?? '';
  }
  return metadata;
}

async function* mappedBody(response: IncomingMessage): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of response) yield chunk as Buffer;
  } catch (error) {
    throw toStoreError(error);
  }
}

// A small object's bytes in one buffer of its announced length, not a list of socket
// chunks concatenated at the end.
async function wholeBody(response: IncomingMessage, length: number | undefined): Promise<Uint8Array> {
  if (length === undefined) {
    const chunks: Buffer[] = [];
    for await (const chunk of response as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
  const bytes = Buffer.allocUnsafe(length);
  let filled = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (filled + chunk.length > length) throw new Error(`more than the announced ${length} bytes`);
    chunk.copy(bytes, filled);
    filled += chunk.length;
  }
  return filled === length ? bytes : bytes.subarray(0, filled);
}

// S3 names every object it answers for with an ETag: a 2xx without one came from
// something else (a maintenance page, a captive proxy), which holds nothing (rule 10).
function s3Answered(response: IncomingMessage, what: string): void {
  if (header(response.headers, 'etag')) return;
  response.destroy();
  const status = response.statusCode ?? 0;
  throw toStoreError(notS3Answer(`${what}: HTTP ${status} without an ETag`, status));
}

// One page of a listing. An HTML page or any other document is not "no objects" (rule 10).
async function listPage(response: IncomingMessage, prefix: string): Promise<NonNullable<ListPage['ListBucketResult']>> {
  let text: string;
  try {
    text = await readText(response);
  } catch (error) {
    throw toStoreError(error);
  }
  const result = (parseXml(text) as ListPage | undefined)?.ListBucketResult;
  if (typeof result === 'object' && result !== null) return result;
  const status = response.statusCode ?? 0;
  throw toStoreError(notS3Answer(`ListObjectsV2 of ${prefix}: HTTP ${status} without a ListBucketResult (${describeBody(text)})`, status));
}

// What came instead of an S3 document, for the log: its first words.
function describeBody(text: string): string {
  const start = text.trim().slice(0, 60).replace(/\s+/g, ' ');
  return start === '' ? 'empty body' : `body starts "${start}"`;
}

export class ObjectReader {
  constructor(private readonly endpoint: S3Endpoint) {}

  async get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    const from = options.from;
    // The stored checksum is asked for with the whole object: it checks a restore whose
    // manifest holds no hash (objects other tools wrote).
    const headers: Record<string, string> = from ? { Range: `bytes=${from.offset}-`, 'If-Match': from.ifMatch } : { 'x-amz-checksum-mode': 'ENABLED' };
    const response = await this.request('GET', this.endpoint.keyPath(key), headers, signal, `GetObject of ${key}`);
    s3Answered(response, `GetObject of ${key}`);
    const contentLength = numberHeader(response.headers, 'content-length');
    return {
      etag: header(response.headers, 'etag'),
      lastModified: dateHeader(response.headers, 'last-modified'),
      metadata: metadataOf(response.headers),
      contentLength,
      contentRange: header(response.headers, 'content-range'),
      ...storedChecksum(response.headers, from === undefined),
      body: mappedBody(response),
      bytes: async () => {
        try {
          return await wholeBody(response, contentLength);
        } catch (error) {
          throw toStoreError(error);
        }
      },
      discard: () => response.destroy(),
    };
  }

  async head(key: string, signal: AbortSignal): Promise<ObjectInfo> {
    const response = await this.request('HEAD', this.endpoint.keyPath(key), {}, signal, `HeadObject of ${key}`);
    response.resume();
    s3Answered(response, `HeadObject of ${key}`);
    const headers = response.headers;
    return {
      size: numberHeader(headers, 'content-length') ?? 0,
      etag: header(headers, 'etag'),
      lastModified: dateHeader(headers, 'last-modified'),
      metadata: metadataOf(headers),
      headers: {
        contentType: header(headers, 'content-type'),
        contentEncoding: header(headers, 'content-encoding'),
        contentDisposition: header(headers, 'content-disposition'),
        contentLanguage: header(headers, 'content-language'),
        cacheControl: header(headers, 'cache-control'),
      },
    };
  }

  // Every object under the prefix, a page of up to 1,000 at a time.
  async list(prefix: string, signal: AbortSignal): Promise<ListedObject[]> {
    const objects: ListedObject[] = [];
    let token: string | undefined;
    do {
      const query = `list-type=2&prefix=${encodeQuery(prefix)}${token === undefined ? '' : `&continuation-token=${encodeQuery(token)}`}`;
      const response = await this.request('GET', this.endpoint.bucketPath(query), {}, signal, `ListObjectsV2 of ${prefix}`);
      const result = await listPage(response, prefix);
      for (const object of result.Contents ?? []) {
        if (object.Key !== undefined) objects.push({ key: object.Key, size: Number(object.Size ?? 0), etag: object.ETag });
      }
      // A page's parse is megabytes of objects that die at once but outlive the scavenges
      // during it; a long listing left tens of MiB of them for a full GC to find.
      streamedThrough();
      token = result.IsTruncated === 'true' ? result.NextContinuationToken : undefined;
    } while (token !== undefined);
    return objects;
  }

  private request(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<IncomingMessage> {
    return send(this.endpoint, { method, path, headers, what }, signal);
  }
}
