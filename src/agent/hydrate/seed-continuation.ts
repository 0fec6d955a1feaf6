import { setMaxListeners } from 'node:events';
import { logName, type AgentLog } from '../log.js';
import { sessionPrefix, type AgentSettings } from '../settings.js';
import { manifestIsCurrent, podIdentity, readLease } from '../state/lease.js';
import { remoteOnly, type FileEntry } from '../state/metadata.js';
import { listRemote, readMetadata, writeMetadataOf, type MetadataRead, type RemoteTarget } from '../state/remote.js';
import { describeFailure, failureOf, isStoreError } from '../store/store.js';
import { takeOwnership } from './take-ownership.js';
import type { MissingFiles } from './missing-files.js';
import { backoffDelayMs, type BackoffPolicy } from '../../shared/backoff.js';
import { forEachBounded } from '../../shared/pool.js';
import { formatBytes } from '../../shared/size.js';
import { sleep } from '../../shared/sleep.js';
import { VERSION } from '../../shared/version.js';

/*
 * A continuation starts where its parent stopped (DESIGN rule 13). Its first pod copies
 * the parent's saved objects, inside the store, under its own prefix, and writes its own
 * metadata.json; from then on the child is a session like any other, in its own prefix.
 * The parent is only read: a parent that still runs (a sub-session its runner started)
 * keeps its files, its manifest and its ownership. The child's metadata.json is the mark
 * of a completed seed: a pod of the child that finds it never copies again, and the copy
 * runs while this pod owns the child's session, so no other pod of the child writes there.
 */

export interface SeedContext {
  settings: AgentSettings;
  // The child's own prefix.
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
  missing?: MissingFiles;
  leasePollMs?: number;
}

const SEED_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 15_000 };
const PERMANENT_ATTEMPTS = 3;
const MIN_LAST_ATTEMPT_MS = 250;

/** Seeds a continuation from its parent once; false when that failed and the session must not start. */
export async function seedContinuation(context: SeedContext): Promise<boolean> {
  const { settings, target, log } = context;
  const parent = settings.parentSession;
  if (parent === undefined) return true;
  const source: RemoteTarget = { store: target.store, prefix: sessionPrefix({ namespace: settings.namespace, session: parent }) };
  const identity = await podIdentity(settings);
  let deadline: number | undefined;
  for (let attempt = 1; ; attempt += 1) {
    try {
      if (deadline === undefined) {
        // Waiting for another pod of this session is not copy time.
        await takeOwnership({ target, settings, identity, log, pollMs: context.leasePollMs }, new AbortController().signal);
        deadline = Date.now() + settings.hydrateTimeoutSeconds * 1000;
      }
      const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
      setMaxListeners(0, signal);
      await seedOnce(context, parent, source, signal);
      return true;
    } catch (error) {
      const remaining = (deadline ?? Date.now()) - Date.now();
      if (remaining < MIN_LAST_ATTEMPT_MS || (failureOf(error).kind === 'access denied' && attempt >= PERMANENT_ATTEMPTS)) {
        log.error(`continuation of session ${parent} failed: ${describeFailure(error)}: the session does not start without its parent's state (gave up after ${attempt} attempts)`);
        return false;
      }
      const delay = Math.min(backoffDelayMs(attempt, SEED_BACKOFF), remaining - MIN_LAST_ATTEMPT_MS);
      log.warn(`continuation of session ${parent}, attempt ${attempt} failed: ${describeFailure(error)}; retrying in ${(delay / 1000).toFixed(1)}s`);
      await sleep(delay);
    }
  }
}

async function seedOnce(context: SeedContext, parent: string, source: RemoteTarget, signal: AbortSignal): Promise<void> {
  const { settings, target, log } = context;
  const own = await ownState(target, signal);
  if (own.seeded) {
    log.detail(`continuation of session ${parent}: this session already has its own saved state, which it keeps`);
    return;
  }
  const state = await parentState(source, signal);
  if (state.sizes.size === 0) {
    log.info(`Continuation of session ${parent}, which has no saved state: starting fresh`);
    return;
  }
  const copied = new Map<string, FileEntry>();
  let bytes = 0;
  const uploadedAt = Date.now();
  await forEachBounded([...state.sizes.keys()].sort(), context.workers, async (key) => {
    // The child's own objects (files the platform pre-uploaded for it) win.
    if (own.existing.has(key)) return;
    try {
      await target.store.copy(source.prefix + key, target.prefix + key, signal);
    } catch (error) {
      if (!isStoreError(error, 'not-found')) throw error;
      log.warn(`cannot copy ${logName(key)} from session ${parent}: missing in S3`);
      context.missing?.add(key);
      return;
    }
    const size = state.sizes.get(key) ?? 0;
    const entry = state.manifest.get(key);
    copied.set(key, entry === undefined ? remoteOnly(size) : { ...settledEntry(entry, state.settled), size, uploadedAt });
    bytes += size;
  });
  const metadata = {
    lastSync: new Date().toISOString(),
    session: settings.session,
    namespace: settings.namespace,
    pathsSynced: settings.syncPaths.length,
    syncPaths: settings.syncPaths.map((p) => p.name),
    files: copied.size,
    bytes,
    agentVersion: VERSION,
  };
  // Last: the mark that the seed is complete.
  await writeMetadataOf(target, metadata, copied, signal);
  log.info(
    `Continuation of session ${parent}: copied ${copied.size} files (${formatBytes(bytes)}) from s3://${target.store.bucket}/${source.prefix} to ${target.prefix}; ${parent}'s own state is unchanged`,
  );
}

// A hash describes the content of the parent's last complete cycle: it is the object's
// only when nothing was written since (the parent released its session, or never held
// one). Otherwise hydrate checks each copy against the object's own stored checksum.
function settledEntry(entry: FileEntry, settled: boolean): FileEntry {
  if (settled) return entry;
  const { sha256: _older, ...rest } = entry;
  return rest;
}

// Whether the child already has saved state, and the keys it has (where it may list).
async function ownState(target: RemoteTarget, signal: AbortSignal): Promise<{ seeded: boolean; existing: Set<string> }> {
  const listing = await listRemote(target, signal);
  const existing = new Set(listing.kind === 'listed' ? listing.sizes.keys() : []);
  try {
    const read = await readMetadata(target, signal);
    return { seeded: read.kind !== 'missing', existing };
  } catch (error) {
    // This pod has just written and read the session's lease under this prefix: without
    // s3:ListBucket, a 403 here is AWS's answer for a missing key.
    if (listing.kind === 'denied' && isStoreError(error, 'access-denied')) return { seeded: false, existing };
    throw error;
  }
}

interface ParentState {
  manifest: Map<string, FileEntry>;
  // Every key to copy, with its size (as listed, else as the manifest has it).
  sizes: Map<string, number>;
  settled: boolean;
}

async function parentState(source: RemoteTarget, signal: AbortSignal): Promise<ParentState> {
  const [listing, lease] = await Promise.all([listRemote(source, signal), readLease(source, signal)]);
  let read: MetadataRead;
  try {
    read = await readMetadata(source, signal);
  } catch (error) {
    // Parent and child are prefixes of one namespace, under one policy: the child may read
    // its own objects, so without s3:ListBucket a 403 is a missing key.
    if (!(listing.kind === 'denied' && isStoreError(error, 'access-denied'))) throw error;
    read = { kind: 'missing' };
  }
  if (listing.kind === 'denied' && (read.kind === 'invalid' || (read.kind === 'found' && read.metadata.manifest === undefined))) {
    const why = read.kind === 'invalid' ? `its metadata.json is unreadable (${read.reason})` : 'its metadata.json has no manifest';
    throw new Error(`the parent's state cannot be enumerated: ${why}; grant s3:ListBucket on arn:aws:s3:::${source.store.bucket}`);
  }
  const manifest = new Map(Object.entries(read.kind === 'found' ? (read.metadata.manifest ?? {}) : {}));
  const sizes = new Map([...manifest].map(([key, entry]) => [key, entry.size] as const));
  if (listing.kind === 'listed') for (const [key, size] of listing.sizes) sizes.set(key, size);
  const generation = read.kind === 'found' ? read.metadata.generation : undefined;
  const settled = lease.kind === 'missing' || (lease.kind === 'found' && lease.body.state === 'released' && manifestIsCurrent(lease.body, generation));
  return { manifest, sizes, settled };
}
