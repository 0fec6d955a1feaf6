import type { Agent, AgentOptions, ClientRequest, RequestOptions } from 'node:http';
import { createRequire } from 'node:module';
import aws4 from 'aws4';
import { CredentialSource, type CredentialSettings } from './credentials.js';
import { socketPoolOptions } from './http-agent.js';
import { S3ResponseError } from './s3-errors.js';
import type { AgentSettings } from '../settings.js';

/*
 * The one configuration of the agent's S3 requests: the endpoint parsed once, path or
 * virtual-host addressing, the region (followed where AWS redirects), SigV4 signing by
 * aws4 with the credential chain of credentials.ts, timeouts, the one retry, and one
 * keep-alive socket pool sized to the transfer pool. The lean requests (s3-get.ts,
 * s3-put.ts, s3-delete.ts) are made here; the SDK client of the calls only it makes
 * (sdk-writes.ts) is built from the same settings and shares the socket pool.
 */

const require = createRequire(import.meta.url);

export type EndpointSettings = Pick<AgentSettings, 'endpoint' | 'region' | 'bucket'> & CredentialSettings;

// A socket that takes this long to connect, or a request idle this long, fails.
export const CONNECT_TIMEOUT_MS = 5_000;
export const IDLE_TIMEOUT_MS = 60_000;
// One more attempt after a server error or a dropped socket.
export const MAX_ATTEMPTS = 2;
const RETRY_DELAY_MS = 100;
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

// S3's URI encoding of a key: every byte but the unreserved characters, '/' kept.
export function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

// A bucket AWS can address as a host name over TLS (no dots: the wildcard certificate
// covers one label); the SDK falls back to the path for the others, as this does.
function virtualHostable(bucket: string): boolean {
  return /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket);
}

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export function retryable(error: unknown): boolean {
  // A redirect to the bucket's region: the endpoint has taken the region from its header,
  // so the one retry is signed for the right one.
  if (error instanceof S3ResponseError && error.$metadata.httpStatusCode === 301) return true;
  if (error instanceof S3ResponseError) return RETRYABLE_STATUS.has(error.$metadata.httpStatusCode) || error.Code === 'SlowDown';
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNREFUSED' || (error as Error).name === 'TimeoutError';
}

// The pause before the second attempt, jittered so parallel transfers do not retry at once.
export function beforeRetry(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * (1 + Math.random())));
}

function flatHeaders(headers: Record<string, string | number>): string[] {
  const flat: string[] = [];
  for (const name in headers) flat.push(name, String(headers[name]));
  return flat;
}

// What the `signal` option of http.request does: the request destroyed with an
// AbortError whose cause is the signal's reason (a timeout stays a timeout).
function abortOn(signal: AbortSignal, request: ClientRequest): void {
  const abort = () =>
    request.destroy(Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' }));
  if (signal.aborted) {
    process.nextTick(abort);
    return;
  }
  signal.addEventListener('abort', abort, { once: true });
  request.once('close', () => signal.removeEventListener('abort', abort));
}

export class S3Endpoint {
  readonly url: string;
  readonly secure: boolean;
  // Custom endpoints (MinIO, Ceph, ...) are addressed by path, AWS by host name.
  readonly pathStyle: boolean;
  private readonly host: string;
  private readonly basePath: string;
  private readonly address: { protocol: string; hostname: string; port: string };
  private readonly agentOptions: AgentOptions;
  private transport: { agent: Agent; request: (options: RequestOptions) => ClientRequest } | undefined;
  // S3_REGION, until AWS redirects to the bucket's own (followRegion).
  private region: string;

  constructor(
    private readonly settings: EndpointSettings,
    workers: number,
    // Shared with the SDK client (sdk-writes.ts); ready before each request is made.
    private readonly credentials = new CredentialSource(settings),
  ) {
    const url = new URL(settings.endpoint);
    this.url = settings.endpoint;
    this.secure = url.protocol === 'https:';
    this.address = { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port };
    this.agentOptions = socketPoolOptions(workers);
    const endpointPath = url.pathname.replace(/\/+$/, '');
    this.pathStyle = !(url.hostname.endsWith('amazonaws.com') && virtualHostable(settings.bucket));
    this.host = this.pathStyle ? url.host : `${settings.bucket}.${url.host}`;
    this.basePath = this.pathStyle ? `${endpointPath}/${encodeKey(settings.bucket)}/` : `${endpointPath}/`;
    this.region = settings.region;
  }

  /** The region requests are signed for: S3_REGION, or the bucket's once AWS named it. */
  get currentRegion(): string {
    return this.region;
  }

  /** The keep-alive socket pool, which the SDK client's requests share. */
  socketPool(): Agent {
    return this.connect().agent;
  }

  /** The request path of an object. */
  keyPath(key: string): string {
    return this.basePath + encodeKey(key);
  }

  /** The request path of the bucket with a query (already encoded). */
  bucketPath(query: string): string {
    return `${this.basePath}?${query}`;
  }

  /**
   * A signed request, sent when the caller ends it. A socket that does not connect in
   * time, or a request idle too long, is destroyed with a TimeoutError naming `what`.
   */
  request(method: Method, path: string, headers: Record<string, string | number>, signal: AbortSignal, what: string): ClientRequest {
    const transport = this.connect();
    const signed = aws4.sign(
      { host: this.host, path, method, service: 's3', region: this.region, headers: { Host: this.host, ...headers } },
      this.credentials.current(),
    );
    // Headers as a flat list go to the socket as they are; an object goes through
    // setHeader one by one, and a `signal` option through stream.finished's listeners:
    // per request, both were a good part of what sync's thousands of PUTs left in the heap.
    const request = transport.request({
      ...this.address,
      agent: transport.agent,
      method,
      path: signed.path,
      headers: flatHeaders(signed.headers as Record<string, string | number>),
      timeout: IDLE_TIMEOUT_MS,
    });
    abortOn(signal, request);
    request.once('response', (response) => this.followRegion(response.statusCode, response.headers['x-amz-bucket-region']));
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
    return request;
  }

  close(): void {
    this.transport?.agent.destroy();
  }

  // AWS's 301 to a bucket in another region names it in x-amz-bucket-region, as the SDK's
  // followRegionRedirects reads it: later requests are signed for that region.
  private followRegion(status: number | undefined, bucketRegion: string | string[] | undefined): void {
    if (status === 301 && typeof bucketRegion === 'string' && /^[a-z0-9-]+$/.test(bucketRegion)) this.region = bucketRegion;
  }

  // Loaded on the first request, and through require: an ES import of node:http builds
  // its module namespace, whose lazy exports load undici (its cost: docs/BENCHMARKS.md),
  // which neither a cycle with nothing to upload nor these requests need.
  private connect(): { agent: Agent; request: (options: RequestOptions) => ClientRequest } {
    if (this.transport === undefined) {
      const { Agent, request } = require(this.secure ? 'node:https' : 'node:http') as typeof import('node:http');
      this.transport = { agent: new Agent(this.agentOptions), request };
    }
    return this.transport;
  }
}
