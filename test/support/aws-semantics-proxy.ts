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

export interface AwsSemanticsProxy {
  endpoint: string;
  // Requests signed with these access keys get AWS's answer for a missing key.
  withoutList: Set<string>;
  // Every request forwarded, as it came over the wire (path-style addressing).
  requests: ProxiedRequest[];
  // Keys (bucket excluded) whose GetObject is never answered: a restore stuck mid-way.
  stalled: Set<string>;
  // Which other server the proxy plays, for what MinIO itself cannot show.
  plays: ServerQuirks;
  close(): Promise<void>;
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
  const plays: ServerQuirks = {};
  const server: Server = createServer(async (req, res) => {
    const record = recordOf(req);
    requests.push(record);
    if (record.operation === 'GetObject' && stalled.has(record.key)) return;
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
    plays,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
