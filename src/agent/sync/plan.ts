import { applyBudget } from './budget.js';
import { isRemoteOnly, remoteOnly, sameFile, type FileEntry, type FileMap, type SkippedFile } from '../state/metadata.js';
import type { ExcludeMatcher } from '../files/patterns.js';
import type { LocalRecord } from '../state/record.js';
import type { SyncPath } from '../settings.js';
import type { LocalFileMap } from '../files/walk.js';

/*
 * What a sync cycle decides, as pure functions of what it knows: the walk, the record of
 * what is in S3, a listing where one was made, the clock. The cycle's phases (sync.ts and
 * the modules it calls) run the I/O around them; the data-safety guards live here, where
 * a table of cases can check every one of them.
 */

export interface UploadPlan {
  // Keys of the changed or new files within the budget, to upload, smallest first (ties
  // by key). Keys, not files: a cold upload would hold a file object with its path for
  // every file for its whole length.
  uploads: string[];
  // Files within the budget, by key (refresh uploads their local copy again if needed):
  // the walk's own map when nothing is skipped, the usual case, rather than a copy of it.
  admitted: LocalFileMap;
  unchanged: number;
  // Past MAX_SYNC_SIZE: never uploaded, never deleted remotely.
  skipped: SkippedFile[];
}

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function planUploads(local: LocalFileMap, known: FileMap, maxSyncSize: number): UploadPlan {
  let total = 0;
  for (const [, stat] of local.entries()) total += stat.size;
  // Everything fits, the usual case: the budget's sorted copy of every file is not needed.
  const budget = total <= maxSyncSize ? undefined : applyBudget([...local.values()], maxSyncSize);
  const keys: string[] = [];
  const sizes: number[] = [];
  let unchanged = 0;
  for (const [key, stat] of budget?.admitted.map((file) => [file.key, file] as const) ?? local.entries()) {
    if (sameFile(known.get(key), stat)) {
      unchanged += 1;
    } else {
      keys.push(key);
      sizes.push(stat.size);
    }
  }
  const order = keys.map((_, index) => index).sort((a, b) => sizes[a]! - sizes[b]! || compareKeys(keys[a]!, keys[b]!));
  return {
    uploads: order.map((index) => keys[index]!),
    admitted: budget === undefined ? local : new Map(budget.admitted.map((file) => [file.key, file])),
    unchanged,
    skipped: budget?.skipped ?? [],
  };
}

// A key ("artifacts/a/b") whose file or one of whose directories SYNC_EXCLUDE names: the
// walk never looks there, so its absence locally says nothing.
export function isExcludedKey(key: string, excludes: ExcludeMatcher): boolean {
  const relative = key.slice(key.indexOf('/') + 1);
  if (excludes.excludesFile(relative)) return true;
  const segments = relative.split('/');
  for (let end = 1; end < segments.length; end += 1) {
    if (excludes.prunesDir(segments.slice(0, end).join('/'))) return true;
  }
  return false;
}

export interface DeletionInput {
  record: Pick<LocalRecord, 'hydrated' | 'files' | 'unrestored'>;
  local: Pick<LocalFileMap, 'has'>;
  // Files the walk found per sync path name.
  counts: ReadonlyMap<string, number>;
  walkHadErrors: boolean;
  // Whether any upload of this cycle failed (or was not attempted).
  uploadsFailed: boolean;
  syncPaths: readonly SyncPath[];
  excludes: ExcludeMatcher;
}

export interface DeletionPlan {
  deletions: string[];
  // Sync paths empty locally over files in S3: how many files were kept for each.
  guarded: Map<string, number>;
}

// Data-safety invariant 1: a remote object is deleted only when hydrate succeeded in this
// pod, the file was known (and restored: an unrestored key was never local), it is gone
// locally, every upload of this cycle succeeded, the walk read every directory, and its
// sync path is not empty locally (an empty tree over a non-empty remote is a missing
// mount, not a user's deletion).
export function planDeletions(input: DeletionInput): DeletionPlan {
  const { record, local, counts } = input;
  const plan: DeletionPlan = { deletions: [], guarded: new Map() };
  if (!record.hydrated || input.walkHadErrors || input.uploadsFailed) return plan;
  for (const [key, entry] of record.files) {
    // An object this pod only knows from a listing (adopted, or written by another tool)
    // was never local here, so its absence is no deletion. Nor is that of an object
    // hydrate could not restore.
    if (isRemoteOnly(entry) || local.has(key) || isExcludedKey(key, input.excludes) || record.unrestored?.has(key)) continue;
    const name = key.slice(0, key.indexOf('/'));
    if (!input.syncPaths.some((syncPath) => syncPath.name === name)) continue;
    if ((counts.get(name) ?? 0) === 0) {
      plan.guarded.set(name, (plan.guarded.get(name) ?? 0) + 1);
      continue;
    }
    plan.deletions.push(key);
  }
  return plan;
}

export interface Adoption {
  // Objects others put under the prefix, entering the record with an unknown mtime.
  adopted: Map<string, FileEntry>;
  // Objects the record has as uploaded that the listing lacks (expired or deleted behind
  // the agent's back): due for a refresh, which uploads them again from the local copy.
  vanished: string[];
}

export function planAdoption(known: FileMap, listed: ReadonlyMap<string, number>): Adoption {
  const adopted = new Map<string, FileEntry>();
  for (const [key, size] of listed) if (!known.has(key)) adopted.set(key, remoteOnly(size));
  const vanished: string[] = [];
  for (const [key, entry] of known) if (!listed.has(key) && entry.uploadedAt !== undefined) vanished.push(key);
  return { adopted, vanished };
}

// Invariant 7: the objects past `maxAgeMs` since their last write, oldest first (unknown
// ages, of objects written by other tools, count as oldest), at most `limit`.
// Only the due entries are collected: a copy of every entry weighs on a large record.
export function planRefreshes(known: FileMap, now: number, maxAgeMs: number, limit: number): Array<[string, FileEntry]> {
  const due: Array<[string, FileEntry]> = [];
  for (const [key, entry] of known) if (now - (entry.uploadedAt ?? 0) >= maxAgeMs) due.push([key, entry]);
  return due.sort(([keyA, a], [keyB, b]) => (a.uploadedAt ?? 0) - (b.uploadedAt ?? 0) || compareKeys(keyA, keyB)).slice(0, limit);
}
