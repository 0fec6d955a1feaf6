import { describeOwner, LEASE_KEY, readLease } from '../agent/state/lease.js';
import { METADATA_KEY } from '../agent/state/metadata.js';
import { readMetadata, type RemoteTarget } from '../agent/state/remote.js';
import { isStoreError, type ObjectStore } from '../agent/store/store.js';
import { forEachBounded } from '../shared/pool.js';
import { ToolError } from './kube.js';

// A session's saved state as a whole, for rm and gc: every object under its prefix, who
// still owns it, when it was last written, and its removal.

export interface SavedSession {
  session: string;
  // Full keys, with their sizes.
  objects: Map<string, number>;
  bytes: number;
}

export const sessionTarget = (store: ObjectStore, namespace: string, session: string): RemoteTarget => ({ store, prefix: `${namespace}/${session}/` });

async function listAll(store: ObjectStore, prefix: string, signal: AbortSignal) {
  try {
    return await store.list(prefix, signal);
  } catch (error) {
    if (isStoreError(error, 'access-denied')) {
      throw new ToolError(`listing s3://${store.bucket}/${prefix} was refused: removing a session's state needs s3:ListBucket (the only way to find every object)`);
    }
    throw error;
  }
}

/** The sessions with objects under `namespace/`, by name. */
export async function listSavedSessions(store: ObjectStore, namespace: string, signal: AbortSignal): Promise<Map<string, SavedSession>> {
  const sessions = new Map<string, SavedSession>();
  for (const object of await listAll(store, `${namespace}/`, signal)) {
    const rest = object.key.slice(namespace.length + 1);
    const slash = rest.indexOf('/');
    if (slash <= 0) continue;
    const session = rest.slice(0, slash);
    const saved = sessions.get(session) ?? { session, objects: new Map<string, number>(), bytes: 0 };
    saved.objects.set(object.key, object.size);
    saved.bytes += object.size;
    sessions.set(session, saved);
  }
  return sessions;
}

export async function savedSession(store: ObjectStore, namespace: string, session: string, signal: AbortSignal): Promise<SavedSession> {
  const objects = await listAll(store, `${namespace}/${session}/`, signal);
  return { session, objects: new Map(objects.map((o) => [o.key, o.size])), bytes: objects.reduce((sum, o) => sum + o.size, 0) };
}

/**
 * Who still owns the session's state: an owner pod whose lease is active and was renewed
 * within its TTL (by this machine's clock), or an owner.json nobody can read.
 */
export async function leaseHolder(target: RemoteTarget, signal: AbortSignal, now = Date.now()): Promise<string | undefined> {
  const read = await readLease(target, signal);
  if (read.kind === 'missing') return undefined;
  if (read.kind === 'unknown') return `${LEASE_KEY} cannot be read`;
  if (read.kind === 'invalid') return `${LEASE_KEY} is unreadable (${read.reason}): remove it by hand once no pod of the session runs`;
  const { body } = read;
  if (body.state === 'released') return undefined;
  const renewed = Date.parse(body.renewedAt);
  if (Number.isFinite(renewed) && now - renewed >= body.ttlSeconds * 1000) return undefined;
  return `${describeOwner(body)} holds the session (renewed ${body.renewedAt})`;
}

/** When the state was last written: metadata.json's lastSync, else its newest object. */
export async function lastWrite(target: RemoteTarget, saved: SavedSession, signal: AbortSignal): Promise<Date | undefined> {
  if (saved.objects.has(target.prefix + METADATA_KEY)) {
    const read = await readMetadata(target, signal).catch(() => undefined);
    const lastSync = read?.kind === 'found' ? Date.parse(read.metadata.lastSync) : NaN;
    if (Number.isFinite(lastSync)) return new Date(lastSync);
  }
  let newest: number | undefined;
  await forEachBounded([...saved.objects.keys()], 8, async (key) => {
    const modified = (await target.store.head(key, signal)).lastModified?.getTime();
    if (modified !== undefined && (newest === undefined || modified > newest)) newest = modified;
  });
  return newest === undefined ? undefined : new Date(newest);
}

/**
 * Removes every object of the session: the files first, metadata.json and the lease last,
 * so a removal cut short leaves a manifest whose missing files the next hydrate reports
 * (and a second run finishes), never a tree that looks whole.
 */
export async function removeSaved(target: RemoteTarget, saved: SavedSession, signal: AbortSignal): Promise<{ removed: number; bytes: number; failed: string[] }> {
  const last = new Set([target.prefix + METADATA_KEY, target.prefix + LEASE_KEY]);
  const all = [...saved.objects.keys()];
  const failed: string[] = [];
  let removed = 0;
  let bytes = 0;
  for (const keys of [all.filter((key) => !last.has(key)), all.filter((key) => last.has(key))]) {
    if (keys.length === 0) continue;
    const result = await target.store.deleteMany(keys, signal);
    for (const key of keys) {
      if (result.failed.has(key)) {
        failed.push(key);
      } else {
        removed += 1;
        bytes += saved.objects.get(key) ?? 0;
      }
    }
    if (failed.length > 0) break;
  }
  return { removed, bytes, failed };
}
