import { logName, type AgentLog } from '../log.js';
import type { FileEntry, FileMap } from '../state/metadata.js';
import { planCounts, type RestoreJob, type RestorePlan } from './restore-plan.js';

export interface HydrateSummary {
  restored: number;
  unchanged: number;
  bytes: number;
  refused: number;
  unrestored: number;
}

/**
 * What a restore has done so far, handed to each of its steps: the record it will write,
 * the paths the journal's sweep keeps, the counts of its log lines, and the error that
 * ends it. Starts from the plan's record, skips and counts, and takes them over.
 */
export class RestoreTally {
  readonly files: FileMap;
  readonly unrestored: Set<string>;
  // Local paths this attempt restored or found in place: what the sweep keeps.
  readonly kept = new Set<string>();
  // Keys the restore bundle placed (or found in place): not fetched per object.
  readonly bundled = new Set<string>();
  readonly summary: HydrateSummary;
  // Jobs finished, for the progress lines.
  done = 0;
  // The first error that concerns the whole attempt: workers stop taking jobs.
  failure: unknown;
  // The first object the store refused to these credentials.
  denied: unknown;

  constructor(plan: RestorePlan) {
    this.files = plan.files;
    this.unrestored = plan.unrestored;
    const counts = planCounts(plan);
    this.summary = { restored: 0, unchanged: counts.unchanged, bytes: 0, refused: counts.refused, unrestored: counts.unrestorable };
  }

  restored(job: RestoreJob, entry: FileEntry): void {
    this.files.set(job.key, entry);
    this.kept.add(job.relativePath);
    this.summary.restored += 1;
    this.summary.bytes += entry.size;
  }

  inPlace(job: RestoreJob, entry: FileEntry): void {
    this.files.set(job.key, entry);
    this.kept.add(job.relativePath);
    this.summary.unchanged += 1;
  }

  // Named, left in S3 and never deleted by sync.
  unrestorable(job: RestoreJob, reason: string, log: AgentLog): void {
    log.warn(`cannot restore ${logName(job.key)}: ${reason}`);
    this.unrestored.add(job.key);
    if (job.remote) this.files.set(job.key, job.remote);
    this.summary.unrestored += 1;
  }
}
