import { setMaxListeners } from 'node:events';
import { mkdir, realpath, stat } from 'node:fs/promises';
import type { AgentSettings } from './env.js';
import { sessionPrefix } from './env.js';
import { resolveKey } from './keys.js';
import { logName, type AgentLog } from './log.js';
import { sameFile, type FileEntry, type FileMap } from './manifest.js';
import { clearRecord, writeRecord } from './record.js';
import { listRemote, readMetadata, type RemoteTarget } from './remote.js';
import { classifyS3Error, isNotFound } from './s3.js';
import { formatBytes } from './size.js';
import { sleep } from '../shared/sleep.js';
import { forEachBounded } from './pool.js';
import { downloadFile, type CheckedDirs } from './transfer.js';

export const FRESH_SESSION_MESSAGE = 'No existing state found, starting fresh session';
const PROGRESS_INTERVAL_MS = 2_000;

export interface HydrateContext {
  settings: AgentSettings;
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
  // How often a long restore reports its progress.
  progressIntervalMs?: number;
}

interface HydrateSummary {
  restored: number;
  unchanged: number;
  bytes: number;
  refused: number;
}

// One attempt: read the manifest (and the listing where the policy allows it), then
// restore every mapped object that is not already in place. Files restored by an earlier
// attempt match their manifest entry and are skipped, which makes a retry a resume.
async function hydrateAttempt(context: HydrateContext, signal: AbortSignal): Promise<HydrateSummary> {
  const { settings, target, log } = context;
  const metadata = await readMetadata(target, signal);
  if (metadata.kind === 'invalid') log.warn(`metadata.json is unreadable (${metadata.reason}): restoring from the listing`);
  const manifest = new Map(Object.entries(metadata.kind === 'found' ? (metadata.metadata.manifest ?? {}) : {}));
  const listing = await listRemote(target, signal);
  const keys = new Set([...manifest.keys(), ...(listing.kind === 'listed' ? listing.sizes.keys() : [])]);

  const restoredFiles: FileMap = new Map();
  const summary: HydrateSummary = { restored: 0, unchanged: 0, bytes: 0, refused: 0 };
  if (keys.size === 0) {
    log.info(FRESH_SESSION_MESSAGE);
    // A fresh session is a complete hydrate of nothing: the record lets sync propagate
    // deletions of files it uploads itself in this first pod, and knows no remote file
    // it could wrongly delete.
    await writeRecord(settings.stateDir, { bucket: target.bucket, prefix: target.prefix, hydrated: true, files: restoredFiles });
    return summary;
  }

  await mkdir(settings.workspaceDir, { recursive: true });
  const workspaceReal = await realpath(settings.workspaceDir);
  const jobs: Array<{ key: string; localPath: string; known: FileEntry | undefined }> = [];
  for (const key of [...keys].sort()) {
    const resolution = resolveKey(key, settings.syncPaths, settings.workspaceDir);
    if (resolution.kind === 'refused') {
      summary.refused += 1;
      log.warn(`refusing object ${target.prefix}${logName(key)}: ${resolution.reason}`);
    } else if (resolution.kind === 'file') {
      jobs.push({ key, localPath: resolution.localPath, known: manifest.get(key) });
    } else {
      // Objects of sync paths this pod does not sync stay in the manifest sync writes, so
      // a later pod that syncs them still finds them without ListBucket. Sync never
      // deletes them.
      const size = listing.kind === 'listed' ? listing.sizes.get(key) : undefined;
      const entry = manifest.get(key) ?? (size === undefined ? undefined : { size, mtimeMs: -1 });
      if (entry) restoredFiles.set(key, entry);
    }
  }

  log.info(`Restoring ${jobs.length} files from s3://${target.bucket}/${target.prefix}`);
  const checkedDirs: CheckedDirs = new Map();
  let done = 0;
  const progress = setInterval(() => {
    log.detail(`restored ${done}/${jobs.length} files (${formatBytes(summary.bytes)})`);
  }, context.progressIntervalMs ?? PROGRESS_INTERVAL_MS);
  let firstError: unknown;
  try {
    await forEachBounded(jobs, context.workers, async (job) => {
      if (firstError !== undefined) return;
      try {
        const local = await stat(job.localPath).catch(() => undefined);
        const localEntry = local && { size: local.size, mtimeMs: local.mtimeMs, mode: local.mode & 0o7777 };
        // The object's age comes from the manifest: sync refreshes it before the bucket's
        // lifecycle rule would expire it.
        const uploadedAt = job.known?.uploadedAt;
        if (job.known && localEntry && sameFile(job.known, localEntry)) {
          restoredFiles.set(job.key, { ...localEntry, uploadedAt });
          summary.unchanged += 1;
        } else {
          const entry = await downloadFile(
            target.client,
            target.bucket,
            target.prefix + job.key,
            job.localPath,
            workspaceReal,
            job.known,
            checkedDirs,
            signal,
          );
          restoredFiles.set(job.key, { ...entry, uploadedAt });
          summary.restored += 1;
          summary.bytes += entry.size;
        }
      } catch (error) {
        // A manifest entry whose object is gone (deleted after the manifest was
        // written) is not state to restore.
        if (isNotFound(error)) {
          log.warn(`${logName(job.key)} is listed in metadata.json but missing in S3: skipped`);
        } else {
          // Workers see firstError and stop taking jobs.
          firstError ??= error;
        }
      } finally {
        done += 1;
      }
    });
  } finally {
    clearInterval(progress);
  }
  if (firstError !== undefined) throw firstError;

  await writeRecord(settings.stateDir, {
    bucket: target.bucket,
    prefix: target.prefix,
    hydrated: true,
    files: restoredFiles,
  });
  return summary;
}


const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 15_000;
// The last retry is worth making only with this much of the budget left.
const MIN_LAST_ATTEMPT_MS = 250;

// Retries with backoff until HYDRATE_TIMEOUT_SECONDS is spent. Any failure leaves no
// record behind, so state-sync (which only starts after a successful hydrate anyway) can
// never delete on the strength of a partial restore.
export async function hydrate(context: HydrateContext): Promise<boolean> {
  const { settings, target, log } = context;
  const started = Date.now();
  const deadline = started + settings.hydrateTimeoutSeconds * 1000;
  const signal = AbortSignal.timeout(settings.hydrateTimeoutSeconds * 1000);
  // Every in-flight request listens on the one signal.
  setMaxListeners(0, signal);
  await mkdir(settings.stateDir, { recursive: true });
  await clearRecord(settings.stateDir);
  log.info(`Hydrating ${settings.workspaceDir} from s3://${target.bucket}/${sessionPrefix(settings)}`);

  let backoff = FIRST_BACKOFF_MS;
  for (let attempt = 1; ; attempt += 1) {
    try {
      const summary = await hydrateAttempt(context, signal);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      log.info(
        `Hydrate complete (${summary.restored} files restored, ${formatBytes(summary.bytes)}, ${summary.unchanged} already in place, ${summary.refused} refused, ${seconds}s)`,
      );
      return true;
    } catch (error) {
      const classified = classifyS3Error(error);
      const failure =
        signal.aborted && classified.kind === 'error'
          ? { kind: 'timed out', detail: 'HYDRATE_TIMEOUT_SECONDS reached' }
          : classified;
      const remaining = deadline - Date.now();
      if (remaining < MIN_LAST_ATTEMPT_MS) {
        const seconds = Math.round((Date.now() - started) / 1000);
        log.error(`hydrate failed: ${failure.kind}: ${failure.detail} (gave up after ${attempt} attempts, ${seconds}s)`);
        return false;
      }
      const delay = Math.min(backoff, remaining - MIN_LAST_ATTEMPT_MS);
      log.warn(`hydrate attempt ${attempt} failed: ${failure.kind}: ${failure.detail}; retrying in ${(delay / 1000).toFixed(1)}s`);
      await sleep(delay, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}
