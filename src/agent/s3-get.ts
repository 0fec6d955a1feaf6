import type { Agent, ClientRequest, IncomingHttpHeaders, IncomingMessage, RequestOptions } from 'node:http';
import { createRequire } from 'node:module';
import aws4 from 'aws4';
import { XMLParser } from 'fast-xml-parser';
import { toStoreError } from './s3-errors.js';
import { encodeKey, retryable, S3ResponseError, virtualHostable } from './s3-put.js';
import type { AgentSettings } from './settings.js';
import type { GetOptions, ListedObject, ObjectInfo, ObjectRead } from './store.js';

/*
 * GetObject, HeadObject and ListObjectsV2 without the AWS SDK: SigV4-signed (aws4)
 * requests on keep-alive sockets, as s3-put.ts does for PutObject. A restore is one GET per
 * object; through the SDK each cost ~1.5 ms of CPU (a middleware stack per command,
 * endpoint rules per request) and loading the SDK some 35 MiB of heap, which made a
 * crashed pod's restore of 10,000 small files slower than s5cmd's. Errors are thrown as
 * the SDK threw them (code, status, message), so s3-errors.ts classifies them the same.
 */

const require = createRequire(import.meta.url);

export type ReadSettings = Pick<AgentSettings, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey' | 'bucket'>;

// As the SDK client (s3-store.ts): a socket that takes this long to connect, or a request
// idle this long, fails; one more attempt after a server error or a dropped socket.
const CONNECT_TIMEOUT_MS = 5_000;
const IDLE_TIMEOUT_MS = 60_000;
const RETRY_DELAY_MS = 100;

// Configured as the SDK's own parser reads S3's answers: text kept verbatim (a key may be
// " 007" or "true"), XML's entities and character references decoded, each listed object
// an element of Contents even when a page holds one.
const xml = new XMLParser({
  ignoreAttributes: true,
  ignoreDeclaration: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: true,
  isArray: (_name, jpath) => jpath === 'ListBucketResult.Contents',
});

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

function readText(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.once('error', reject);
  });
}

// The SDK's reading of a failure: the body's Code and Message; without a body (a HEAD) a
// 404 is NotFound and any other status is named by its number.
function responseError(status: number, text: string, what: string): S3ResponseError {
  let parsed: { Error?: { Code?: unknown; Message?: unknown } } = {};
  try {
    if (text.trim() !== '') parsed = xml.parse(text) as typeof parsed;
  } catch {
    // Not XML (a proxy's page): the status says it.
  }
  const code = typeof parsed.Error?.Code === 'string' && parsed.Error.Code !== '' ? parsed.Error.Code : status === 404 ? 'NotFound' : String(status);
  const message = typeof parsed.Error?.Message === 'string' && parsed.Error.Message !== '' ? parsed.Error.Message : `${what}: HTTP ${status}`;
  return new S3ResponseError(code, message, { httpStatusCode: status });
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

export class ObjectReader {
  private readonly host: string;
  private readonly basePath: string;
  private readonly secure: boolean;
  private readonly address: { protocol: string; hostname: string; port: string };
  private readonly agentOptions: { keepAlive: true; maxSockets: number; maxFreeSockets: number };
  private readonly credentials: { accessKeyId: string; secretAccessKey: string };
  private transport: Promise<{ agent: Agent; request: (options: RequestOptions) => ClientRequest }> | undefined;

  constructor(
    private readonly settings: ReadSettings,
    workers: number,
  ) {
    const url = new URL(settings.endpoint);
    this.secure = url.protocol === 'https:';
    this.address = { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port };
    this.agentOptions = { keepAlive: true, maxSockets: workers, maxFreeSockets: workers };
    const endpointPath = url.pathname.replace(/\/+$/, '');
    // Custom endpoints (MinIO, Ceph, ...) are addressed by path, AWS by host name.
    if (url.hostname.endsWith('amazonaws.com') && virtualHostable(settings.bucket)) {
      this.host = `${settings.bucket}.${url.host}`;
      this.basePath = `${endpointPath}/`;
    } else {
      this.host = url.host;
      this.basePath = `${endpointPath}/${encodeKey(settings.bucket)}/`;
    }
    this.credentials = { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey };
  }

  async get(key: string, options: GetOptions, signal: AbortSignal): Promise<ObjectRead> {
    const from = options.from;
    const headers: Record<string, string> = from ? { Range: `bytes=${from.offset}-`, 'If-Match': from.ifMatch } : {};
    const response = await this.request('GET', this.basePath + encodeKey(key), headers, signal, `GetObject of ${key}`);
    const contentLength = numberHeader(response.headers, 'content-length');
    return {
      etag: header(response.headers, 'etag'),
      lastModified: dateHeader(response.headers, 'last-modified'),
      metadata: metadataOf(response.headers),
      contentLength,
      contentRange: header(response.headers, 'content-range'),
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
    const response = await this.request('HEAD', this.basePath + encodeKey(key), {}, signal, `HeadObject of ${key}`);
    response.resume();
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
      const response = await this.request('GET', `${this.basePath}?${query}`, {}, signal, `ListObjectsV2 of ${prefix}`);
      let page: ListPage;
      try {
        page = xml.parse(await readText(response)) as ListPage;
      } catch (error) {
        throw toStoreError(error);
      }
      const result = page.ListBucketResult ?? {};
      for (const object of result.Contents ?? []) {
        if (object.Key !== undefined) objects.push({ key: object.Key, size: Number(object.Size ?? 0), etag: object.ETag });
      }
      token = result.IsTruncated === 'true' ? result.NextContinuationToken : undefined;
    } while (token !== undefined);
    return objects;
  }

  close(): void {
    void this.transport?.then(({ agent }) => agent.destroy());
  }

  // Loaded on the first request and through require, as in s3-put.ts: an ES import of
  // node:http loads undici (~13 MiB), which these requests do not use.
  private connect() {
    this.transport ??= Promise.resolve().then(() => {
      const { Agent, request } = require(this.secure ? 'node:https' : 'node:http') as typeof import('node:http');
      return { agent: new Agent(this.agentOptions), request };
    });
    return this.transport;
  }

  // A success's response, its body unread; a failure thrown as a StoreError after one more
  // attempt where the SDK would have made one.
  private async request(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<IncomingMessage> {
    try {
      return await this.attempt(method, path, headers, signal, what);
    } catch (error) {
      if (signal.aborted || !retryable(error)) throw toStoreError(error);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * (1 + Math.random())));
      try {
        return await this.attempt(method, path, headers, signal, what);
      } catch (again) {
        throw toStoreError(again);
      }
    }
  }

  private async attempt(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<IncomingMessage> {
    const transport = await this.connect();
    const signed = aws4.sign({ host: this.host, path, method, service: 's3', region: this.settings.region, headers: { Host: this.host, ...headers } }, this.credentials);
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = transport.request({
        ...this.address,
        agent: transport.agent,
        method,
        path: signed.path,
        headers: signed.headers as Record<string, string | number>,
        signal,
        timeout: IDLE_TIMEOUT_MS,
      });
      request.once('response', resolve);
      request.once('error', reject);
      request.once('timeout', () => request.destroy(Object.assign(new Error(`${what} timed out`), { name: 'TimeoutError' })));
      request.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(
          () => request.destroy(Object.assign(new Error(`connecting to ${this.settings.endpoint} timed out`), { name: 'TimeoutError' })),
          CONNECT_TIMEOUT_MS,
        );
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      request.end();
    });
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) return response;
    throw responseError(status, await readText(response), what);
  }
}
