import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { METADATA_KEY, metadataPieces, metadataSchema, type FileMap, type Metadata } from './metadata.js';
import { notS3Answer, toStoreError } from '../store/s3-errors.js';
import { isStoreError, type ObjectStore } from '../store/store.js';

export interface RemoteTarget {
  store: ObjectStore;
  // "{namespace}/{session}/"
  prefix: string;
}

export type MetadataRead = { kind: 'missing' } | { kind: 'invalid'; reason: string } | { kind: 'found'; metadata: Metadata };

export async function readMetadata(target: RemoteTarget, signal: AbortSignal): Promise<MetadataRead> {
  let text: string;
  try {
    const object = await target.store.get(target.prefix + METADATA_KEY, {}, signal);
    text = Buffer.from(await object.bytes()).toString('utf8');
  } catch (error) {
    if (isStoreError(error, 'not-found')) return { kind: 'missing' };
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // A markup page (a maintenance page served with an ETag) is no metadata.json at all:
    // the state is unknown, not unreadable, and hydrate must not start over it (rule 10).
    if (text.trimStart().startsWith('<')) throw toStoreError(notS3Answer(`GetObject of ${target.prefix}${METADATA_KEY}: a markup page instead of JSON`, 200));
    return { kind: 'invalid', reason: 'not JSON' };
  }
  const parsed = metadataSchema.safeParse(json);
  if (!parsed.success) return { kind: 'invalid', reason: parsed.error.issues[0]?.message ?? 'unexpected shape' };
  return { kind: 'found', metadata: parsed.data };
}

export async function writeMetadata(target: RemoteTarget, metadata: Metadata, signal: AbortSignal): Promise<void> {
  await target.store.put(target.prefix + METADATA_KEY, JSON.stringify(metadata, null, 2), {}, signal);
}

// metadata.json is all a pod without s3:ListBucket restores from, and the final sync has
// no next cycle to write it again: a failure a second attempt may not meet (a dropped
// socket, a server error) gets one, after a short pause.
const METADATA_ATTEMPTS = 2;
const METADATA_RETRY_MS = 250;

// The same document with the manifest from the record's map, streamed: its length is
// counted (and its hash taken) in a first pass over the pieces, which each attempt produces again as they are
// sent, from keys sorted once. The caller does not change the map meanwhile.
export async function writeMetadataOf(target: RemoteTarget, metadata: Omit<Metadata, 'manifest'>, manifest: FileMap, signal: AbortSignal): Promise<void> {
  const keys = [...manifest.keys()].sort();
  // The first pass also hashes the document, which the server verifies (rule 9).
  let contentLength = 0;
  const hash = createHash('sha256');
  for (const piece of metadataPieces(metadata, manifest, undefined, keys)) {
    contentLength += Buffer.byteLength(piece);
    hash.update(piece);
  }
  const sha256 = hash.digest('hex');
  const body = () =>
    Readable.from(
      (function* () {
        for (const piece of metadataPieces(metadata, manifest, undefined, keys)) yield Buffer.from(piece);
      })(),
    );
  for (let attempt = 1; ; attempt++) {
    try {
      await target.store.put(target.prefix + METADATA_KEY, body(), { contentLength, sha256 }, signal);
      return;
    } catch (error) {
      if (attempt >= METADATA_ATTEMPTS || signal.aborted || !isStoreError(error, 'other')) throw error;
      await delay(METADATA_RETRY_MS, undefined, { signal });
    }
  }
}

// Objects hydrate writes for a moment to learn what the policy allows (probeAccess).
export const PROBE_PREFIX = '.session-storage-probe-';

// Objects the agent keeps for itself beside the data (the restore bundle): never a
// session's file, so never listed, restored, adopted or deleted as one. No sync path can
// have this name (parseSyncPaths).
export const AGENT_OBJECTS_PREFIX = '.session-storage/';

// `etags` only when asked for: the sync cycles list without them to keep the map small.
// `agentObjects`: the keys under AGENT_OBJECTS_PREFIX, kept apart from the session's.
export type Listing =
  | { kind: 'denied' }
  | { kind: 'listed'; sizes: Map<string, number>; etags?: Map<string, string>; agentObjects: Set<string> };

// Keys are returned relative to the prefix. A policy without s3:ListBucket (the seed's
// per-project bucket policy) answers AccessDenied: the caller then relies on the manifest.
export async function listRemote(target: RemoteTarget, signal: AbortSignal, options: { etags?: boolean } = {}): Promise<Listing> {
  let objects;
  try {
    objects = await target.store.list(target.prefix, signal);
  } catch (error) {
    if (isStoreError(error, 'access-denied')) return { kind: 'denied' };
    throw error;
  }
  const sizes = new Map<string, number>();
  const etags = options.etags ? new Map<string, string>() : undefined;
  const agentObjects = new Set<string>();
  for (const object of objects) {
    const key = object.key.slice(target.prefix.length);
    if (key.startsWith(AGENT_OBJECTS_PREFIX)) agentObjects.add(key);
    if (key === METADATA_KEY || key.startsWith(PROBE_PREFIX) || key.startsWith(AGENT_OBJECTS_PREFIX)) continue;
    sizes.set(key, object.size);
    if (etags && object.etag !== undefined) etags.set(key, object.etag);
  }
  return etags ? { kind: 'listed', sizes, etags, agentObjects } : { kind: 'listed', sizes, agentObjects };
}

export type Probe =
  | { kind: 'readable'; leftOver?: unknown }
  | { kind: 'denied'; step: 'write' | 'read'; error: unknown };

// Whether these credentials may write and read back an object under the prefix: without
// s3:ListBucket, AWS answers 403 for a missing key as for a denied one, and only what the
// policy allows tells the two apart. The probe object is deleted again; `leftOver` is the
// error if that failed. Errors other than a denial are thrown.
export async function probeAccess(target: RemoteTarget, signal: AbortSignal): Promise<Probe> {
  const key = `${target.prefix}${PROBE_PREFIX}${randomBytes(8).toString('hex')}`;
  try {
    await target.store.put(key, '', {}, signal);
  } catch (error) {
    if (isStoreError(error, 'access-denied')) return { kind: 'denied', step: 'write', error };
    throw error;
  }
  let read: Probe = { kind: 'readable' };
  try {
    await (await target.store.get(key, {}, signal)).bytes();
  } catch (error) {
    if (!isStoreError(error, 'access-denied')) throw error;
    read = { kind: 'denied', step: 'read', error };
  } finally {
    try {
      await target.store.delete(key, signal);
    } catch (error) {
      if (read.kind === 'readable') read = { kind: 'readable', leftOver: error };
    }
  }
  return read;
}

// Returns the keys the store confirmed deleted; keys it reported errors for are kept as known.
export async function deleteKeys(target: RemoteTarget, keys: readonly string[], signal: AbortSignal): Promise<{ deleted: string[]; failed: string[] }> {
  const { failed } = await target.store.deleteMany(
    keys.map((key) => target.prefix + key),
    signal,
  );
  const deleted: string[] = [];
  const kept: string[] = [];
  for (const key of keys) (failed.has(target.prefix + key) ? kept : deleted).push(key);
  return { deleted, failed: kept };
}
