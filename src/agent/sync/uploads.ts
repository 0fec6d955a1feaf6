import { stat } from 'node:fs/promises';
import { logName, type AgentLog } from '../log.js';
import { sameFile, type FileEntry, type FileMap } from '../state/metadata.js';
import type { RemoteTarget } from '../state/remote.js';
import { failureOf, isStoreError } from '../store/store.js';
import { uploadFile } from '../files/transfer.js';
import type { LocalFile, LocalFileMap } from '../files/walk.js';
import { forEachBounded } from '../../shared/pool.js';
import type { LeaseSteps } from './lease-steps.js';
import { uploadAsSuperseded } from './superseded-upload.js';

export interface UploadFailure {
  key: string;
  reason: string;
}

export interface UploadContext {
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
}

// Failures that say the whole endpoint is unusable: once one is seen, the rest of the
// cycle's transfers are dropped instead of each failing on its own.
// A policy denying one key is not among them: the other files must still go up.
const FATAL_KINDS = new Set(['connection refused', 'bucket not found', 'endpoint not found', 'timed out', 'wrong region']);

/**
 * One cycle's uploads and their counts: the changed files, and the local copies of
 * objects the upkeep found missing in S3. Each file object is made only as it goes up.
 */
export class Uploads {
  uploaded = 0;
  bytes = 0;
  // Keys handed to this cycle's uploads, for the line that reports failures.
  attempted = 0;
  readonly failures: UploadFailure[] = [];
  // Set by a failure that makes the endpoint unusable: the rest of the pass is dropped.
  private endpointDown = false;

  constructor(
    private readonly context: UploadContext,
    private readonly known: FileMap,
    private readonly signal: AbortSignal,
  ) {}

  // The owner starts a new generation before its uploads (a manifest written before them
  // is then known not to be the whole truth); a superseded pod uploads only what the
  // owner cannot lose by it.
  async changed(lease: LeaseSteps, keys: readonly string[], local: LocalFileMap): Promise<void> {
    this.attempted += keys.length;
    if (keys.length > 0) await lease.beforeUploads(this.signal);
    if (!lease.superseded) return this.upload(keys, local);
    const { target, log, workers } = this.context;
    const done = await uploadAsSuperseded({ target, log, workers, podUid: lease.podUid }, keys, local, this.known, this.signal);
    this.uploaded += done.uploaded;
    this.bytes += done.bytes;
    this.failures.push(...done.failures);
  }

  /** Local copies of objects found missing in S3 (expired or deleted), uploaded again. */
  again(keys: readonly string[], admitted: LocalFileMap): Promise<void> {
    this.attempted += keys.length;
    return this.upload(keys, admitted);
  }

  reportFailures(): void {
    for (const failure of this.failures.slice(0, 5)) this.context.log.warn(`upload of ${logName(failure.key)} failed: ${failure.reason}`);
  }

  private async upload(keys: readonly string[], local: LocalFileMap): Promise<void> {
    // Keys are taken in order and none is attempted once the cycle stops: the attempted
    // ones are the first `started`.
    let started = 0;
    this.endpointDown = false;
    await forEachBounded(keys, this.context.workers, async (key) => {
      if (this.signal.aborted || this.endpointDown) return;
      started += 1;
      const file = local.get(key);
      if (file) await this.uploadOne(file);
    });
    // Files dropped from the queue (fatal failure, abort) count as failed too.
    for (const key of keys.slice(started)) this.failures.push({ key, reason: 'not attempted' });
  }

  private async uploadOne(file: LocalFile): Promise<void> {
    const { target, log } = this.context;
    // Taken before the request: the object is at least this new.
    const entry: FileEntry = { size: file.size, mtimeMs: file.mtimeMs, mode: file.mode, uploadedAt: Date.now() };
    try {
      // The hash of exactly what the store confirmed (rule 9).
      entry.sha256 = await uploadFile(target.store, target.prefix + file.key, file.absolutePath, entry, this.signal);
    } catch (error) {
      const local = error as NodeJS.ErrnoException;
      // Gone since the walk: next cycle sees it as deleted.
      if (local.code === 'ENOENT') return;
      // A file the agent cannot read is that file's problem: it must not stall
      // the other uploads or keep the whole loop in backoff.
      if (local.path !== undefined) {
        log.warn(`cannot read ${logName(file.key)} (${local.code ?? local.message}): not synced`);
        return;
      }
      const failure = failureOf(error);
      this.failures.push({ key: file.key, reason: `${failure.kind}: ${failure.detail}` });
      if (FATAL_KINDS.has(failure.kind) || isStoreError(error, 'credentials')) this.endpointDown = true;
      return;
    }
    // The entry holds the stat taken before the upload: a file written to meanwhile
    // no longer matches it and is uploaded again next cycle.
    this.known.set(file.key, entry);
    this.uploaded += 1;
    this.bytes += entry.size;
    const after = await stat(file.absolutePath).catch(() => undefined);
    if (!after || !sameFile(entry, after)) log.detail(`${logName(file.key)} changed during upload: retried next cycle`);
  }
}
