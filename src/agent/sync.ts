import { stat } from 'node:fs/promises';
import { applyBudget } from './budget.js';
import type { AgentSettings } from './env.js';
import type { AgentLog } from './log.js';
import { sameFile, toRecord, type FileMap, type SkippedFile } from './manifest.js';
import { compileExcludes, type ExcludeMatcher } from './patterns.js';
import { forEachBounded } from './pool.js';
import { readRecord, writeRecord, type LocalRecord } from './record.js';
import { deleteKeys, listRemote, readMetadata, writeMetadata, type RemoteTarget } from './remote.js';
import { classifyS3Error, describeS3Error, isCredentialError } from './s3.js';
import { formatBytes } from './size.js';
import { uploadFile } from './transfer.js';
import { walkSyncPaths, type LocalFile } from './walk.js';
import { VERSION } from '../shared/version.js';

export interface SyncContext {
  settings: AgentSettings;
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
}

export interface CycleResult {
  ok: boolean;
  uploaded: number;
  deleted: number;
  unchanged: number;
  skipped: number;
  failed: number;
}

// Failures that say the whole endpoint is unusable: once one is seen, the rest of the
// cycle's transfers are dropped instead of each failing on its own.
// A policy denying one key is not among them: the other files must still go up.
const FATAL_KINDS = new Set(['connection refused', 'bucket not found', 'endpoint not found', 'timed out']);

export class Syncer {
  private record: LocalRecord | undefined;
  private lastSkipped = '[]';
  private metadataDue = false;
  private readonly excludes: ExcludeMatcher;
  private readonly reportedSymlinks = new Set<string>();

  constructor(private readonly context: SyncContext) {
    this.excludes = compileExcludes(context.settings.exclude);
  }

  // Without a record from hydrate (sync started alone, or restarted after the state
  // EmptyDir was lost) the remote state is learned once, from metadata.json and, where
  // permitted, one listing. Such a record never allows deletions.
  private async loadRecord(signal: AbortSignal): Promise<LocalRecord> {
    if (this.record) return this.record;
    const { settings, target, log } = this.context;
    const existing = await readRecord(settings.stateDir, target.bucket, target.prefix);
    if (existing) {
      this.record = existing;
      return existing;
    }
    log.info('No hydrate record in this pod: reading the remote state once (deletions stay disabled)');
    const files: FileMap = new Map();
    const metadata = await readMetadata(target, signal);
    if (metadata.kind === 'found') {
      for (const [key, entry] of Object.entries(metadata.metadata.manifest ?? {})) files.set(key, entry);
    }
    const listing = await listRemote(target, signal);
    if (listing.kind === 'listed') {
      // Objects without a manifest entry have an unknown mtime: they are uploaded again
      // from the local copy if there is one.
      for (const [key, size] of listing.sizes) if (!files.has(key)) files.set(key, { size, mtimeMs: -1 });
    }
    this.record = { bucket: target.bucket, prefix: target.prefix, hydrated: false, files };
    return this.record;
  }

  private isExcludedKey(key: string): boolean {
    const slash = key.indexOf('/');
    const relative = key.slice(slash + 1);
    if (this.excludes.excludesFile(relative)) return true;
    const segments = relative.split('/');
    for (let end = 1; end < segments.length; end += 1) {
      if (this.excludes.prunesDir(segments.slice(0, end).join('/'))) return true;
    }
    return false;
  }

  async cycle(signal: AbortSignal, options: { final?: boolean } = {}): Promise<CycleResult> {
    const { settings, target, log } = this.context;
    const result: CycleResult = { ok: false, uploaded: 0, deleted: 0, unchanged: 0, skipped: 0, failed: 0 };
    log.info('Starting sync to S3...');
    let record: LocalRecord;
    try {
      record = await this.loadRecord(signal);
    } catch (error) {
      log.error(`Sync failed: cannot read the remote state: ${describeS3Error(error)}`);
      return result;
    }
    const known = record.files;

    const walk = await walkSyncPaths(settings.workspaceDir, settings.syncPaths, this.excludes, (syncPath) =>
      log.detail(`Syncing ${syncPath.name}/...`),
    );
    for (const key of walk.symlinksSkipped) {
      if (this.reportedSymlinks.has(key)) continue;
      this.reportedSymlinks.add(key);
      log.warn(`${key} is a symlink pointing outside the workspace: not synced`);
    }
    for (const error of walk.errors) log.warn(`cannot read ${error}`);

    const budget = applyBudget([...walk.files.values()], settings.maxSyncSize);
    result.skipped = budget.skipped.length;
    const skippedSignature = JSON.stringify(budget.skipped);
    if (budget.skipped.length > 0) {
      const bytes = budget.skipped.reduce((sum, file) => sum + file.size, 0);
      log.warn(
        `MAX_SYNC_SIZE (${formatBytes(settings.maxSyncSize)}) exceeded: ${budget.skipped.length} largest files (${formatBytes(bytes)}) not synced`,
      );
      if (skippedSignature !== this.lastSkipped) {
        for (const file of budget.skipped) log.detail(`skipped ${file.path} (${formatBytes(file.size)})`);
      }
    }
    const skippedChanged = skippedSignature !== this.lastSkipped;

    const changed = budget.admitted.filter((file) => !sameFile(known.get(file.key), file));
    result.unchanged = budget.admitted.length - changed.length;
    const failures = await this.upload(changed, known, result, signal);
    result.failed = failures.length;
    for (const failure of failures.slice(0, 5)) log.warn(`upload of ${failure.key} failed: ${failure.reason}`);

    let deletesFailed = false;
    if (failures.length === 0 && !signal.aborted) {
      try {
        result.deleted = await this.propagateDeletions(record, walk.files, walk.counts, walk.errors.length > 0, signal);
      } catch (error) {
        deletesFailed = true;
        log.warn(`deleting removed files failed: ${describeS3Error(error)}`);
      }
    }

    // metadata.json stays due until a write succeeds, so a manifest that failed to go up
    // after successful uploads is written by the next cycle even if nothing else changed.
    if (result.uploaded > 0 || result.deleted > 0 || skippedChanged) this.metadataDue = true;
    this.lastSkipped = skippedSignature;
    if (this.metadataDue || options.final === true) {
      try {
        await writeRecord(settings.stateDir, record);
      } catch (error) {
        log.error(`Sync failed: cannot write the local record in ${settings.stateDir}: ${String(error)}`);
        return result;
      }
      try {
        await writeMetadata(target, this.metadata(known, budget.skipped), signal);
      } catch (error) {
        log.error(`Sync failed: writing metadata.json: ${describeS3Error(error)}`);
        return result;
      }
      this.metadataDue = false;
    }

    log.detail(
      `${result.uploaded} uploaded, ${result.deleted} deleted, ${result.unchanged} unchanged, ${result.skipped} skipped, ${result.failed} failed`,
    );
    if (failures.length > 0 || deletesFailed) {
      log.error(`Sync failed (${failures.length} of ${changed.length} uploads failed); will retry`);
      return result;
    }
    result.ok = true;
    log.info(`Sync complete (${settings.syncPaths.length} paths synced)`);
    return result;
  }

  private async upload(
    files: LocalFile[],
    known: FileMap,
    result: CycleResult,
    signal: AbortSignal,
  ): Promise<Array<{ key: string; reason: string }>> {
    const { target, log } = this.context;
    const failures: Array<{ key: string; reason: string }> = [];
    const attempted = new Set<string>();
    let endpointDown = false;
    await forEachBounded(files, this.context.workers, async (file) => {
      if (signal.aborted || endpointDown) return;
      attempted.add(file.key);
      const entry = { size: file.size, mtimeMs: file.mtimeMs, mode: file.mode };
      try {
        await uploadFile(target.client, target.bucket, target.prefix + file.key, file.absolutePath, entry, signal);
      } catch (error) {
        const local = error as NodeJS.ErrnoException;
        // Gone since the walk: next cycle sees it as deleted.
        if (local.code === 'ENOENT') return;
        // A file the agent cannot read is that file's problem: it must not stall
        // the other uploads or keep the whole loop in backoff.
        if (local.path !== undefined) {
          log.warn(`cannot read ${file.key} (${local.code ?? local.message}): not synced`);
          return;
        }
        const failure = classifyS3Error(error);
        failures.push({ key: file.key, reason: `${failure.kind}: ${failure.detail}` });
        if (FATAL_KINDS.has(failure.kind) || isCredentialError(error)) endpointDown = true;
        return;
      }
      // The entry holds the stat taken before the upload: a file written to meanwhile
      // no longer matches it and is uploaded again next cycle.
      known.set(file.key, entry);
      result.uploaded += 1;
      const after = await stat(file.absolutePath).catch(() => undefined);
      if (!after || after.size !== entry.size || Math.abs(after.mtimeMs - entry.mtimeMs) >= 1) {
        log.detail(`${file.key} changed during upload: retried next cycle`);
      }
    });
    // Files dropped from the queue (fatal failure, abort) count as failed too.
    for (const file of files) {
      if (!attempted.has(file.key)) failures.push({ key: file.key, reason: 'not attempted' });
    }
    return failures;
  }

  // Data-safety invariant 1: a remote object is deleted only when hydrate succeeded in
  // this pod, the file was known (and restored: an unrestored key was never local), it is
  // gone locally, every upload of this cycle succeeded, the walk read every directory,
  // and its sync path is not empty locally
  // (an empty tree over a non-empty remote is a missing mount, not a user's deletion).
  private async propagateDeletions(
    record: LocalRecord,
    local: Map<string, LocalFile>,
    counts: Map<string, number>,
    walkHadErrors: boolean,
    signal: AbortSignal,
  ): Promise<number> {
    const { settings, target, log } = this.context;
    if (!record.hydrated || walkHadErrors) return 0;
    const gone: string[] = [];
    const guarded = new Map<string, number>();
    for (const key of record.files.keys()) {
      if (local.has(key) || this.isExcludedKey(key) || record.unrestored?.has(key)) continue;
      const name = key.slice(0, key.indexOf('/'));
      if (!settings.syncPaths.some((syncPath) => syncPath.name === name)) continue;
      if ((counts.get(name) ?? 0) === 0) {
        guarded.set(name, (guarded.get(name) ?? 0) + 1);
        continue;
      }
      gone.push(key);
    }
    for (const [name, count] of guarded) {
      log.warn(`${name}/ is empty locally but ${count} files are in S3: not deleting them`);
    }
    if (gone.length === 0) return 0;
    const { deleted, failed } = await deleteKeys(target, gone, signal);
    for (const key of deleted) record.files.delete(key);
    if (failed.length > 0) throw new Error(`${failed.length} objects could not be deleted`);
    return deleted.length;
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
      manifest: toRecord(known),
    };
  }
}
