import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AgentSettings } from './settings.js';

// One client per process. Sockets are kept alive and sized to the transfer pool so a
// cycle of many small files reuses connections instead of opening one per object.
export function createS3Client(settings: AgentSettings, workers: number): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: workers, maxFreeSockets: workers };
  const amazon = new URL(settings.endpoint).hostname.endsWith('amazonaws.com');
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // Custom endpoints (MinIO, Ceph, ...) are addressed by path and do not accept the
    // aws-chunked CRC32 trailers the SDK sends by default since 3.729.
    forcePathStyle: !amazon,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: 5_000,
      requestTimeout: 60_000,
    }),
  });
}

export type S3FailureKind =
  | 'connection refused'
  | 'access denied'
  | 'bucket not found'
  | 'endpoint not found'
  | 'timed out'
  | 'server error'
  | 'error';

export interface S3Failure {
  kind: S3FailureKind;
  detail: string;
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

// Maps whatever the SDK or the socket layer threw onto the words operators grep for.
export function classifyS3Error(error: unknown): S3Failure {
  const codes = new Set(codesOf(error));
  const status = (error as ErrorLike | undefined)?.$metadata?.httpStatusCode;
  const detail = messageOf(error);
  if (codes.has('ECONNREFUSED') || codes.has('ECONNRESET') || codes.has('EPIPE')) {
    return { kind: 'connection refused', detail };
  }
  if (codes.has('NoSuchBucket')) return { kind: 'bucket not found', detail };
  if (
    codes.has('AccessDenied') ||
    codes.has('InvalidAccessKeyId') ||
    codes.has('SignatureDoesNotMatch') ||
    codes.has('InvalidToken') ||
    codes.has('ExpiredToken') ||
    status === 403
  ) {
    return { kind: 'access denied', detail };
  }
  if (codes.has('ENOTFOUND') || codes.has('EAI_AGAIN')) return { kind: 'endpoint not found', detail };
  if (codes.has('ETIMEDOUT') || codes.has('TimeoutError') || codes.has('RequestTimeout')) {
    return { kind: 'timed out', detail };
  }
  if (typeof status === 'number' && status >= 500) return { kind: 'server error', detail };
  return { kind: 'error', detail };
}

export function hasErrorCode(error: unknown, ...wanted: string[]): boolean {
  const codes = new Set(codesOf(error));
  return wanted.some((code) => codes.has(code));
}

// Credentials the server does not accept at all, as opposed to a policy denying one key.
export function isCredentialError(error: unknown): boolean {
  const codes = new Set(codesOf(error));
  return ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken'].some((code) => codes.has(code));
}

// A policy refusing this request, as opposed to credentials the server rejects outright.
export function isAccessDenied(error: unknown): boolean {
  return hasErrorCode(error, 'AccessDenied') && !isCredentialError(error);
}

export function isNotFound(error: unknown): boolean {
  const codes = new Set(codesOf(error));
  return codes.has('NoSuchKey') || codes.has('NotFound');
}

export function describeS3Error(error: unknown): string {
  const failure = classifyS3Error(error);
  return failure.kind === 'error' ? failure.detail : `${failure.kind} (${failure.detail})`;
}
