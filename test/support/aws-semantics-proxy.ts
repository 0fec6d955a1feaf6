import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AwsSemanticsProxy {
  endpoint: string;
  // Requests signed with these access keys get AWS's answer for a missing key.
  withoutList: Set<string>;
  close(): Promise<void>;
}

function accessKeyOf(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization ?? '';
  return /Credential=([^/,\s]+)\//.exec(authorization)?.[1];
}

const ACCESS_DENIED = (resource: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><Resource>${resource}</Resource></Error>`;

// A loopback HTTP proxy in front of the real MinIO that answers the way AWS S3 does for a
// caller without s3:ListBucket: a missing key is 403 AccessDenied, not 404 NoSuchKey
// (AWS hides whether a key exists from a caller that could not list it; MinIO always
// answers 404). Everything else, signatures included, is MinIO's own answer: the proxy
// forwards the request unchanged (Host header too, so SigV4 still verifies).
export async function startAwsSemanticsProxy(minioEndpoint: string): Promise<AwsSemanticsProxy> {
  const upstream = new URL(minioEndpoint);
  const withoutList = new Set<string>();
  const server: Server = createServer((req, res) => {
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
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    withoutList,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
