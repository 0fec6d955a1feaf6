import type { AgentSettings } from '../settings.js';
import { logName, type AgentLog } from '../log.js';
import type { LocalRecord } from '../state/record.js';
import type { RemoteTarget } from '../state/remote.js';
import { describeFailure } from '../store/store.js';
import type { LocalFileMap } from '../files/walk.js';
import { Adoption } from './adoption.js';
import { deleteRemoved, type DeletionOutcome } from './deletions.js';
import { LeaseSteps } from './lease-steps.js';
import { LocalWalk } from './local-walk.js';
import { ManifestWriter } from './manifest.js';
import { planUploads, type UploadPlan } from './plan.js';
import { RecordCache } from './record-cache.js';
import { refreshOldest } from './refresh.js';
import { SkippedReport } from './skipped-report.js';
import { Uploads } from './uploads.js';

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

const NOTHING_DONE: CycleResult = { ok: false, uploaded: 0, uploadedBytes: 0, deleted: 0, unchanged: 0, skipped: 0, failed: 0 };

/**
 * Sync cycles, each phase once: under the record's lock and the session's lease, the walk
 * and its plan, the uploads, the deletions, the upkeep of what is in S3 (adoption,
 * refreshes), then the record and metadata.json, and at the final sync the bundle.
 */
export class Syncer {
  private readonly records: RecordCache;
  private readonly lease: LeaseSteps;
  private readonly local: LocalWalk;
  private readonly skippedReport: SkippedReport;
  private readonly manifest: ManifestWriter;
  private readonly adoption: Adoption;

  constructor(private readonly context: SyncContext) {
    this.records = new RecordCache(context);
    this.lease = new LeaseSteps(context);
    this.local = new LocalWalk(context);
    this.skippedReport = new SkippedReport(context.log, context.settings.maxSyncSize);
    this.manifest = new ManifestWriter(context, this.records);
    this.adoption = new Adoption(context, this.manifest);
  }

  /** After the final sync: the session's next pod need not wait for this one. */
  async release(signal: AbortSignal): Promise<void> {
    await this.lease.release(signal);
  }

  async cycle(signal: AbortSignal, options: { final?: boolean } = {}): Promise<CycleResult> {
    const { log } = this.context;
    log.info('Starting sync to S3...');
    const lock = await this.records.lock(signal);
    if (!lock) return { ...NOTHING_DONE };
    const started = performance.now();
    try {
      await this.lease.start(signal, options.final === true);
    } catch (error) {
      await lock.release();
      log.error(`Sync failed: cannot read the session's ownership: ${describeFailure(error)}`);
      return { ...NOTHING_DONE };
    }
    const stopHeartbeat = this.lease.heartbeat(signal);
    try {
      const outcome = await this.lockedCycle(signal, options.final === true);
      if (options.final && outcome.ok) await this.manifest.bundle(this.lease, signal, performance.now() - started);
      return outcome;
    } finally {
      stopHeartbeat();
      await lock.release();
    }
  }

  private async lockedCycle(signal: AbortSignal, final: boolean): Promise<CycleResult> {
    const { settings, log } = this.context;
    const record = await this.records.load(signal);
    if (!record) return { ...NOTHING_DONE };
    const fromLease = this.adoption.fromLease(record, this.lease);
    const walk = await this.local.walk(record.files);
    if (!walk) return { ...NOTHING_DONE };
    const plan = planUploads(walk.files, record.files, settings.maxSyncSize);
    const skippedChanged = this.skippedReport.report(plan.skipped);
    const uploads = new Uploads(this.context, record.files, signal);
    const resultSoFar = (deletion?: DeletionOutcome) => tally(plan, uploads, deletion, false);
    try {
      await uploads.changed(this.lease, plan.uploads, walk.files);
    } catch (error) {
      log.error(`Sync failed: cannot renew the session's ownership before uploading: ${describeFailure(error)}`);
      return resultSoFar();
    }
    // Shutdown ended this cycle (the final one takes over) or the final sync's budget ran
    // out (the loop reports that): what did not go up is not an S3 failure to report.
    if (signal.aborted) return this.interrupted(resultSoFar());
    const { excludes } = this.local;
    const { files: local, counts } = walk;
    const walkHadErrors = walk.errors.length > 0;
    const uploadsFailed = uploads.failures.length > 0;
    const deletion = await deleteRemoved(this.context, { record, local, counts, walkHadErrors, uploadsFailed, syncPaths: settings.syncPaths, excludes }, this.lease, signal);
    if (uploads.failures.length === 0 && !this.lease.superseded) {
      await this.upkeep(record, plan.admitted, uploads, final, signal);
      if (signal.aborted) return this.interrupted(resultSoFar(deletion));
    }
    uploads.reportFailures();
    if (uploads.uploaded > 0 || deletion.deleted > 0 || skippedChanged) this.manifest.markDue();
    this.skippedReport.settle();
    const result = tally(plan, uploads, deletion, true);
    if (!(await this.manifest.write({ record, skipped: plan.skipped, fromLease, final }, this.lease, signal))) return result;
    return this.concluded(result, uploads, deletion);
  }

  // Invariant 7, once every upload of the cycle went up: a listing adopts what others
  // wrote, the oldest objects are refreshed, and the local copies of objects found missing
  // go up again in this cycle, after the deletions that needed the uploads to succeed
  // (the final sync has no next cycle; its budget leaves ages to the pod's lifetime).
  private async upkeep(record: LocalRecord, admitted: LocalFileMap, uploads: Uploads, final: boolean, signal: AbortSignal): Promise<void> {
    const { settings, target, log, workers, refreshPerCycle } = this.context;
    const vanished = await this.adoption.fromListing(record, final, signal);
    const missing = final
      ? localCopies(vanished, admitted, log)
      : await refreshOldest({ settings, target, log, workers, perCycle: refreshPerCycle, manifest: this.manifest }, record, admitted, signal);
    await uploads.again(missing, admitted);
  }

  private interrupted(result: CycleResult): CycleResult {
    this.context.log.info(`Sync interrupted (${result.uploaded} uploaded)`);
    return result;
  }

  private concluded(result: CycleResult, uploads: Uploads, deletion: DeletionOutcome): CycleResult {
    const { settings, log } = this.context;
    log.detail(`${result.uploaded} uploaded, ${result.deleted} deleted, ${result.unchanged} unchanged, ${result.skipped} skipped, ${result.failed} failed`);
    if (uploads.failures.length > 0 || deletion.failed) {
      log.error(`Sync failed (${uploads.failures.length} of ${uploads.attempted} uploads failed); will retry`);
      return result;
    }
    log.info(`Sync complete (${settings.syncPaths.length} paths synced)`);
    return { ...result, ok: true };
  }
}

// The vanished objects this pod has a local copy of, named, to be uploaded again.
function localCopies(vanished: readonly string[], admitted: LocalFileMap, log: AgentLog): string[] {
  const again = vanished.filter((key) => admitted.has(key));
  for (const key of again) log.warn(`${logName(key)} was missing in S3 (expired or deleted): uploading the local copy again`);
  return again;
}

// The cycle's counts as far as it got; failures are counted once the transfers are over.
function tally(plan: UploadPlan, uploads: Uploads, deletion: DeletionOutcome | undefined, failuresCounted: boolean): CycleResult {
  return {
    ok: false,
    uploaded: uploads.uploaded,
    uploadedBytes: uploads.bytes,
    deleted: deletion?.deleted ?? 0,
    unchanged: plan.unchanged,
    skipped: plan.skipped.length,
    failed: failuresCounted ? uploads.failures.length : 0,
  };
}
