import { randomBytes } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { METADATA_KEY, metadataSchema, type Metadata } from './metadata.js';
import { isAccessDenied, isNotFound } from './s3.js';

export interface RemoteTarget {
  client: S3Client;
  bucket: string;
  // "{namespace}/{session}/"
  prefix: string;
}

export type MetadataRead = { kind: 'missing' } | { kind: 'invalid'; reason: string } | { kind: 'found'; metadata: Metadata };

export async function readMetadata(target: RemoteTarget, signal: AbortSignal): Promise<MetadataRead> {
  let text: string;
  try {
    const response = await target.client.send(
      new GetObjectCommand({ Bucket: target.bucket, Key: target.prefix + METADATA_KEY }),
      { abortSignal: signal },
    );
    text = (await response.Body?.transformToString('utf8')) ?? '';
  } catch (error) {
    if (isNotFound(error)) return { kind: 'missing' };
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'not JSON' };
  }
  const parsed = metadataSchema.safeParse(json);
  if (!parsed.success) return { kind: 'invalid', reason: parsed.error.issues[0]?.message ?? 'unexpected shape' };
  return { kind: 'found', metadata: parsed.data };
}

export async function writeMetadata(target: RemoteTarget, metadata: Metadata, signal: AbortSignal): Promise<void> {
  await target.client.send(
    new PutObjectCommand({
      Bucket: target.bucket,
      Key: target.prefix + METADATA_KEY,
      Body: JSON.stringify(metadata, null, 2),
      ContentType: 'application/json',
    }),
    { abortSignal: signal },
  );
}

// Objects hydrate writes for a moment to learn what the policy allows (probeAccess).
export const PROBE_PREFIX = '.session-storage-probe-';

export type Listing = { kind: 'denied' } | { kind: 'listed'; sizes: Map<string, number> };

// Keys are returned relative to the prefix. A policy without s3:ListBucket (the seed's
// per-project bucket policy) answers AccessDenied: the caller then relies on the manifest.
export async function listRemote(target: RemoteTarget, signal: AbortSignal): Promise<Listing> {
  const sizes = new Map<string, number>();
  let token: string | undefined;
  do {
    let page;
    try {
      page = await target.client.send(
        new ListObjectsV2Command({ Bucket: target.bucket, Prefix: target.prefix, ContinuationToken: token }),
        { abortSignal: signal },
      );
    } catch (error) {
      if (isAccessDenied(error)) return { kind: 'denied' };
      throw error;
    }
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      const key = object.Key.slice(target.prefix.length);
      if (key !== METADATA_KEY && !key.startsWith(PROBE_PREFIX)) sizes.set(key, object.Size ?? 0);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return { kind: 'listed', sizes };
}

export type Probe =
  | { kind: 'readable'; leftOver?: unknown }
  | { kind: 'denied'; step: 'write' | 'read'; error: unknown };

// Whether these credentials may write and read back an object under the prefix: without
// s3:ListBucket, AWS answers 403 for a missing key as for a denied one, and only what the
// policy allows tells the two apart. The probe object is deleted again; `leftOver` is the
// error if that failed. Errors other than a denial are thrown.
export async function probeAccess(target: RemoteTarget, signal: AbortSignal): Promise<Probe> {
  const Key = `${target.prefix}${PROBE_PREFIX}${randomBytes(8).toString('hex')}`;
  try {
    await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key, Body: '' }), { abortSignal: signal });
  } catch (error) {
    if (isAccessDenied(error)) return { kind: 'denied', step: 'write', error };
    throw error;
  }
  let read: Probe = { kind: 'readable' };
  try {
    const response = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key }), { abortSignal: signal });
    await response.Body?.transformToByteArray();
  } catch (error) {
    if (!isAccessDenied(error)) throw error;
    read = { kind: 'denied', step: 'read', error };
  } finally {
    try {
      await target.client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key }), { abortSignal: signal });
    } catch (error) {
      if (read.kind === 'readable') read = { kind: 'readable', leftOver: error };
    }
  }
  return read;
}

const DELETE_BATCH = 1000;

// Returns the keys S3 confirmed deleted; keys it reported errors for are kept as known.
export async function deleteKeys(target: RemoteTarget, keys: readonly string[], signal: AbortSignal): Promise<{ deleted: string[]; failed: string[] }> {
  const deleted: string[] = [];
  const failed: string[] = [];
  for (let start = 0; start < keys.length; start += DELETE_BATCH) {
    const batch = keys.slice(start, start + DELETE_BATCH);
    const response = await target.client.send(
      new DeleteObjectsCommand({
        Bucket: target.bucket,
        Delete: { Objects: batch.map((key) => ({ Key: target.prefix + key })), Quiet: true },
      }),
      { abortSignal: signal },
    );
    const errors = new Set((response.Errors ?? []).map((error) => (error.Key ?? '').slice(target.prefix.length)));
    for (const key of batch) (errors.has(key) ? failed : deleted).push(key);
  }
  return { deleted, failed };
}
