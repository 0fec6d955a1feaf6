import { createHash } from 'node:crypto';
import type { Agent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import aws4 from 'aws4';
import { contentTypeFor } from './content-type.js';
import { toStoreError } from './s3-errors.js';
import type { AgentSettings } from './settings.js';
import { isFileBody, shrankError, type FileBody, type PutBody, type PutOptions } from './store.js';

/*
 * PutObject without the AWS SDK: a SigV4-signed (aws4) request on a keep-alive socket.
 * Sync's hot path is one PutObject per changed file; through the SDK each one allocated
 * some 250 KB (a middleware stack built per command, endpoint rules evaluated per request),
 * which at 10,000 files kept ~200 MiB of garbage in the heap, and loading the SDK cost
 * ~0.2 s of every start. Everything else (GET, list, copy, delete, multipart) stays with
 * the SDK (s3-store.ts), loaded only when a cycle needs it.
 */

const require = createRequire(import.meta.url);

export type PutSettings = Pick<AgentSettings, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey' | 'bucket' | 'sse' | 'sseKmsKeyId'>;

// As the SDK client (s3-store.ts): a socket that takes this long to connect, or a request
// idle this long, fails.
const CONNECT_TIMEOUT_MS = 5_000;
const IDLE_TIMEOUT_MS = 60_000;
// One more attempt after a server error or a dropped socket (the SDK's maxAttempts 2), for
// bodies that can be sent again; a stream is consumed by the first attempt.
const RETRY_DELAY_MS = 100;
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
// A file body is read into one buffer of this size, reused for the whole file.
const FILE_CHUNK = 256 * 1024;

// S3's URI encoding of a key: every byte but the unreserved characters, '/' kept.
export function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

// A bucket AWS can address as a host name over TLS (no dots: the wildcard certificate
// covers one label); the SDK falls back to the path for the others, as this does.
export function virtualHostable(bucket: string): boolean {
  return /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket);
}

export class S3ResponseError extends Error {
  constructor(
    readonly Code: string,
    message: string,
    readonly $metadata: { httpStatusCode: number },
  ) {
    super(message);
    this.name = Code;
  }
}

function xmlField(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
}

// The body of a success is empty and only drained (the socket goes back to the pool); an
// error's is a small XML document.
function readBody(response: IncomingMessage, keep: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    if (keep) response.on('data', (chunk: Buffer) => chunks.push(chunk));
    else response.resume();
    response.once('end', () => resolve(keep ? Buffer.concat(chunks).toString('utf8') : ''));
    response.once('error', reject);
  });
}

export class ObjectPut {
  private readonly secure: boolean;
  private readonly host: string;
  private readonly basePath: string;
  // Where requests go, parsed once rather than from the endpoint URL on every request.
  private readonly address: { protocol: string; hostname: string; port: string };
  private readonly agentOptions: { keepAlive: true; maxSockets: number; maxFreeSockets: number };
  private transport: Promise<{ agent: Agent; request: (options: RequestOptions) => ClientRequest }> | undefined;
  private readonly credentials: { accessKeyId: string; secretAccessKey: string };
  private readonly encryption: Record<string, string>;

  constructor(
    private readonly settings: PutSettings,
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
    this.encryption = {};
    if (settings.sse !== undefined) {
      this.encryption['x-amz-server-side-encryption'] = settings.sse;
      if (settings.sseKmsKeyId !== undefined) this.encryption['x-amz-server-side-encryption-aws-kms-key-id'] = settings.sseKmsKeyId;
    }
  }

  // A stream body needs options.contentLength. A buffer or a file is sent once more after
  // a server error or a dropped socket; a stream is consumed by the first attempt.
  async put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
    const source: Source = bytes ?? (body as Readable | FileBody);
    try {
      await this.send(key, source, options, signal);
    } catch (error) {
      if (!(bytes || isFileBody(source)) || signal.aborted || !retryable(error)) throw toStoreError(error);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * (1 + Math.random())));
      try {
        await this.send(key, source, options, signal);
      } catch (again) {
        throw toStoreError(again);
      }
    }
  }

  close(): void {
    void this.transport?.then(({ agent }) => agent.destroy());
  }

  // Loaded on the first request, and through require: an ES import of node:http builds
  // its module namespace, whose lazy exports load undici (~13 MiB and ~40 ms), which
  // neither a cycle with nothing to upload nor PutObject needs. Sockets are kept alive
  // and sized to the transfer pool, so a cycle of many small files reuses connections.
  private connect() {
    this.transport ??= Promise.resolve().then(() => {
      const { Agent, request } = require(this.secure ? 'node:https' : 'node:http') as typeof import('node:http');
      return { agent: new Agent(this.agentOptions), request };
    });
    return this.transport;
  }

  private async send(key: string, source: Source, options: PutOptions, signal: AbortSignal): Promise<void> {
    const bytes = source instanceof Uint8Array ? source : undefined;
    const length = bytes?.length ?? (isFileBody(source) ? source.size : options.contentLength);
    if (length === undefined) throw new Error(`PutObject of ${key}: a stream body needs its length`);
    const headers: Record<string, string | number> = {
      Host: this.host,
      'Content-Type': contentTypeFor(key),
      'Content-Length': length,
      // A buffer is signed with its hash, as the SDK does; a stream or a file is not read
      // twice to hash it first.
      'X-Amz-Content-Sha256': bytes ? createHash('sha256').update(bytes).digest('hex') : 'UNSIGNED-PAYLOAD',
      ...this.encryption,
    };
    for (const [name, value] of Object.entries(options.metadata ?? {})) headers[`x-amz-meta-${name}`] = value;
    const signed = aws4.sign(
      { host: this.host, path: this.basePath + encodeKey(key), method: 'PUT', service: 's3', region: this.settings.region, headers },
      this.credentials,
    );
    // Opened before the request, so a file that cannot be opened fails with its own error
    // (ENOENT: gone since the walk) without a request.
    const file = isFileBody(source) ? await open(source.file, 'r') : undefined;
    try {
      await this.exchange(key, source, file, signed, signal);
    } finally {
      await file?.close();
    }
  }

  private async exchange(key: string, source: Source, file: FileHandle | undefined, signed: aws4.Request, signal: AbortSignal): Promise<void> {
    const transport = await this.connect();
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = transport.request({
        ...this.address,
        agent: transport.agent,
        method: 'PUT',
        path: signed.path,
        headers: signed.headers as Record<string, string | number>,
        signal,
        timeout: IDLE_TIMEOUT_MS,
      });
      request.once('response', resolve);
      request.once('error', reject);
      request.once('timeout', () => request.destroy(Object.assign(new Error(`PutObject of ${key} timed out`), { name: 'TimeoutError' })));
      request.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(
          () => request.destroy(Object.assign(new Error(`connecting to ${this.settings.endpoint} timed out`), { name: 'TimeoutError' })),
          CONNECT_TIMEOUT_MS,
        );
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      if (source instanceof Uint8Array) {
        request.end(source);
      } else if (isFileBody(source) && file) {
        sendFile(file, source.size, key, request).catch((error: unknown) => request.destroy(error as Error));
      } else {
        const stream = source as Readable;
        // A file that cannot be read fails with its own error (the file's, not the store's).
        stream.once('error', (error) => request.destroy(error));
        stream.pipe(request);
      }
    });
    const status = response.statusCode ?? 0;
    const ok = status >= 200 && status < 300;
    const text = await readBody(response, !ok);
    if (ok) return;
    const code = xmlField(text, 'Code') ?? (status === 403 ? 'AccessDenied' : status === 404 ? 'NotFound' : `HTTP${status}`);
    throw new S3ResponseError(code, xmlField(text, 'Message') ?? `PutObject of ${key}: HTTP ${status}`, { httpStatusCode: status });
  }
}

type Source = Uint8Array | Readable | FileBody;

// Each chunk is read into the same buffer once the previous one has left for the socket.
async function sendFile(file: FileHandle, size: number, key: string, request: ClientRequest): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(FILE_CHUNK, Math.max(size, 1)));
  let sent = 0;
  while (sent < size) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, size - sent), sent);
    if (bytesRead === 0) throw shrankError(key, sent, size);
    await new Promise<void>((resolve, reject) => request.write(buffer.subarray(0, bytesRead), (error) => (error ? reject(error) : resolve())));
    sent += bytesRead;
  }
  request.end();
}

export function retryable(error: unknown): boolean {
  if (error instanceof S3ResponseError) return RETRYABLE_STATUS.has(error.$metadata.httpStatusCode) || error.Code === 'SlowDown';
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNREFUSED' || (error as Error).name === 'TimeoutError';
}
