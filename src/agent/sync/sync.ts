import { stat } from 'node:fs/promises';
import type { AgentSettings } from '../settings.js';
import { logName, type AgentLog } from '../log.js';
import { remoteOnly, type FileEntry, type FileMap, type SkippedFile } from '../state/metadata.js';
import { compileExcludes, type ExcludeMatcher } from '../files/patterns.js';
import { planAdoption, planDeletions, planRefreshes, planUploads, type DeletionPlan } from './plan.js';
import { forEachBounded } from '../../shared/pool.js';
import { refreshObject, type RefreshOutcome } from './refresh.js';
import { lockRecord, readRecord, recordVersion, writeRecord, type LocalRecord } from '../state/record.js';
import { deleteKeys, listRemote, readMetadata, writeMetadataOf, type RemoteTarget } from '../state/remote.js';
import { describeFailure, failureOf, isStoreError } from '../store/store.js';
import { formatBytes } from '../../shared/size.js';
import { uploadFile } from '../files/transfer.js';
import { bundleTimeLimitMs, writeBundle } from '../bundle/bundle-writer.js';
import { FileTable } from '../state/file-table.js';
import { walkSyncPaths, type LocalFileMap } from '../files/walk.js';
import { VERSION } from '../../shared/version.js';
import { podIdentity } from '../state/lease.js';
import { SessionOwner } from './session-owner.js';
import { uploadAsSuperseded } from './superseded-upload.js';

export interface SyncContext {
  settings: AgentSettings;
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
  // How long a cycle waits for the record lock another sync process holds; the sidecar
  // waits as long as it takes (its signal still ends the wait).
  lockWaitMs?: number;
  // Objects refreshed per cycle at most (tests lower it to see the spreading).
  refreshPerCycle?: number;
}

export interface CycleResult {
  ok: boolean;
  uploaded: number;
  uploadedBytes: number;
  deleted: number;
  unchanged: number;
  skipped: number;
  failed: number;
}

// Failures that say the whole endpoint is unusable: once one is seen, the rest of the
// cycle's transfers are dropped instead of each failing on its own.
// A policy denying one key is not among them: the other files must still go up.
const FATAL_KINDS = new Set(['connection refused', 'bucket not found', 'endpoint not found', 'timed out', 'wrong region']);

// Each refresh costs two requests (HEAD, then CopyObject when the object is really old).
// At the default interval, 100 per cycle covers a million objects a week: a session's
// steady state needs a few per cycle, and a backlog (objects restored from the platform's
// state, whose ages are unknown) is worked off in bounded steps.
const REFRESH_PER_CYCLE = 100;
// Where s3:ListBucket is granted, every this many cycles (and in the final sync) one
// listing adopts objects others wrote under the prefix (the platform's file-uploads).
const ADOPT_EVERY_CYCLES = 10;
const DAY_MS = 86_400_000;

export class Syncer {
  private record: LocalRecord | undefined;
  private recordVersion: string | undefined;
  private lastSkipped = '[]';
  private metadataDue = false;
  private readonly excludes: ExcludeMatcher;
  // Warnings about files that stay unsynced, given once per process, not every cycle.
  private readonly reported = new Set<string>();
  private cyclesSinceListing = 0;
  private listingDenied = false;
  private owner: SessionOwner | undefined;
  private podUid = '';

  constructor(private readonly context: SyncContext) {
    this.excludes = compileExcludes(context.settings.exclude);
  }

  // Without a record from hydrate (sync started alone, or restarted after the state
  // EmptyDir was lost) the remote state is learned once, from metadata.json and, where
  // permitted, one listing. Such a record never allows deletions.
  // The record is cached between cycles and read again only when another process (a
  // `sync --once` beside the sidecar) wrote it since.
  private async loadRecord(signal: AbortSignal): Promise<LocalRecord> {
    const { settings, target, log } = this.context;
    const version = await recordVersion(settings.stateDir);
    if (this.record && version === this.recordVersion) return this.record;
    const existing = await readRecord(settings.stateDir, target.store.bucket, target.prefix);
    if (existing) {
      this.record = existing;
      this.recordVersion = version;
      return existing;
    }
    if (this.record) return this.record;
    log.info('No hydrate record in this pod: reading the remote state once (deletions stay disabled)');
    const files = new FileTable();
    const metadata = await readMetadata(target, signal);
    if (metadata.kind === 'found') {
      for (const [key, entry] of Object.entries(metadata.metadata.manifest ?? {})) files.set(key, entry);
    }
    const listing = await listRemote(target, signal);
    if (listing.kind === 'listed') {
      // Objects without a manifest entry have an unknown mtime: they are uploaded again
      // from the local copy if there is one.
      for (const [key, size] of listing.sizes) if (!files.has(key)) files.set(key, remoteOnly(size));
    }
    this.record = { bucket: target.store.bucket, prefix: target.prefix, hydrated: false, files };
    return this.record;
  }

  // The session's ownership, learned at the first cycle (hydrate took it for this pod).
  private async sessionOwner(signal: AbortSignal): Promise<SessionOwner> {
    if (!this.owner) {
      const { settings, target, log } = this.context;
      const identity = await podIdentity(settings);
      this.podUid = identity.uid;
      this.owner = new SessionOwner({ target, settings, identity, log });
    }
    await this.owner.start(signal);
    return this.owner;
  }

  /** After the final sync: the session's next pod need not wait for this one. */
  async release(signal: AbortSignal): Promise<void> {
    await this.owner?.release(signal);
  }

  async cycle(signal: AbortSignal, options: { final?: boolean } = {}): Promise<CycleResult> {
    const { settings, log } = this.context;
    const result: CycleResult = { ok: false, uploaded: 0, uploadedBytes: 0, deleted: 0, unchanged: 0, skipped: 0, failed: 0 };
    log.info('Starting sync to S3...');
    let lock;
    try {
      lock = await lockRecord(settings.stateDir, { waitMs: this.context.lockWaitMs ?? Infinity, signal });
    } catch (error) {
      if (signal.aborted) log.info('Sync interrupted while waiting for the record lock');
      else log.error(`Sync failed: ${error instanceof Error ? error.message : String(error)}`);
      return result;
    }
    const started = performance.now();
    let owner: SessionOwner;
    try {
      owner = await this.sessionOwner(signal);
      await owner.renewIfDue(signal);
    } catch (error) {
      await lock.release();
      log.error(`Sync failed: cannot read the session's ownership: ${describeFailure(error)}`);
      return result;
    }
    // A cycle longer than the lease's renewal period (a large backlog) renews on the way,
    // or a new pod would take it for a crashed owner.
    const heartbeat = setInterval(
      () => void owner.renewIfDue(signal).catch((error: unknown) => log.warn(`renewing the session's ownership failed: ${describeFailure(error)}`)),
      (settings.leaseTtlSeconds * 1000) / 3,
    );
    try {
      const outcome = await this.lockedCycle(signal, options.final === true, result, owner);
      // Last, once the data and metadata.json are up: only a saving for the next pod.
      if (options.final && outcome.ok && this.record && !owner.superseded) {
        const elapsedMs = performance.now() - started;
        await writeBundle(this.context, this.record.files, signal, bundleTimeLimitMs(settings.finalSyncTimeoutSeconds * 1000, elapsedMs));
      }
      return outcome;
    } finally {
      clearInterval(heartbeat);
      await lock.release();
    }
  }

  private async lockedCycle(signal: AbortSignal, final: boolean, result: CycleResult, owner: SessionOwner): Promise<CycleResult> {
    const { settings, target, log } = this.context;
    let record: LocalRecord;
    try {
      record = await this.loadRecord(signal);
    } catch (error) {
      log.error(`Sync failed: cannot read the remote state: ${describeFailure(error)}`);
      return result;
    }
    const known = record.files;
    const adoptions = this.takeAdoptions(record, owner);

    let walk;
    try {
      walk = await walkSyncPaths(
        settings.workspaceDir,
        settings.syncPaths,
        this.excludes,
        (syncPath) => log.detail(`Syncing ${logName(syncPath.name)}/...`),
        known instanceof FileTable ? (key) => known.keyOf(key) : undefined,
      );
    } catch (error) {
      log.error(`Sync failed: ${error instanceof Error ? error.message : String(error)}`);
      return result;
    }
    const warnOnce = (message: string) => {
      if (this.reported.has(message)) return;
      this.reported.add(message);
      log.warn(message);
    };
    for (const key of walk.symlinksSkipped) warnOnce(`${logName(key)} is a symlink pointing outside the workspace: not synced`);
    for (const file of walk.unsyncable) warnOnce(`${logName(file.path)}: ${file.reason}: not synced`);
    for (const error of walk.errors) log.warn(`cannot read ${logName(error.path)}: ${error.reason}`);

    const plan = planUploads(walk.files, known, settings.maxSyncSize);
    result.skipped = plan.skipped.length;
    const skippedSignature = JSON.stringify(plan.skipped);
    if (plan.skipped.length > 0) {
      const bytes = plan.skipped.reduce((sum, file) => sum + file.size, 0);
      log.warn(
        `MAX_SYNC_SIZE (${formatBytes(settings.maxSyncSize)}) exceeded: ${plan.skipped.length} largest files (${formatBytes(bytes)}) not synced`,
      );
      if (skippedSignature !== this.lastSkipped) {
        for (const file of plan.skipped) log.detail(`skipped ${logName(file.path)} (${formatBytes(file.size)})`);
      }
    }
    const skippedChanged = skippedSignature !== this.lastSkipped;

    const changed = plan.uploads;
    result.unchanged = plan.unchanged;
    let failures: Array<{ key: string; reason: string }>;
    try {
      failures = await this.uploadAsOwnerOrNot(owner, changed, walk.files, known, result, signal);
    } catch (error) {
      log.error(`Sync failed: cannot renew the session's ownership before uploading: ${describeFailure(error)}`);
      return result;
    }
    // Shutdown ended this cycle (the final one takes over) or the final sync's budget ran
    // out (the loop reports that): what did not go up is not an S3 failure to report.
    if (signal.aborted) {
      log.info(`Sync interrupted (${result.uploaded} uploaded)`);
      return result;
    }

    let deletesFailed = false;
    let attempted = changed.length;
    const deletion = planDeletions({
      record,
      local: walk.files,
      counts: walk.counts,
      walkHadErrors: walk.errors.length > 0,
      uploadsFailed: failures.length > 0,
      syncPaths: settings.syncPaths,
      excludes: this.excludes,
    });
    // Deletions and metadata.json are the owner's alone; ownership is confirmed (a new
    // generation) right before them, after the uploads that may have taken long.
    let confirmed = false;
    if (!owner.superseded) {
      try {
        this.reportGuarded(deletion);
        if (deletion.deletions.length > 0) confirmed = await owner.beginChanges(signal);
        if (confirmed) result.deleted = await this.propagateDeletions(record, deletion, signal);
      } catch (error) {
        deletesFailed = true;
        log.warn(`deleting removed files failed: ${describeFailure(error)}`);
      }
    }
    if (failures.length === 0 && !owner.superseded) {
      const vanished = await this.adoptRemote(record, final, signal);
      // The final sync's budget is for what the runner wrote; ages are worked off while
      // the pod lives. Objects its listing found gone are uploaded again from the local
      // copy now: there is no next cycle to refresh them.
      const missing = final ? this.reuploads(vanished, plan.admitted) : await this.refresh(record, plan.admitted, signal);
      attempted += missing.length;
      failures.push(...(await this.upload(missing, plan.admitted, known, result, signal)));
      if (signal.aborted) {
        log.info(`Sync interrupted (${result.uploaded} uploaded)`);
        return result;
      }
    }
    result.failed = failures.length;
    for (const failure of failures.slice(0, 5)) log.warn(`upload of ${logName(failure.key)} failed: ${failure.reason}`);

    // metadata.json stays due until a write succeeds, so a manifest that failed to go up
    // after successful uploads is written by the next cycle even if nothing else changed.
    if (result.uploaded > 0 || result.deleted > 0 || skippedChanged) this.metadataDue = true;
    this.lastSkipped = skippedSignature;
    let recordFailed = false;
    if (this.metadataDue || final) {
      try {
        await writeRecord(settings.stateDir, record);
        this.recordVersion = await recordVersion(settings.stateDir);
      } catch (error) {
        // A full state dir (ENOSPC) must not hold back the manifest: the record in memory
        // is right, and without metadata.json the uploads just made are orphaned for the
        // next pod. The cycle still fails, and metadata stays due.
        log.error(`Sync failed: cannot write the local record in ${settings.stateDir}: ${String(error)}`);
        recordFailed = true;
      }
      try {
        if (!confirmed && !owner.superseded) confirmed = await owner.beginChanges(signal);
        if (confirmed) {
          await writeMetadataOf(target, { ...this.metadata(known, plan.skipped), generation: owner.generation }, known, signal);
          owner.adopted(adoptions);
        }
      } catch (error) {
        log.error(`Sync failed: writing metadata.json: ${describeFailure(error)}`);
        return result;
      }
      if (recordFailed) return result;
      this.metadataDue = false;
    }

    log.detail(
      `${result.uploaded} uploaded, ${result.deleted} deleted, ${result.unchanged} unchanged, ${result.skipped} skipped, ${result.failed} failed`,
    );
    if (failures.length > 0 || deletesFailed) {
      log.error(`Sync failed (${failures.length} of ${attempted} uploads failed); will retry`);
      return result;
    }
    result.ok = true;
    log.info(`Sync complete (${settings.syncPaths.length} paths synced)`);
    return result;
  }

  // Files a superseded pod left in the lease for this owner: into the record as objects
  // known only remotely (never deleted for being absent here), and so into metadata.json.
  private takeAdoptions(record: LocalRecord, owner: SessionOwner): string[] {
    if (owner.superseded) return [];
    const taken: string[] = [];
    for (const [key, entry] of owner.pendingAdoptions()) {
      if (!record.files.has(key)) record.files.set(key, remoteOnly(entry.size));
      taken.push(key);
    }
    if (taken.length > 0) {
      this.metadataDue = true;
      this.context.log.info(`${taken.length} files a superseded pod of this session uploaded are added to metadata.json (restored by the session's next pod)`);
    }
    return taken;
  }

  // The owner starts a new generation before its uploads (a manifest written before them
  // is then known not to be the whole truth); a superseded pod uploads only what the
  // owner cannot lose by it.
  private async uploadAsOwnerOrNot(
    owner: SessionOwner,
    keys: readonly string[],
    local: LocalFileMap,
    known: FileMap,
    result: CycleResult,
    signal: AbortSignal,
  ): Promise<Array<{ key: string; reason: string }>> {
    if (keys.length > 0 && !owner.superseded) await owner.beginChanges(signal);
    if (!owner.superseded) return this.upload(keys, local, known, result, signal);
    const { target, log, workers } = this.context;
    const done = await uploadAsSuperseded({ target, log, workers, podUid: this.podUid }, keys, local, known, signal);
    result.uploaded += done.uploaded;
    result.uploadedBytes += done.bytes;
    return done.failures;
  }

  // Uploads the files of `keys`, a file object made for each only as it goes up.
  private async upload(
    keys: readonly string[],
    local: LocalFileMap,
    known: FileMap,
    result: CycleResult,
    signal: AbortSignal,
  ): Promise<Array<{ key: string; reason: string }>> {
    const { target, log } = this.context;
    const failures: Array<{ key: string; reason: string }> = [];
    // Keys are taken in order and none is attempted once the cycle stops: the attempted
    // ones are the first `attempted`.
    let attempted = 0;
    let endpointDown = false;
    await forEachBounded(keys, this.context.workers, async (key) => {
      if (signal.aborted || endpointDown) return;
      attempted += 1;
      const file = local.get(key);
      if (!file) return;
      // Taken before the request: the object is at least this new.
      const entry: FileEntry = { size: file.size, mtimeMs: file.mtimeMs, mode: file.mode, uploadedAt: Date.now() };
      try {
        // The hash of exactly what the store confirmed (rule 9).
        entry.sha256 = await uploadFile(target.store, target.prefix + file.key, file.absolutePath, entry, signal);
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
        failures.push({ key: file.key, reason: `${failure.kind}: ${failure.detail}` });
        if (FATAL_KINDS.has(failure.kind) || isStoreError(error, 'credentials')) endpointDown = true;
        return;
      }
      // The entry holds the stat taken before the upload: a file written to meanwhile
      // no longer matches it and is uploaded again next cycle.
      known.set(file.key, entry);
      result.uploaded += 1;
      result.uploadedBytes += entry.size;
      const after = await stat(file.absolutePath).catch(() => undefined);
      if (!after || after.size !== entry.size || Math.abs(after.mtimeMs - entry.mtimeMs) >= 1) {
        log.detail(`${logName(file.key)} changed during upload: retried next cycle`);
      }
    });
    // Files dropped from the queue (fatal failure, abort) count as failed too.
    for (const key of keys.slice(attempted)) failures.push({ key, reason: 'not attempted' });
    return failures;
  }

  // Runs the deletions planDeletions allowed (data-safety invariant 1).
  private reportGuarded(plan: DeletionPlan): void {
    for (const [name, count] of plan.guarded) {
      this.context.log.warn(`${logName(name)}/ is empty locally but ${count} files are in S3: not deleting them`);
    }
  }

  private async propagateDeletions(record: LocalRecord, plan: DeletionPlan, signal: AbortSignal): Promise<number> {
    const { target } = this.context;
    if (plan.deletions.length === 0) return 0;
    const { deleted, failed } = await deleteKeys(target, plan.deletions, signal);
    for (const key of deleted) record.files.delete(key);
    if (failed.length > 0) throw new Error(`${failed.length} objects could not be deleted`);
    return deleted.length;
  }

  // Objects others put under the prefix (the platform's backend pre-uploads to
  // file-uploads/ before and while the pod runs) enter the manifest with their remote
  // size and an unknown mtime, so a later pod without s3:ListBucket restores them too. An
  // object the record knows but the listing lacks expired or was deleted behind the
  // agent's back: it is made due for a refresh, which uploads it again from the local copy.
  // Returns the vanished keys.
  private async adoptRemote(record: LocalRecord, final: boolean, signal: AbortSignal): Promise<string[]> {
    if (this.listingDenied) return [];
    this.cyclesSinceListing += 1;
    if (!final && this.cyclesSinceListing < ADOPT_EVERY_CYCLES) return [];
    this.cyclesSinceListing = 0;
    let listing;
    try {
      listing = await listRemote(this.context.target, signal);
    } catch (error) {
      this.context.log.warn(`listing s3://${this.context.target.store.bucket}/${this.context.target.prefix} failed: ${describeFailure(error)}`);
      return [];
    }
    if (listing.kind === 'denied') {
      this.listingDenied = true;
      return [];
    }
    const { adopted, vanished } = planAdoption(record.files, listing.sizes);
    for (const [key, entry] of adopted) record.files.set(key, entry);
    for (const key of vanished) record.files.set(key, { ...record.files.get(key)!, uploadedAt: undefined });
    if (adopted.size > 0) {
      this.metadataDue = true;
      this.context.log.detail(`${adopted.size} objects written by others adopted into metadata.json`);
    }
    return vanished;
  }

  // The vanished objects this pod has a local copy of, named, to be uploaded again.
  private reuploads(vanished: readonly string[], admitted: LocalFileMap): string[] {
    const again = vanished.filter((key) => admitted.has(key));
    for (const key of again) this.context.log.warn(`${logName(key)} was missing in S3 (expired or deleted): uploading the local copy again`);
    return again;
  }

  // Invariant 7: the bucket's lifecycle rule expires an object by the age of its last
  // write, and sync never rewrites an unchanged file. The oldest objects past
  // REFRESH_AFTER_DAYS are rewritten in place, a bounded number per cycle; one found
  // missing leaves the manifest if the pod has no copy; the local copies of missing ones
  // are returned, to be uploaded again.
  private async refresh(record: LocalRecord, admitted: LocalFileMap, signal: AbortSignal): Promise<string[]> {
    const { settings, target, log } = this.context;
    const maxAgeMs = settings.refreshAfterDays * DAY_MS;
    const due = planRefreshes(record.files, Date.now(), maxAgeMs, this.context.refreshPerCycle ?? REFRESH_PER_CYCLE);
    if (due.length === 0) return [];
    const reupload: string[] = [];
    const errors: string[] = [];
    await forEachBounded(due, this.context.workers, async ([key, entry]) => {
      if (signal.aborted) return;
      let outcome: RefreshOutcome;
      try {
        outcome = await refreshObject(target.store, target.prefix + key, maxAgeMs, signal);
      } catch (error) {
        // Without s3:ListBucket, AWS answers a missing key with 403, not 404: a local
        // copy goes up again whatever the reason (a PutObject the policy allows).
        if (!(failureOf(error).kind === 'access denied' && admitted.has(key))) {
          errors.push(`${logName(key)}: ${describeFailure(error)}`);
          return;
        }
        outcome = { kind: 'missing' };
      }
      if (outcome.kind === 'refreshed' || outcome.kind === 'recent') {
        record.files.set(key, { ...entry, uploadedAt: outcome.at });
        this.metadataDue = true;
        return;
      }
      if (admitted.has(key)) {
        reupload.push(key);
        log.warn(
          outcome.kind === 'missing'
            ? `${logName(key)} was missing in S3 (expired or deleted): uploading the local copy again`
            : `${logName(key)} is too large to refresh by copy: uploading the local copy again`,
        );
      } else if (outcome.kind === 'missing') {
        record.files.delete(key);
        this.metadataDue = true;
        log.warn(`${logName(key)} is missing in S3 (expired or deleted) and this pod has no copy: dropped from the manifest`);
      } else {
        errors.push(`${logName(key)}: over 5 GiB, cannot be refreshed by copy, and this pod has no copy to upload`);
      }
    });
    for (const error of errors.slice(0, 5)) log.warn(`refreshing ${error}`);
    if (errors.length > 5) log.warn(`refreshing failed for ${errors.length - 5} more objects`);
    return reupload;
  }

  private metadata(known: FileMap, skipped: SkippedFile[]) {
    const { settings } = this.context;
    let bytes = 0;
    for (const entry of known.values()) bytes += entry.size;
    return {
      lastSync: new Date().toISOString(),
      session: settings.session,
      namespace: settings.namespace,
      pathsSynced: settings.syncPaths.length,
      syncPaths: settings.syncPaths.map((syncPath) => syncPath.name),
      files: known.size,
      bytes,
      skipped,
      maxSyncSize: settings.maxSyncSize,
      agentVersion: VERSION,
    };
  }
}
