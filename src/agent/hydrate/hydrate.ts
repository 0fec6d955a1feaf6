import { setMaxListeners } from 'node:events';
import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { AgentSettings } from '../settings.js';
import { sessionPrefix } from '../settings.js';
import { longComponent, resolveKey } from '../files/keys.js';
import { logName, type AgentLog } from '../log.js';
import { isRemoteOnly, remoteOnly, sameFile, type FileEntry, type FileMap } from '../state/metadata.js';
import { clearRecord, readRecord, writeRecord, type LocalRecord } from '../state/record.js';
import { manifestIsCurrent, pendingAdoptions, podIdentity, type PodIdentity } from '../state/lease.js';
import { takeOwnership, type Owned } from './take-ownership.js';
import { listRemote, probeAccess, readMetadata, type Listing, type MetadataRead, type RemoteTarget } from '../state/remote.js';
import { describeFailure, failureOf as storeFailureOf, isStoreError } from '../store/store.js';
import { formatBytes } from '../../shared/size.js';
import { backoffDelayMs, type BackoffPolicy } from '../../shared/backoff.js';
import { sleep } from '../../shared/sleep.js';
import { forEachBounded } from '../../shared/pool.js';
import { downloadFile, IntegrityError, RefusedPath, WorkspaceTree, writeWholeFile } from '../files/transfer.js';
import { BUNDLE_FILE_LIMIT, BUNDLE_KEY } from '../bundle/bundle-format.js';
import { restoreFromBundle } from './hydrate-bundle.js';
import { CreatedDirs } from './hydrate-journal.js';

export const FRESH_SESSION_MESSAGE = 'No existing state found, starting fresh session';
const PROGRESS_INTERVAL_MS = 2_000;

export interface HydrateContext {
  settings: AgentSettings;
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
  // How often a long restore reports its progress.
  progressIntervalMs?: number;
  // How often a pod waiting for the session's previous owner reads its lease.
  leasePollMs?: number;
}

// What hydrate knows of this pod's hold on the session before it restores.
interface SessionHold {
  identity: PodIdentity;
  owned: Owned;
  // This pod's own record of an earlier complete hydrate (init-hydrate run again over
  // the surviving workspace, DESIGN rule 11): nothing is restored over the live files.
  rerun: LocalRecord | undefined;
}

interface HydrateSummary {
  restored: number;
  unchanged: number;
  bytes: number;
  refused: number;
  unrestored: number;
}

// A failure hydrate names itself. Permanent ones (a policy, a missing bucket, state that
// cannot be enumerated) are not worth the whole HYDRATE_TIMEOUT_SECONDS.
class HydrateFailure extends Error {
  constructor(
    readonly kind: string,
    detail: string,
  ) {
    super(detail);
  }
}

const PERMANENT_KINDS = new Set(['access denied', 'bucket not found', 'state cannot be enumerated', 'wrong region']);

function failureOf(error: unknown): { kind: string; detail: string } {
  if (error instanceof HydrateFailure) return { kind: error.kind, detail: error.message };
  return storeFailureOf(error);
}

function listingFix(target: RemoteTarget): string {
  const namespace = target.prefix.slice(0, target.prefix.indexOf('/'));
  return `listing denied: grant s3:ListBucket on arn:aws:s3:::${target.store.bucket} with condition s3:prefix "${namespace}/*"`;
}

// metadata.json, where a policy denies it rather than the key being missing.
type MetadataState = MetadataRead | { kind: 'denied'; error: unknown };

async function readMetadataState(target: RemoteTarget, signal: AbortSignal): Promise<MetadataState> {
  try {
    return await readMetadata(target, signal);
  } catch (error) {
    if (isStoreError(error, 'access-denied')) return { kind: 'denied', error };
    throw error;
  }
}

// What the remote state is, or a failure when it exists but cannot be enumerated. A
// session starts fresh only when nothing says state exists: metadata.json is missing
// (told apart from denied by what the policy allows, not by the status code) and the
// listing, where permitted, is empty.
async function remoteState(
  context: HydrateContext,
  signal: AbortSignal,
): Promise<{ metadata: MetadataRead; manifest: Map<string, FileEntry>; listing: Listing }> {
  const { target, log } = context;
  const [read, listing] = await Promise.all([readMetadataState(target, signal), listRemote(target, signal, { etags: true })]);
  let metadata: MetadataRead;
  if (read.kind === 'denied') {
    // With s3:ListBucket, S3 answers 404 for a missing key: this 403 is a real denial.
    if (listing.kind === 'listed') throw read.error;
    const probe = await probeAccess(target, signal);
    if (probe.kind === 'denied') {
      const granted = probe.step === 'write' ? 'neither read nor write' : 'write but not read';
      throw new HydrateFailure(
        'access denied',
        `reading metadata.json was refused, and these credentials may ${granted} objects under ${target.prefix}: grant s3:GetObject and s3:PutObject on arn:aws:s3:::${target.store.bucket}/${target.prefix}* (${describeFailure(probe.error)})`,
      );
    }
    if (probe.leftOver !== undefined) {
      log.warn(`could not delete the access probe under ${target.prefix}: ${describeFailure(probe.leftOver)}`);
    }
    // The policy lets these credentials read what they write here: the 403 meant missing.
    log.detail('metadata.json answered 403 without s3:ListBucket; a probe object was written and read back: it is missing');
    metadata = { kind: 'missing' };
  } else {
    metadata = read;
  }
  if (listing.kind === 'denied') {
    if (metadata.kind === 'invalid') {
      throw new HydrateFailure('state cannot be enumerated', `metadata.json unreadable: ${metadata.reason}; ${listingFix(target)}`);
    }
    if (metadata.kind === 'found' && metadata.metadata.manifest === undefined) {
      throw new HydrateFailure(
        'state cannot be enumerated',
        `metadata.json has no manifest (written by the platform's sync.sh); ${listingFix(target)}`,
      );
    }
  } else if (metadata.kind === 'invalid') {
    log.warn(`metadata.json is unreadable (${metadata.reason}): restoring from the listing`);
  }
  const manifest = new Map(Object.entries(metadata.kind === 'found' ? (metadata.metadata.manifest ?? {}) : {}));
  return { metadata, manifest, listing };
}

interface Job {
  key: string;
  relativePath: string;
  known: FileEntry | undefined;
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

// One attempt: read the manifest (and the listing where the policy allows it), then
// restore every mapped object that is not already in place. Files restored by an earlier
// attempt match their manifest entry and are skipped, which makes a retry a resume.
async function hydrateAttempt(context: HydrateContext, hold: SessionHold, createdDirs: CreatedDirs, signal: AbortSignal): Promise<HydrateSummary> {
  const { settings, target, log } = context;
  const { metadata, manifest, listing } = await remoteState(context, signal);
  // Files a pod superseded by an earlier owner uploaded for the session, not yet in the
  // manifest.
  for (const [key, entry] of pendingAdoptions(hold.owned.body)) if (!manifest.has(key)) manifest.set(key, entry);
  const current = manifestIsCurrent(hold.owned.body, metadata.kind === 'found' ? metadata.metadata.generation : undefined);
  if (!current) {
    log.warn(
      "metadata.json is older than the session's last changes (a cycle's uploads went up without it): every file is fetched from its object, none from the restore bundle",
    );
    // Its hashes may name an older content than the object's: each object is checked
    // against its own stored checksum instead.
    for (const [key, entry] of manifest) {
      const { sha256: _older, ...rest } = entry;
      manifest.set(key, rest);
    }
  }
  const keys = new Set([...manifest.keys(), ...(listing.kind === 'listed' ? listing.sizes.keys() : [])]);
  const { rerun } = hold;

  const restoredFiles: FileMap = new Map(rerun?.files ?? []);
  // Local paths this attempt restored or found in place: what the sweep keeps.
  const kept = new Set<string>();
  // Keys that exist in S3 but not locally: sync must never read them as deleted.
  const unrestored = new Set<string>(rerun?.unrestored ?? []);
  const summary: HydrateSummary = { restored: 0, unchanged: 0, bytes: 0, refused: 0, unrestored: 0 };
  const record = (files: FileMap) =>
    writeRecord(settings.stateDir, { bucket: target.store.bucket, prefix: target.prefix, hydrated: true, owner: hold.identity.uid, files, unrestored });
  if (keys.size === 0) {
    log.info(FRESH_SESSION_MESSAGE);
    if (listing.kind === 'denied') {
      log.detail('(without s3:ListBucket only metadata.json can show state: objects uploaded without one, such as pre-uploaded files, are not seen)');
    }
    // A fresh session is a complete hydrate of nothing: the record lets sync propagate
    // deletions of files it uploads itself in this first pod, and knows no remote file
    // it could wrongly delete.
    await createdDirs.settle(settings.workspaceDir, kept);
    await record(restoredFiles);
    return summary;
  }

  const remoteEntry = (key: string): FileEntry | undefined => {
    const size = listing.kind === 'listed' ? listing.sizes.get(key) : undefined;
    return manifest.get(key) ?? (size === undefined ? undefined : remoteOnly(size));
  };
  // The object's size as S3 lists it now, else as the manifest has it.
  const remoteSize = (key: string): number | undefined => (listing.kind === 'listed' ? listing.sizes.get(key) : undefined) ?? manifest.get(key)?.size;
  const skip = (key: string, reason: string) => {
    log.warn(`cannot restore ${logName(key)}: ${reason}`);
    unrestored.add(key);
    const entry = remoteEntry(key);
    if (entry) restoredFiles.set(key, entry);
    summary.unrestored += 1;
  };

  await mkdir(settings.workspaceDir, { recursive: true });
  const tree = new WorkspaceTree(await realpath(settings.workspaceDir), (dir) => createdDirs.add(dir));
  const candidates: Job[] = [];
  for (const key of [...keys].sort()) {
    const resolution = resolveKey(key, settings.syncPaths, settings.workspaceDir);
    if (resolution.kind === 'refused') {
      summary.refused += 1;
      log.warn(`refusing object ${target.prefix}${logName(key)}: ${resolution.reason}`);
    } else if (resolution.kind === 'file') {
      const relativePath = path.relative(settings.workspaceDir, resolution.localPath);
      const runners = rerun && (await keptByRunner(rerun, key, resolution.localPath));
      if (runners === 'present') summary.unchanged += 1;
      if (runners) continue;
      if (longComponent(relativePath)) skip(key, 'a path component is longer than 255 bytes');
      else candidates.push({ key, relativePath, known: manifest.get(key) });
    } else {
      // Objects of sync paths this pod does not sync stay in the manifest sync writes, so
      // a later pod that syncs them still finds them without ListBucket. Sync never
      // deletes them.
      const entry = remoteEntry(key);
      if (entry) restoredFiles.set(key, entry);
    }
  }
  // A key that is also a directory prefix (`a` and `a/b`) cannot be both locally: the
  // directory, which may hold many files, wins.
  const directories = new Set<string>();
  for (const job of candidates) {
    for (let dir = path.dirname(job.relativePath); dir !== '.' && !directories.has(dir); dir = path.dirname(dir)) {
      directories.add(dir);
    }
  }
  const jobs: Job[] = [];
  for (const job of candidates) {
    if (directories.has(job.relativePath)) skip(job.key, `it is also a directory (${job.key}/...)`);
    else jobs.push(job);
  }

  log.info(`Restoring ${jobs.length} files from s3://${target.store.bucket}/${target.prefix}`);
  let done = 0;
  let denied: unknown;
  const progress = setInterval(() => {
    log.detail(`restored ${done}/${jobs.length} files (${formatBytes(summary.bytes)})`);
  }, context.progressIntervalMs ?? PROGRESS_INTERVAL_MS);
  let firstError: unknown;

  // Whether the file is already in place (an earlier attempt restored it): its record
  // entry is then kept. The directory check comes first: an lstat through a symlinked
  // directory could otherwise find a matching file outside and count it as restored. A
  // directory this attempt created holds nothing of before.
  const inPlace = async (job: Job): Promise<boolean> => {
    const dir = path.dirname(job.relativePath);
    await tree.ensureDir(dir);
    if (!job.known || tree.isNew(dir)) return false;
    const local = await lstat(path.join(tree.root, job.relativePath)).catch(() => undefined);
    const localEntry = local?.isFile() ? { size: local.size, mtimeMs: local.mtimeMs, mode: local.mode & 0o7777 } : undefined;
    if (!localEntry || !sameFile(job.known, localEntry)) return false;
    // The object's age comes from the manifest: sync refreshes it before the bucket's
    // lifecycle rule would expire it.
    restoredFiles.set(job.key, { ...localEntry, uploadedAt: job.known.uploadedAt, sha256: job.known.sha256 });
    kept.add(job.relativePath);
    summary.unchanged += 1;
    return true;
  };

  const fromObject = async (job: Job): Promise<void> => {
    if (firstError !== undefined) return;
    try {
      if (await inPlace(job)) return;
      const downloaded = await downloadFile(
        { store: target.store, objectKey: target.prefix + job.key, relativePath: job.relativePath, known: job.known, announcedSize: remoteSize(job.key), signal },
        tree,
      );
      const mtime = downloaded.unusableMtime;
      if (mtime !== undefined) {
        const used = mtime.used === 'manifest' ? "the manifest's mtime" : 'the time it was uploaded';
        log.warn(`${logName(job.key)} has an unusable x-amz-meta-mtime ("${logName(mtime.value)}"): restored with ${used}`);
      }
      restoredFiles.set(job.key, { ...downloaded.entry, uploadedAt: job.known?.uploadedAt });
      kept.add(job.relativePath);
      summary.restored += 1;
      summary.bytes += downloaded.entry.size;
    } catch (error) {
      if (signal.aborted) {
        firstError ??= error;
      } else if (isStoreError(error, 'not-found')) {
        // Deleted since it was listed: there is nothing left to restore or to keep.
        log.warn(`cannot restore ${logName(job.key)}: missing in S3 (deleted since it was listed)`);
      } else {
        const problem = objectProblem(error);
        // Workers see firstError and stop taking jobs.
        if (problem === undefined) firstError ??= error;
        else skip(job.key, problem);
        if (isStoreError(error, 'access-denied')) denied ??= error;
      }
    } finally {
      done += 1;
    }
  };

  // Small files are taken from the restore bundle where it holds exactly the object;
  // the rest (and whatever the bundle did not cover) are fetched per object, large files
  // first, while the bundle streams.
  const fromBundle = new Map<string, Job>();
  const direct: Job[] = [];
  for (const job of jobs) {
    const size = remoteEntry(job.key)?.size;
    if (size !== undefined && size <= BUNDLE_FILE_LIMIT) fromBundle.set(job.key, job);
    else direct.push(job);
  }
  const bundled = new Set<string>();
  // A listing shows whether there is a bundle; without one, only the GET can tell.
  const noBundle = !current || (listing.kind === 'listed' && !listing.agentObjects.has(BUNDLE_KEY));
  const bundleRead =
    fromBundle.size === 0 || noBundle
      ? Promise.resolve()
      : restoreFromBundle(
          { target, listing, manifest, signal, log },
          fromBundle,
          async (job, file) => {
            try {
              if (!(await inPlace(job))) {
                const mode = file.mode === undefined ? undefined : file.mode & 0o777;
                await writeWholeFile(tree, job.relativePath, file.bytes, { mtimeMs: file.mtimeMs, mode });
                restoredFiles.set(job.key, { size: file.bytes.length, mtimeMs: file.mtimeMs, mode, uploadedAt: job.known?.uploadedAt, sha256: file.sha256 });
                kept.add(job.relativePath);
                summary.restored += 1;
                summary.bytes += file.bytes.length;
              }
              bundled.add(job.key);
              done += 1;
            } catch {
              // Left to the per-object restore, which names the problem.
            }
          },
        );
  try {
    await forEachBounded([...direct, ...fromBundle.values()], context.workers, async (job) => {
      if (fromBundle.has(job.key)) {
        await bundleRead;
        if (bundled.has(job.key)) return;
      }
      await fromObject(job);
    });
  } finally {
    clearInterval(progress);
  }
  if (firstError !== undefined) throw firstError;
  // Every object refused and no metadata.json to show the policy lets these credentials
  // read here: not one bad object but no read access at all.
  if (denied !== undefined && summary.restored + summary.unchanged === 0 && metadata.kind === 'missing') throw denied;

  await createdDirs.settle(tree.root, kept);
  await record(restoredFiles);
  return summary;
}

// In a re-run, a key stays as the runner left it: its file is there (whatever it holds
// now, sync uploads it), or it was restored or uploaded in this pod and is gone (the
// runner deleted it, and sync deletes the object). Only keys this pod never had locally
// are restored.
async function keptByRunner(rerun: LocalRecord, key: string, localPath: string): Promise<'present' | 'deleted' | undefined> {
  const present = await lstat(localPath).then(
    () => true,
    () => false,
  );
  if (present) return 'present';
  const known = rerun.files.get(key);
  return known !== undefined && !isRemoteOnly(known) && !rerun.unrestored?.has(key) ? 'deleted' : undefined;
}

// After a failed attempt: up to 1 s, doubling up to 15 s, jittered (see backoff.ts).
export const HYDRATE_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 15_000 };
// The last retry is worth making only with this much of the budget left.
const MIN_LAST_ATTEMPT_MS = 250;
// A policy or a missing bucket does not change between attempts a second apart; a few
// tries cover a credential or bucket being created at the same moment.
export const PERMANENT_ATTEMPTS = 3;

// Retries with backoff until HYDRATE_TIMEOUT_SECONDS is spent (PERMANENT_ATTEMPTS for a
// permanent failure). Any failure leaves no record behind, so state-sync (which only starts
// after a successful hydrate anyway) can never delete on the strength of a partial restore.
export async function hydrate(context: HydrateContext): Promise<boolean> {
  const { settings, target, log } = context;
  const started = Date.now();
  await mkdir(settings.stateDir, { recursive: true });
  const identity = await podIdentity(settings);
  const earlier = await readRecord(settings.stateDir, target.store.bucket, target.prefix);
  const rerun = earlier?.hydrated === true && earlier.owner === identity.uid ? earlier : undefined;
  if (!rerun) await clearRecord(settings.stateDir);
  log.info(`Hydrating ${settings.workspaceDir} from s3://${target.store.bucket}/${sessionPrefix(settings)}`);
  if (rerun) log.info('init-hydrate already completed in this pod: restoring only what the workspace lacks and the runner did not delete');
  // Waiting for a previous owner's final sync is not restore time: the restore's deadline
  // moves by the time waited, and its signal starts once the session is this pod's.
  const neverAborts = new AbortController().signal;
  let hold: SessionHold | undefined;
  let deadline = started + settings.hydrateTimeoutSeconds * 1000;
  let signal = neverAborts;
  const createdDirs = await CreatedDirs.open(settings.stateDir);

  try {
    for (let attempt = 1; ; attempt += 1) {
      try {
        if (!hold) {
          const owned = await takeOwnership({ target, settings, identity, log, pollMs: context.leasePollMs }, neverAborts);
          hold = { identity, owned, rerun };
          deadline += owned.waitedMs;
          signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
          // Every in-flight request listens on the one signal.
          setMaxListeners(0, signal);
        }
        const summary = await hydrateAttempt(context, hold, createdDirs, signal);
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        log.info(
          `Hydrate complete (${summary.restored} files restored, ${formatBytes(summary.bytes)}, ${summary.unchanged} already in place, ${summary.refused} refused, ${summary.unrestored} not restorable, ${seconds}s)`,
        );
        return true;
      } catch (error) {
        const classified = failureOf(error);
        const failure =
          signal.aborted && classified.kind === 'error'
            ? { kind: 'timed out', detail: 'HYDRATE_TIMEOUT_SECONDS reached' }
            : classified;
        const remaining = deadline - Date.now();
        if (remaining < MIN_LAST_ATTEMPT_MS || (PERMANENT_KINDS.has(failure.kind) && attempt >= PERMANENT_ATTEMPTS)) {
          const seconds = Math.round((Date.now() - started) / 1000);
          log.error(`hydrate failed: ${failure.kind}: ${failure.detail} (gave up after ${attempt} attempts, ${seconds}s)`);
          return false;
        }
        const delay = Math.min(backoffDelayMs(attempt, HYDRATE_BACKOFF), remaining - MIN_LAST_ATTEMPT_MS);
        log.warn(`hydrate attempt ${attempt} failed: ${failure.kind}: ${failure.detail}; retrying in ${(delay / 1000).toFixed(1)}s`);
        await sleep(delay, signal);
      }
    }
  } finally {
    createdDirs.close();
  }
}
