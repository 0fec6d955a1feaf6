import { applyBudget } from './budget.js';
import { sameFile, type FileEntry, type FileMap, type SkippedFile } from './metadata.js';
import type { ExcludeMatcher } from './patterns.js';
import type { LocalRecord } from './record.js';
import type { SyncPath } from './settings.js';
import type { LocalFile } from './walk.js';

/*
 * What a sync cycle decides, as pure functions of what it knows: the walk, the record of
 * what is in S3, a listing where one was made, the clock. sync.ts runs the I/O around them;
 * the data-safety guards live here, where a table of cases can check every one of them.
 */

export interface UploadPlan {
  // Changed or new files within the budget, to upload.
  uploads: LocalFile[];
  // Files within the budget, by key (refresh uploads their local copy again if needed):
  // the walk's own map when nothing is skipped, the usual case, rather than a copy of it.
  admitted: ReadonlyMap<string, LocalFile>;
  unchanged: number;
  // Past MAX_SYNC_SIZE: never uploaded, never deleted remotely.
  skipped: SkippedFile[];
}

export function planUploads(local: ReadonlyMap<string, LocalFile>, known: FileMap, maxSyncSize: number): UploadPlan {
  const budget = applyBudget([...local.values()], maxSyncSize);
  const uploads = budget.admitted.filter((file) => !sameFile(known.get(file.key), file));
  return {
    uploads,
    admitted: budget.skipped.length === 0 ? local : new Map(budget.admitted.map((file) => [file.key, file])),
    unchanged: budget.admitted.length - uploads.length,
    skipped: budget.skipped,
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
  local: ReadonlyMap<string, LocalFile>;
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
    // A negative mtime: an object this pod only knows from a listing (adopted, or written
    // by another tool); it was never local here, so its absence is no deletion. Nor is
    // that of an object hydrate could not restore.
    if (entry.mtimeMs < 0 || local.has(key) || isExcludedKey(key, input.excludes) || record.unrestored?.has(key)) continue;
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
  for (const [key, size] of listed) if (!known.has(key)) adopted.set(key, { size, mtimeMs: -1 });
  const vanished = [...known].filter(([key, entry]) => !listed.has(key) && entry.uploadedAt !== undefined).map(([key]) => key);
  return { adopted, vanished };
}

// Invariant 7: the objects past `maxAgeMs` since their last write, oldest first (unknown
// ages, of objects written by other tools, count as oldest), at most `limit`.
export function planRefreshes(known: FileMap, now: number, maxAgeMs: number, limit: number): Array<[string, FileEntry]> {
  return [...known]
    .filter(([, entry]) => now - (entry.uploadedAt ?? 0) >= maxAgeMs)
    .sort(([keyA, a], [keyB, b]) => (a.uploadedAt ?? 0) - (b.uploadedAt ?? 0) || (keyA < keyB ? -1 : keyA > keyB ? 1 : 0))
    .slice(0, limit);
}
