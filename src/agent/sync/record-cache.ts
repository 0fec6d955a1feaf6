import type { AgentLog } from '../log.js';
import type { AgentSettings } from '../settings.js';
import { FileTable } from '../state/file-table.js';
import { remoteOnly } from '../state/metadata.js';
import { lockRecord, readRecord, recordVersion, writeRecord, type LocalRecord, type RecordLock } from '../state/record.js';
import { listRemote, readMetadata, type RemoteTarget } from '../state/remote.js';
import { describeFailure } from '../store/store.js';

export interface RecordCacheContext {
  settings: AgentSettings;
  target: RemoteTarget;
  log: AgentLog;
  // How long a cycle waits for the record lock another sync process holds; the sidecar
  // waits as long as it takes (its signal still ends the wait).
  lockWaitMs?: number;
}

/**
 * The pod-local record as sync cycles use it: locked for a cycle, cached between cycles
 * and read again only when another process (a `sync --once` beside the sidecar) wrote it
 * since, written back with its new version.
 */
export class RecordCache {
  private record: LocalRecord | undefined;
  private version: string | undefined;

  constructor(private readonly context: RecordCacheContext) {}

  get current(): LocalRecord | undefined {
    return this.record;
  }

  /** The record's lock for one cycle, or undefined (said why) when it was not had. */
  async lock(signal: AbortSignal): Promise<RecordLock | undefined> {
    const { settings, log } = this.context;
    try {
      return await lockRecord(settings.stateDir, { waitMs: this.context.lockWaitMs ?? Infinity, signal });
    } catch (error) {
      if (signal.aborted) log.info('Sync interrupted while waiting for the record lock');
      else log.error(`Sync failed: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  }

  /** The record, or undefined (said why) when the remote state could not be read. */
  async load(signal: AbortSignal): Promise<LocalRecord | undefined> {
    try {
      return await this.read(signal);
    } catch (error) {
      this.context.log.error(`Sync failed: cannot read the remote state: ${describeFailure(error)}`);
      return undefined;
    }
  }

  /** Writes the record; false (said why) when the state dir refused it. */
  async save(record: LocalRecord): Promise<boolean> {
    const { settings, log } = this.context;
    try {
      await writeRecord(settings.stateDir, record);
      this.version = await recordVersion(settings.stateDir);
      return true;
    } catch (error) {
      // A full state dir (ENOSPC) must not hold back the manifest: the record in memory
      // is right, and without metadata.json the uploads just made are orphaned for the
      // next pod. The cycle still fails, and metadata stays due.
      log.error(`Sync failed: cannot write the local record in ${settings.stateDir}: ${String(error)}`);
      return false;
    }
  }

  private async read(signal: AbortSignal): Promise<LocalRecord> {
    const { settings, target } = this.context;
    const version = await recordVersion(settings.stateDir);
    if (this.record && version === this.version) return this.record;
    const existing = await readRecord(settings.stateDir, target.store.bucket, target.prefix);
    if (existing) {
      this.record = existing;
      this.version = version;
      return existing;
    }
    if (this.record) return this.record;
    this.record = await this.learnRemote(signal);
    return this.record;
  }

  // Without a record from hydrate (sync started alone, or restarted after the state
  // EmptyDir was lost) the remote state is learned once, from metadata.json and, where
  // permitted, one listing. Such a record never allows deletions.
  private async learnRemote(signal: AbortSignal): Promise<LocalRecord> {
    const { target, log } = this.context;
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
    return { bucket: target.store.bucket, prefix: target.prefix, hydrated: false, files };
  }
}
