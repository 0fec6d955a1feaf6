import { logName, type AgentLog } from '../log.js';
import type { SkippedFile } from '../state/metadata.js';
import { formatBytes } from '../../shared/size.js';

/**
 * What MAX_SYNC_SIZE left out, said every cycle in one line, and file by file when the
 * set differs from the last cycle that got past its transfers.
 */
export class SkippedReport {
  private settled = '[]';
  private latest = '[]';

  constructor(
    private readonly log: AgentLog,
    private readonly maxSyncSize: number,
  ) {}

  /** Says what was skipped; true when that differs from the last settled cycle's. */
  report(skipped: readonly SkippedFile[]): boolean {
    this.latest = JSON.stringify(skipped);
    const changed = this.latest !== this.settled;
    if (skipped.length > 0) {
      const bytes = skipped.reduce((sum, file) => sum + file.size, 0);
      this.log.warn(`MAX_SYNC_SIZE (${formatBytes(this.maxSyncSize)}) exceeded: ${skipped.length} largest files (${formatBytes(bytes)}) not synced`);
      if (changed) for (const file of skipped) this.log.detail(`skipped ${logName(file.path)} (${formatBytes(file.size)})`);
    }
    return changed;
  }

  // Once the cycle's transfers are over (not interrupted): later cycles compare with this set.
  settle(): void {
    this.settled = this.latest;
  }
}
