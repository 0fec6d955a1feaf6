import { logName, type AgentLog } from '../log.js';
import type { AgentSettings } from '../settings.js';
import { FileTable } from '../state/file-table.js';
import type { FileMap } from '../state/metadata.js';
import { compileExcludes, type ExcludeMatcher } from '../files/patterns.js';
import { walkSyncPaths, type WalkResult } from '../files/walk.js';

/** A cycle's walk of the sync paths, and the warnings about files that stay unsynced. */
export class LocalWalk {
  readonly excludes: ExcludeMatcher;
  // Warnings about files that stay unsynced, given once per process, not every cycle.
  private readonly reported = new Set<string>();

  constructor(private readonly context: { settings: AgentSettings; log: AgentLog }) {
    this.excludes = compileExcludes(context.settings.exclude);
  }

  /** The local files, or undefined (said why) when the workspace could not be walked. */
  async walk(known: FileMap): Promise<WalkResult | undefined> {
    const { settings, log } = this.context;
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
      return undefined;
    }
    for (const key of walk.symlinksSkipped) this.warnOnce(`${logName(key)} is a symlink pointing outside the workspace: not synced`);
    for (const file of walk.unsyncable) this.warnOnce(`${logName(file.path)}: ${file.reason}: not synced`);
    for (const error of walk.errors) log.warn(`cannot read ${logName(error.path)}: ${error.reason}`);
    return walk;
  }

  private warnOnce(message: string): void {
    if (this.reported.has(message)) return;
    this.reported.add(message);
    this.context.log.warn(message);
  }
}
