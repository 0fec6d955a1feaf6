import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { logName, type AgentLog } from '../log.js';
import type { FileMap } from '../state/metadata.js';
import { writeRecord } from '../state/record.js';
import type { Listing, RemoteTarget } from '../state/remote.js';
import { describeFailure, isStoreError } from '../store/store.js';
import { downloadFile, IntegrityError, RefusedPath, WorkspaceTree, writeWholeFile } from '../files/transfer.js';
import { formatBytes } from '../../shared/size.js';
import { forEachBounded } from '../../shared/pool.js';
import { restoreFromBundle, type BundledFile } from './hydrate-bundle.js';
import type { CreatedDirs } from './hydrate-journal.js';
import type { MissingFiles } from './missing-files.js';
import { inPlaceEntry, planCounts, type RestoreJob, type RestorePlan, type Skip } from './restore-plan.js';
import { RestoreTally, type HydrateSummary } from './restore-tally.js';

export interface RestoreContext {
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
  progressIntervalMs: number;
  signal: AbortSignal;
  // Files of the manifest found gone from S3 (missing-files.ts reports them).
  missing?: MissingFiles;
}

// Where a complete hydrate leaves its record: the pod's state dir, under its owner's uid.
export interface RecordContext {
  target: RemoteTarget;
  stateDir: string;
  owner: string;
  createdDirs: CreatedDirs;
}

// One restore's steps share these, and nothing else.
interface Run extends RestoreContext {
  tree: WorkspaceTree;
  tally: RestoreTally;
  listingDenied: boolean;
}

/**
 * Carries out a plan that is not fresh: every job restored from the bundle or its object
 * unless already in place, the directories it creates journalled, then the sweep and the
 * record. Files restored by an earlier attempt match their manifest entry and are kept,
 * which makes a retry a resume.
 */
export async function restore(context: RestoreContext & RecordContext, plan: RestorePlan, listing: Listing, workspaceDir: string): Promise<HydrateSummary> {
  const { target, log } = context;
  await mkdir(workspaceDir, { recursive: true });
  const tree = new WorkspaceTree(await realpath(workspaceDir), (dir) => context.createdDirs.add(dir));
  reportSkipped(target, log, plan.skipped);
  const tally = new RestoreTally(plan);
  log.info(`Restoring ${planCounts(plan).restoring} files from s3://${target.store.bucket}/${target.prefix}`);
  await restoreJobs({ ...context, tree, tally, listingDenied: listing.kind === 'denied' }, plan, listing);
  if (tally.failure !== undefined) throw tally.failure;
  // Every object refused and no metadata.json to show the policy lets these credentials
  // read here: not one bad object but no read access at all.
  const { summary } = tally;
  if (tally.denied !== undefined && summary.restored + summary.unchanged === 0 && plan.readAccessUnproven) throw tally.denied;
  await completeHydrate(context, tree.root, tally.kept, tally.files, tally.unrestored);
  return summary;
}

/**
 * What makes a hydrate complete: the journal's sweep of what an interrupted attempt left
 * and no key now keeps, then the record, which lets sync propagate deletions.
 */
export async function completeHydrate(context: RecordContext, root: string, kept: ReadonlySet<string>, files: FileMap, unrestored: Set<string>): Promise<void> {
  const { target } = context;
  await context.createdDirs.settle(root, kept);
  await writeRecord(context.stateDir, { bucket: target.store.bucket, prefix: target.prefix, hydrated: true, owner: context.owner, files, unrestored });
}

function reportSkipped(target: RemoteTarget, log: AgentLog, skipped: readonly Skip[]): void {
  for (const { key, refused, reason } of skipped) {
    if (refused) log.warn(`refusing object ${target.prefix}${logName(key)}: ${reason}`);
    else log.warn(`cannot restore ${logName(key)}: ${reason}`);
  }
}

// Small files are taken from the restore bundle where it holds exactly the object; the
// rest (and whatever the bundle did not cover) are fetched per object, large files first,
// while the bundle streams.
async function restoreJobs(run: Run, plan: RestorePlan, listing: Listing): Promise<void> {
  const { target, signal, log, tally } = run;
  const total = planCounts(plan).restoring;
  const progress = setInterval(() => {
    log.detail(`restored ${tally.done}/${total} files (${formatBytes(tally.summary.bytes)})`);
  }, run.progressIntervalMs);
  const wanted = new Map(plan.fromBundle.map((job) => [job.key, job]));
  const bundleRead =
    wanted.size === 0
      ? Promise.resolve()
      : restoreFromBundle({ target, listing, manifest: plan.manifest, signal, log }, wanted, (job, file) => placeBundled(run, job, file));
  try {
    await forEachBounded([...plan.fetch, ...plan.fromBundle], run.workers, async (job) => {
      if (wanted.has(job.key)) {
        await bundleRead;
        if (tally.bundled.has(job.key)) return;
      }
      await restoreObject(run, job);
    });
  } finally {
    clearInterval(progress);
  }
}

async function placeBundled(run: Run, job: RestoreJob, file: BundledFile): Promise<void> {
  try {
    if (!(await keepInPlace(run, job))) {
      const mode = file.mode === undefined ? undefined : file.mode & 0o777;
      await writeWholeFile(run.tree, job.relativePath, file.bytes, { mtimeMs: file.mtimeMs, mode });
      run.tally.restored(job, { size: file.bytes.length, mtimeMs: file.mtimeMs, mode, uploadedAt: job.known?.uploadedAt, sha256: file.sha256 });
    }
    run.tally.bundled.add(job.key);
    run.tally.done += 1;
  } catch {
    // Left to the per-object restore, which names the problem.
  }
}

async function restoreObject(run: Run, job: RestoreJob): Promise<void> {
  const { target, signal, log, tally } = run;
  if (tally.failure !== undefined) return;
  try {
    if (await keepInPlace(run, job)) return;
    const downloaded = await downloadFile(
      { store: target.store, objectKey: target.prefix + job.key, relativePath: job.relativePath, known: job.known, announcedSize: job.announcedSize, signal },
      run.tree,
    );
    const mtime = downloaded.unusableMtime;
    if (mtime !== undefined) {
      const used = mtime.used === 'manifest' ? "the manifest's mtime" : 'the time it was uploaded';
      log.warn(`${logName(job.key)} has an unusable x-amz-meta-mtime ("${logName(mtime.value)}"): restored with ${used}`);
    }
    tally.restored(job, { ...downloaded.entry, uploadedAt: job.known?.uploadedAt });
  } catch (error) {
    objectFailed(run, job, error);
  } finally {
    tally.done += 1;
  }
}

function objectFailed(run: Run, job: RestoreJob, error: unknown): void {
  const { tally, log } = run;
  if (run.signal.aborted) {
    tally.failure ??= error;
    return;
  }
  if (isStoreError(error, 'not-found')) {
    // Deleted since it was listed: there is nothing left to restore or to keep.
    log.warn(`cannot restore ${logName(job.key)}: missing in S3 (deleted since it was listed)`);
    run.missing?.add(job.key);
    return;
  }
  // Without s3:ListBucket a missing object answers 403, as a denied one does.
  if (run.listingDenied && job.known !== undefined && isStoreError(error, 'access-denied')) run.missing?.add(job.key);
  const problem = objectProblem(error);
  // Workers see the failure and stop taking jobs.
  if (problem === undefined) tally.failure ??= error;
  else tally.unrestorable(job, problem, log);
  if (isStoreError(error, 'access-denied')) tally.denied ??= error;
}

// Why a key cannot be restored per object (it is then named, left in S3 and never deleted
// by sync), or undefined when the error concerns the whole attempt (endpoint, credentials,
// a full disk) and the attempt fails.
const PER_OBJECT_ERRNO = new Set(['ENAMETOOLONG', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ELOOP', 'ENOTEMPTY']);

function objectProblem(error: unknown): string | undefined {
  if (error instanceof RefusedPath || error instanceof IntegrityError) return error.message;
  if (isStoreError(error, 'access-denied')) return describeFailure(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && PER_OBJECT_ERRNO.has(code)) return `${code} (${(error as Error).message})`;
  return undefined;
}

// Whether the file is already in place (an earlier attempt restored it): its record entry
// is then kept. The directory check comes first: an lstat through a symlinked directory
// could otherwise find a matching file outside and count it as restored. A directory this
// attempt created holds nothing of before.
async function keepInPlace(run: Run, job: RestoreJob): Promise<boolean> {
  const { tree } = run;
  const dir = path.dirname(job.relativePath);
  await tree.ensureDir(dir);
  if (!job.known || tree.isNew(dir)) return false;
  const local = await lstat(path.join(tree.root, job.relativePath)).catch(() => undefined);
  const entry = inPlaceEntry(job.known, local?.isFile() ? { size: local.size, mtimeMs: local.mtimeMs, mode: local.mode & 0o7777 } : undefined);
  if (!entry) return false;
  run.tally.inPlace(job, entry);
  return true;
}
