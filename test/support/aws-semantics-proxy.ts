import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  // The S3 operation, as AWS names it.
  operation: string;
  // The object key (empty for a bucket request).
  key: string;
  range?: string;
}

// What the proxy does instead of forwarding faithfully, for the answers MinIO never gives:
// - 'html': answers 200 text/html without an ETag (a maintenance page, a captive portal);
// - 'short': MinIO's answer with its body cut to the first half, Content-Length matching;
// - 'flip-request': sends MinIO the request with one byte of its body flipped;
// - 'unavailable': answers 503 SlowDown without forwarding.
export type Tamper = 'html' | 'short' | 'flip-request' | 'unavailable';

interface TamperRule {
  operation: string;
  // Matches a key ending so (undefined: any key).
  key: string | undefined;
  how: Tamper;
  // How many more requests it applies to.
  left: number;
}

export interface AwsSemanticsProxy {
  endpoint: string;
  // Requests signed with these access keys get AWS's answer for a missing key.
  withoutList: Set<string>;
  // Every request forwarded, as it came over the wire (path-style addressing).
  requests: ProxiedRequest[];
  // Keys (bucket excluded) whose GetObject is never answered: a restore stuck mid-way.
  stalled: Set<string>;
  // The next `times` requests of `operation` (on a key ending with `key`) are tampered with.
  tamper(operation: string, how: Tamper, options?: { key?: string; times?: number }): void;
  // Faithful again.
  clearTampering(): void;
  // Which other server the proxy plays, for what MinIO itself cannot show.
  plays: ServerQuirks;
  close(): Promise<void>;
}

const HTML_PAGE = '<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body><h1>Back soon</h1></body></html>\n';
const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

function takeRule(rules: TamperRule[], record: ProxiedRequest): Tamper | undefined {
  const rule = rules.find((candidate) => candidate.left > 0 && candidate.operation === record.operation && (candidate.key === undefined || record.key.endsWith(candidate.key)));
  if (!rule) return undefined;
  rule.left -= 1;
  return rule.how;
}

// The answer a tamper rule gives on its own, without MinIO; true when it answered.
function answeredAlone(how: Tamper | undefined, res: ServerResponse): boolean {
  if (how === 'html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(HTML_PAGE) });
    res.end(HTML_PAGE);
    return true;
  }
  if (how === 'unavailable') {
    res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(SLOW_DOWN) });
    res.end(SLOW_DOWN);
    return true;
  }
  return false;
}

// MinIO's answer with the first half of its body, announced as such.
async function shortAnswer(answer: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readAll(answer);
  const half = body.subarray(0, Math.floor(body.length / 2));
  res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'content-length': String(half.length) });
  res.end(half);
}

export interface ServerQuirks {
  // DeleteObjects without a Content-MD5 of its body is refused (400 InvalidRequest), as AWS
  // did before its flexible checksums and older MinIO and Ceph RGW still do.
  contentMd5OnDelete?: boolean;
  // DeleteObjects answered 501 NotImplemented: servers without multi-object delete (GCS's
  // XML API before it had one, several small S3 servers).
  noMultiDelete?: boolean;
  // The bucket lives in this region: every request signed for another one gets AWS's
  // answer, 301 PermanentRedirect with x-amz-bucket-region (HEAD: no body).
  bucketRegion?: string;
}

function xmlError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}, withBody = true): void {
  const body = withBody ? `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>` : '';
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function signedRegionOf(req: IncomingMessage): string | undefined {
  return /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
}

// Answers the request as the played server would where it differs from MinIO; false
// when MinIO's own answer stands. A DeleteObjects body is read first to check its MD5.
async function played(req: IncomingMessage, res: ServerResponse, record: ProxiedRequest, quirks: ServerQuirks): Promise<Buffer | boolean> {
  const signedRegion = signedRegionOf(req);
  if (quirks.bucketRegion !== undefined && signedRegion !== undefined && signedRegion !== quirks.bucketRegion) {
    xmlError(
      res,
      301,
      'PermanentRedirect',
      'The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.',
      { 'x-amz-bucket-region': quirks.bucketRegion },
      req.method !== 'HEAD',
    );
    return true;
  }
  if (record.operation !== 'DeleteObjects') return false;
  if (quirks.noMultiDelete) {
    xmlError(res, 501, 'NotImplemented', 'A header you provided implies functionality that is not implemented');
    return true;
  }
  if (!quirks.contentMd5OnDelete) return false;
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const md5 = req.headers['content-md5'];
  if (md5 === undefined) {
    xmlError(res, 400, 'InvalidRequest', 'Missing required header for this request: Content-Md5.');
    return true;
  }
  if (md5 !== createHash('md5').update(body).digest('base64')) {
    xmlError(res, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
    return true;
  }
  return body;
}

function accessKeyOf(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization ?? '';
  return /Credential=([^/,\s]+)\//.exec(authorization)?.[1];
}

function operationOf(req: IncomingMessage, key: string): string {
  const query = new URL(req.url ?? '/', 'http://proxy').searchParams;
  const copy = req.headers['x-amz-copy-source'] !== undefined;
  if (key === '') {
    if (req.method === 'GET') return query.has('list-type') ? 'ListObjectsV2' : query.has('location') ? 'GetBucketLocation' : 'ListObjects';
    if (req.method === 'POST' && query.has('delete')) return 'DeleteObjects';
    return `${req.method ?? ''}Bucket`;
  }
  switch (req.method) {
    case 'GET':
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      if (query.has('partNumber')) return copy ? 'UploadPartCopy' : 'UploadPart';
      return copy ? 'CopyObject' : 'PutObject';
    case 'POST':
      return query.has('uploads') ? 'CreateMultipartUpload' : query.has('uploadId') ? 'CompleteMultipartUpload' : 'PostObject';
    case 'DELETE':
      return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    default:
      return req.method ?? 'unknown';
  }
}

function recordOf(req: IncomingMessage): ProxiedRequest {
  const { pathname } = new URL(req.url ?? '/', 'http://proxy');
  const key = decodeURIComponent(pathname.split('/').slice(2).join('/'));
  const range = req.headers.range;
  return { operation: operationOf(req, key), key, ...(range === undefined ? {} : { range }) };
}

const ACCESS_DENIED = (resource: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><Resource>${resource}</Resource></Error>`;

// A loopback HTTP proxy in front of the real MinIO that answers the way AWS S3 does for a
// caller without s3:ListBucket: a missing key is 403 AccessDenied, not 404 NoSuchKey
// (AWS hides whether a key exists from a caller that could not list it; MinIO always
// answers 404). Everything else, signatures included, is MinIO's own answer: the proxy
// forwards the request unchanged (Host header too, so SigV4 still verifies). It also writes
// down each request, for tests about what goes over the wire.
export async function startAwsSemanticsProxy(minioEndpoint: string): Promise<AwsSemanticsProxy> {
  const upstream = new URL(minioEndpoint);
  const withoutList = new Set<string>();
  const requests: ProxiedRequest[] = [];
  const stalled = new Set<string>();
  const rules: TamperRule[] = [];
  const plays: ServerQuirks = {};
  const server: Server = createServer(async (req, res) => {
    const record = recordOf(req);
    requests.push(record);
    if (record.operation === 'GetObject' && stalled.has(record.key)) return;
    const how = takeRule(rules, record);
    if (answeredAlone(how, res)) {
      req.resume();
      return;
    }
    const answered = await played(req, res, record, plays);
    if (answered === true) return;
    const forwarded = request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        if (how === 'short') {
          void shortAnswer(answer, res).catch((error: Error) => res.destroy(error));
          return;
        }
        const key = accessKeyOf(req);
        if (answer.statusCode !== 404 || key === undefined || !withoutList.has(key)) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          // HEAD answers carry no body: MinIO's 404 to a HEAD is a missing key as well.
          const missingKey = req.method === 'HEAD' || body.includes('<Code>NoSuchKey</Code>');
          if (!missingKey) {
            res.writeHead(404, answer.headers);
            res.end(body);
            return;
          }
          const denied = req.method === 'HEAD' ? '' : ACCESS_DENIED(req.url ?? '');
          res.writeHead(403, {
            'content-type': 'application/xml',
            'content-length': Buffer.byteLength(denied),
            'x-amz-request-id': String(answer.headers['x-amz-request-id'] ?? ''),
          });
          res.end(denied);
        });
      },
    );
    forwarded.on('error', (error) => {
      res.destroy(error);
    });
    if (how === 'flip-request') {
      const read = answered === false ? readAll(req) : Promise.resolve(answered);
      void read.then((body) => {
        const middle = Math.floor(body.length / 2);
        if (body.length > 0) body[middle] = (body[middle] ?? 0) ^ 0x01;
        forwarded.end(body);
      });
      return;
    }
    if (answered === false) req.pipe(forwarded);
    else forwarded.end(answered);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    withoutList,
    requests,
    stalled,
    tamper: (operation, how, options = {}) => {
      rules.push({ operation, key: options.key, how, left: options.times ?? Infinity });
    },
    clearTampering: () => {
      rules.length = 0;
    },
    plays,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
