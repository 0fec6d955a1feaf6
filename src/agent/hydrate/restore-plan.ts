import path from 'node:path';
import type { SyncPath } from '../settings.js';
import { longComponent, resolveKey } from '../files/keys.js';
import { BUNDLE_FILE_LIMIT, BUNDLE_KEY } from '../bundle/bundle-format.js';
import { isRemoteOnly, remoteOnly, sameFile, type FileEntry } from '../state/metadata.js';
import { manifestIsCurrent, pendingAdoptions, type LeaseBody } from '../state/lease.js';
import type { LocalRecord } from '../state/record.js';
import type { Listing, MetadataRead } from '../state/remote.js';

/*
 * What a hydrate attempt restores, decided from what it read (metadata.json, the listing,
 * the lease this pod now holds, its own record) without touching S3 or the workspace. The
 * restore (restore.ts) carries the plan out.
 */

export interface RestoreInput {
  metadata: MetadataRead;
  listing: Listing;
  // The session's lease, this pod's since hydrate took it.
  lease: LeaseBody;
  // This pod's own record of an earlier complete hydrate (init-hydrate run again over the
  // surviving workspace, DESIGN rule 11): nothing is restored over the live files.
  rerun?: Pick<LocalRecord, 'files' | 'unrestored'>;
  // In a re-run, the keys whose local file exists (whatever it holds now).
  present?: ReadonlySet<string>;
  syncPaths: readonly SyncPath[];
  workspaceDir: string;
}

export interface RestoreJob {
  key: string;
  // Relative to the workspace root.
  relativePath: string;
  // The manifest's entry: what a file already in place must match, and the hash the
  // restored bytes must have.
  known: FileEntry | undefined;
  // What the record keeps for the key if it cannot be restored.
  remote: FileEntry | undefined;
  // The object's size as S3 lists it now, else as the manifest has it.
  announcedSize: number | undefined;
}

// A key reported and not restored: refused (it would escape the workspace) or not
// restorable (named, left in S3 and never deleted by sync).
export interface Skip {
  key: string;
  refused: boolean;
  reason: string;
}

export interface RestorePlan {
  // Whether metadata.json is the whole truth for the lease. When it is not, its hashes may
  // name an older content than the objects': they are dropped (each object is checked
  // against its own stored checksum) and the restore bundle is not used (rule 12).
  current: boolean;
  // Nothing in S3 says state exists: a fresh session.
  fresh: boolean;
  // metadata.json's manifest with the files a superseded pod left for the owner.
  manifest: Map<string, FileEntry>;
  // Fetched per object, in this order: large files first.
  fetch: RestoreJob[];
  // Small files, taken from the restore bundle where it holds exactly the object, else
  // fetched per object after the others.
  fromBundle: RestoreJob[];
  // In the order they are reported.
  skipped: Skip[];
  // A re-run's keys the runner has (its file is there) or deleted: kept as they are.
  runnerHas: string[];
  runnerDeleted: string[];
  // What the record starts from: a re-run's files, objects of sync paths this pod does
  // not sync (kept in the manifest for a pod that does) and the keys not restorable.
  files: Map<string, FileEntry>;
  // Keys that exist in S3 but not locally: sync must never read them as deleted.
  unrestored: Set<string>;
  // No metadata.json shows that these credentials may read here: every object refused
  // is then no read access at all, not one bad object.
  readAccessUnproven: boolean;
}

export function planRestore(input: RestoreInput): RestorePlan {
  const { metadata, listing } = input;
  const current = manifestIsCurrent(input.lease, metadata.kind === 'found' ? metadata.metadata.generation : undefined);
  const manifest = restoreManifest(metadata, input.lease, current);
  const plan: RestorePlan = {
    current,
    fresh: false,
    manifest,
    fetch: [],
    fromBundle: [],
    skipped: [],
    runnerHas: [],
    runnerDeleted: [],
    files: new Map(input.rerun?.files ?? []),
    unrestored: new Set(input.rerun?.unrestored ?? []),
    readAccessUnproven: metadata.kind === 'missing',
  };
  const keys = remoteKeys(input);
  if (keys.size === 0) return { ...plan, fresh: true };
  const jobs = withoutDirectoryClashes(candidates(input, plan, [...keys].sort()), plan);
  // A listing shows whether there is a bundle; without one, only the GET can tell.
  const noBundle = !current || (listing.kind === 'listed' && !listing.agentObjects.has(BUNDLE_KEY));
  const large: RestoreJob[] = [];
  const small: RestoreJob[] = [];
  for (const job of jobs) {
    const size = job.remote?.size;
    if (size !== undefined && size <= BUNDLE_FILE_LIMIT) small.push(job);
    else large.push(job);
  }
  return noBundle ? { ...plan, fetch: [...large, ...small] } : { ...plan, fetch: large, fromBundle: small };
}

// Every key S3 has for the session: metadata.json's, the files a superseded pod left for
// the owner, the listing's.
export function remoteKeys(input: Pick<RestoreInput, 'metadata' | 'lease' | 'listing'>): Set<string> {
  const { metadata, lease, listing } = input;
  return new Set([
    ...Object.keys(metadata.kind === 'found' ? (metadata.metadata.manifest ?? {}) : {}),
    ...Object.keys(lease.adopt ?? {}),
    ...(listing.kind === 'listed' ? listing.sizes.keys() : []),
  ]);
}

function restoreManifest(metadata: MetadataRead, lease: LeaseBody, current: boolean): Map<string, FileEntry> {
  const manifest = new Map(Object.entries(metadata.kind === 'found' ? (metadata.metadata.manifest ?? {}) : {}));
  // Files a pod superseded by an earlier owner uploaded for the session, not yet in the
  // manifest.
  for (const [key, entry] of pendingAdoptions(lease)) if (!manifest.has(key)) manifest.set(key, entry);
  if (!current) {
    for (const [key, entry] of manifest) {
      const { sha256: _older, ...rest } = entry;
      manifest.set(key, rest);
    }
  }
  return manifest;
}

// Every key that maps to a file of a sync path and is not the runner's, in key order;
// the others are refused, kept as the runner left them, or only recorded.
function candidates(input: RestoreInput, plan: RestorePlan, keys: readonly string[]): RestoreJob[] {
  const { listing, rerun, workspaceDir } = input;
  const listed = listing.kind === 'listed' ? listing.sizes : undefined;
  const found: RestoreJob[] = [];
  for (const key of keys) {
    const known = plan.manifest.get(key);
    const listedSize = listed?.get(key);
    const remote = known ?? (listedSize === undefined ? undefined : remoteOnly(listedSize));
    const resolution = resolveKey(key, input.syncPaths, workspaceDir);
    if (resolution.kind === 'refused') {
      plan.skipped.push({ key, refused: true, reason: resolution.reason });
    } else if (resolution.kind === 'unmapped') {
      // Sync never deletes these either.
      if (remote) plan.files.set(key, remote);
    } else if (rerun && input.present?.has(key)) {
      plan.runnerHas.push(key);
    } else if (rerun && deletedByRunner(rerun, key)) {
      plan.runnerDeleted.push(key);
    } else {
      const job = { key, relativePath: path.relative(workspaceDir, resolution.localPath), known, remote, announcedSize: listedSize ?? known?.size };
      if (longComponent(job.relativePath)) skip(plan, job, 'a path component is longer than 255 bytes');
      else found.push(job);
    }
  }
  return found;
}

// In a re-run, a key restored or uploaded in this pod whose file is gone was deleted by
// the runner (and sync deletes the object). Only keys this pod never had locally are
// restored.
function deletedByRunner(rerun: Pick<LocalRecord, 'files' | 'unrestored'>, key: string): boolean {
  const known = rerun.files.get(key);
  return known !== undefined && !isRemoteOnly(known) && !rerun.unrestored?.has(key);
}

// A key that is also a directory prefix (`a` and `a/b`) cannot be both locally: the
// directory, which may hold many files, wins.
function withoutDirectoryClashes(jobs: readonly RestoreJob[], plan: RestorePlan): RestoreJob[] {
  const directories = new Set<string>();
  for (const job of jobs) {
    for (let dir = path.dirname(job.relativePath); dir !== '.' && !directories.has(dir); dir = path.dirname(dir)) {
      directories.add(dir);
    }
  }
  return jobs.filter((job) => {
    if (!directories.has(job.relativePath)) return true;
    skip(plan, job, `it is also a directory (${job.key}/...)`);
    return false;
  });
}

// Named and left in S3; the record keeps what S3 has so sync never reads it as deleted.
function skip(plan: RestorePlan, job: RestoreJob, reason: string): void {
  plan.skipped.push({ key: job.key, refused: false, reason });
  plan.unrestored.add(job.key);
  if (job.remote) plan.files.set(job.key, job.remote);
}

// The counts of the plan that hydrate's log lines report.
export interface PlanCounts {
  // Files the restore takes on ("Restoring N files").
  restoring: number;
  // Files already in place.
  unchanged: number;
  refused: number;
  unrestorable: number;
}

export function planCounts(plan: RestorePlan): PlanCounts {
  const refused = plan.skipped.filter((skipped) => skipped.refused).length;
  return {
    restoring: plan.fetch.length + plan.fromBundle.length,
    unchanged: plan.runnerHas.length,
    refused,
    unrestorable: plan.skipped.length - refused,
  };
}

// What lstat says of a regular file.
export interface LocalStat {
  size: number;
  mtimeMs: number;
  mode: number;
}

/**
 * The record's entry for a file already in place (an earlier attempt restored it), or
 * undefined when it must be restored. The object's age comes from the manifest: sync
 * refreshes it before the bucket's lifecycle rule would expire it.
 */
export function inPlaceEntry(known: FileEntry | undefined, local: LocalStat | undefined): FileEntry | undefined {
  if (!known || !local || !sameFile(known, local)) return undefined;
  return { ...local, uploadedAt: known.uploadedAt, sha256: known.sha256 };
}
