import type { AgentLog } from '../log.js';
import type { AgentSettings } from '../settings.js';
import type { FileMap, SkippedFile } from '../state/metadata.js';
import type { LocalRecord } from '../state/record.js';
import { writeMetadataOf, type RemoteTarget } from '../state/remote.js';
import { describeFailure } from '../store/store.js';
import { bundleTimeLimitMs, writeBundle } from '../bundle/bundle-writer.js';
import { VERSION } from '../../shared/version.js';
import type { LeaseSteps } from './lease-steps.js';
import type { RecordCache } from './record-cache.js';

export interface ManifestContext {
  settings: AgentSettings;
  target: RemoteTarget;
  log: AgentLog;
}

export interface ManifestWrite {
  record: LocalRecord;
  skipped: SkippedFile[];
  // Keys taken from the lease's adoptions this cycle: the lease drops them once
  // metadata.json lists them.
  fromLease: readonly string[];
  final: boolean;
}

/**
 * What a cycle writes last: the local record and metadata.json, when something changed
 * since the last write that succeeded (or at the final sync), and the restore bundle
 * after a final sync that succeeded.
 */
export class ManifestWriter {
  // metadata.json stays due until a write succeeds, so a manifest that failed to go up
  // after successful uploads is written by the next cycle even if nothing else changed.
  private due = false;

  constructor(
    private readonly context: ManifestContext,
    private readonly records: RecordCache,
  ) {}

  markDue(): void {
    this.due = true;
  }

  /** False (said why) when the record or metadata.json could not be written. */
  async write(write: ManifestWrite, lease: LeaseSteps, signal: AbortSignal): Promise<boolean> {
    if (!this.due && !write.final) return true;
    const recordSaved = await this.records.save(write.record);
    try {
      if (await lease.confirm(signal)) {
        const metadata = { ...this.metadata(write.record.files, write.skipped), generation: lease.generation };
        await writeMetadataOf(this.context.target, metadata, write.record.files, signal);
        lease.owner.adopted(write.fromLease);
      }
    } catch (error) {
      this.context.log.error(`Sync failed: writing metadata.json: ${describeFailure(error)}`);
      return false;
    }
    if (!recordSaved) return false;
    this.due = false;
    return true;
  }

  // Last, once the data and metadata.json are up: only a saving for the next pod.
  async bundle(lease: LeaseSteps, signal: AbortSignal, elapsedMs: number): Promise<void> {
    const record = this.records.current;
    if (!record || lease.superseded) return;
    const budgetMs = this.context.settings.finalSyncTimeoutSeconds * 1000;
    await writeBundle(this.context, record.files, signal, bundleTimeLimitMs(budgetMs, elapsedMs));
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
