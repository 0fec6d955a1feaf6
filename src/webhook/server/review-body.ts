import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';

/**
 * Whether `readReviewBody` can take this request: what the API server sends (exactly
 * `application/json`, a Content-Length, no Content-Encoding). Anything else goes through
 * express.json, which knows charsets, compression and chunked bodies.
 */
export function isPlainJson(req: IncomingMessage): boolean {
  const { headers } = req;
  return (
    headers['content-type'] === 'application/json' &&
    headers['content-encoding'] === undefined &&
    headers['transfer-encoding'] === undefined &&
    Number(headers['content-length']) > 0
  );
}

/**
 * The body read into one Buffer and parsed once, with the errors express.json gives for
 * the same request: raw-body's own (413 `entity.too.large`, 400 `request.aborted`), and
 * 400 `entity.parse.failed` for anything but a JSON object or array.
 */
export async function readReviewBody(req: IncomingMessage, limit: string): Promise<unknown> {
  const raw = await getRawBody(req, { length: req.headers['content-length'], limit });
  // A leading byte order mark is dropped, as express.json's UTF-8 decoding does.
  const text = raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? raw.toString('utf8', 3) : raw.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw parseFailed((error as Error).message);
  }
  // express.json's strict mode: a bare string, number or null is not a review.
  if (typeof body !== 'object' || body === null) throw parseFailed('not a JSON object or array');
  return body;
}

function parseFailed(message: string): Error {
  return Object.assign(new SyntaxError(message), { status: 400, type: 'entity.parse.failed' });
}
