import { isRegionError, regionFailure } from './region.js';
import { parseXml } from './s3-xml.js';
import { StoreError, type Failure, type StoreErrorKind } from './store.js';

// S3 failures, whether thrown by the SDK (multipart and copy, sdk-writes.ts) or read from
// the answers of the agent's own requests (s3-get.ts, s3-put.ts, s3-delete.ts), mapped onto
// the StoreError the agent decides on. Kept free of SDK imports so a cycle that sends no
// multipart upload or copy never loads the SDK.

// A failure as the SDK reports one (code, status, message), so both clients' failures are
// classified alike.
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

// What a body-less failure is named: a read's as the SDK names it (404 NotFound, else its
// number; a HEAD's 403 stays unnamed, which refresh reads as the operator's words), a
// write's as S3 names the refusals callers decide on.
const WRITE_CODES: Record<number, string> = { 403: 'AccessDenied', 404: 'NotFound', 412: 'PreconditionFailed' };

/** The one reading of a failed answer of the agent's own requests: the body's Code and Message. */
export function responseError(method: string, status: number, text: string, what: string): S3ResponseError {
  const error = (parseXml(text) as { Error?: { Code?: unknown; Message?: unknown } } | undefined)?.Error;
  const named = typeof error?.Code === 'string' && error.Code !== '' ? error.Code : undefined;
  const fallback = method === 'GET' || method === 'HEAD' ? (status === 404 ? 'NotFound' : String(status)) : (WRITE_CODES[status] ?? `HTTP${status}`);
  const message = typeof error?.Message === 'string' && error.Message !== '' ? error.Message : `${what}: HTTP ${status}`;
  return new S3ResponseError(named ?? fallback, message, { httpStatusCode: status });
}

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function codesOf(error: unknown, depth = 0): string[] {
  if (typeof error !== 'object' || error === null || depth > 4) return [];
  const e = error as ErrorLike;
  const own = [e.name, e.code, e.Code].filter((value): value is string => typeof value === 'string');
  const nested = Array.isArray(e.errors) ? e.errors.flatMap((inner) => codesOf(inner, depth + 1)) : [];
  return [...own, ...codesOf(e.cause, depth + 1), ...nested];
}

function messageOf(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const message = (error as ErrorLike).message;
    if (typeof message === 'string' && message !== '') return message;
  }
  return String(error);
}

// The code of an S3ResponseError for a 2xx that is not an S3 answer (no ETag on an object,
// no ListBucketResult, no DeleteResult).
export const NOT_S3_ANSWER = 'NotS3Answer';

export function notS3Answer(what: string, status: number): S3ResponseError {
  return new S3ResponseError(NOT_S3_ANSWER, `not an S3 answer: ${what}`, { httpStatusCode: status });
}

// The region S3 named in the headers of its answer, where the SDK kept them.
function bucketRegionOf(error: unknown): string | undefined {
  const region = (error as { $response?: { headers?: Record<string, unknown> } } | undefined)?.$response?.headers?.['x-amz-bucket-region'];
  return typeof region === 'string' && region !== '' ? region : undefined;
}

// The pod's identity could not be turned into credentials (credentials.ts, STS).
const IDENTITY_CODES = ['CredentialsUnavailable', 'CredentialsProviderError', 'InvalidIdentityToken', 'IDPRejectedClaim', 'ExpiredTokenException'];

// Maps whatever the SDK or the socket layer threw onto the words operators grep for.
export function classifyS3Error(error: unknown): Failure {
  const codes = new Set(codesOf(error));
  const status = (error as ErrorLike | undefined)?.$metadata?.httpStatusCode;
  const detail = messageOf(error);
  if (codes.has('ECONNREFUSED') || codes.has('ECONNRESET') || codes.has('EPIPE')) {
    return { kind: 'connection refused', detail };
  }
  if (codes.has('NoSuchBucket')) return { kind: 'bucket not found', detail };
  if (isRegionError(codes, status)) return regionFailure(detail, bucketRegionOf(error));
  if (
    codes.has('AccessDenied') ||
    codes.has('InvalidAccessKeyId') ||
    codes.has('SignatureDoesNotMatch') ||
    codes.has('InvalidToken') ||
    codes.has('ExpiredToken') ||
    IDENTITY_CODES.some((code) => codes.has(code)) ||
    status === 403
  ) {
    return { kind: 'access denied', detail };
  }
  if (codes.has('ENOTFOUND') || codes.has('EAI_AGAIN')) return { kind: 'endpoint not found', detail };
  if (codes.has('ETIMEDOUT') || codes.has('TimeoutError') || codes.has('RequestTimeout')) {
    return { kind: 'timed out', detail };
  }
  if (typeof status === 'number' && status >= 500) return { kind: 'server error', detail };
  // A 2xx from something that is not S3 (a maintenance page, a captive proxy): the
  // endpoint is unusable for now, as with a 5xx (rule 10). The SDK throws a 2xx it could
  // not read as the command's answer with that status.
  if (codes.has(NOT_S3_ANSWER)) return { kind: 'server error', detail };
  if (typeof status === 'number' && status >= 200 && status < 300) return { kind: 'server error', detail: `not an S3 answer: ${detail}` };
  return { kind: 'error', detail };
}

// Credentials the server does not accept at all, as opposed to a policy denying one key.
const CREDENTIAL_CODES = ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', ...IDENTITY_CODES];

// A 403 without one of these codes (a HEAD has no body to carry one) stays `other`: only
// the operator's words call it "access denied", as they always did.
function kindOf(codes: Set<string>): StoreErrorKind {
  if (CREDENTIAL_CODES.some((code) => codes.has(code))) return 'credentials';
  if (codes.has('AccessDenied')) return 'access-denied';
  if (codes.has('NoSuchKey') || codes.has('NotFound')) return 'not-found';
  // AWS answers 409 ConditionalRequestConflict to the loser of two simultaneous conditional
  // writes: for the caller the object changed under it, as with a 412.
  if (codes.has('PreconditionFailed') || codes.has('ConditionalRequestConflict')) return 'precondition-failed';
  if (codes.has('InvalidRange')) return 'invalid-range';
  return 'other';
}

// An error reading a local file (a stream body) stays that file's error: sync tells a file
// it cannot read from a store it cannot reach.
export function toStoreError(error: unknown): unknown {
  if (error instanceof StoreError) return error;
  const local = error as NodeJS.ErrnoException | undefined;
  if (local?.path !== undefined && local.syscall !== undefined) return error;
  return new StoreError(kindOf(new Set(codesOf(error))), classifyS3Error(error), { cause: error });
}
