import { logName, type AgentLog } from '../log.js';
import type { AgentSettings } from '../settings.js';
import type { FileEntry } from '../state/metadata.js';
import type { LocalRecord } from '../state/record.js';
import type { RemoteTarget } from '../state/remote.js';
import { describeFailure, failureOf, isStoreError, type ObjectStore } from '../store/store.js';
import type { LocalFileMap } from '../files/walk.js';
import { forEachBounded } from '../../shared/pool.js';
import { planRefreshes } from './plan.js';

// The largest object one CopyObject may copy; larger ones can only be uploaded again.
export const MAX_COPY_BYTES = 5 * 2 ** 30;

export type RefreshOutcome =
  // Rewritten onto itself at `at`: the lifecycle clock starts again.
  | { kind: 'refreshed'; at: number }
  // Someone else (another pod, the platform) wrote it at `at`, recently enough.
  | { kind: 'recent'; at: number }
  // Gone: expired by the lifecycle rule or deleted by hand.
  | { kind: 'missing' }
  | { kind: 'too-large' };

/**
 * Keeps an unchanged object from expiring without moving its bytes through the pod: a
 * server-side copy onto itself, which writes the HEAD's metadata (x-amz-meta-mtime/mode, and
 * the Content-Type and other headers the agent or rclone set) back unchanged. Needs
 * s3:GetObject on the source and s3:PutObject on the target, nothing more.
 */
export async function refreshObject(
  store: ObjectStore,
  objectKey: string,
  recentMs: number,
  signal: AbortSignal,
): Promise<RefreshOutcome> {
  let head;
  try {
    head = await store.head(objectKey, signal);
  } catch (error) {
    if (isStoreError(error, 'not-found')) return { kind: 'missing' };
    throw error;
  }
  const modified = head.lastModified?.getTime();
  if (modified !== undefined && Date.now() - modified < recentMs) return { kind: 'recent', at: modified };
  if (head.size > MAX_COPY_BYTES) return { kind: 'too-large' };
  const at = Date.now();
  try {
    // Only if it still has the HEAD's ETag: a version written between the HEAD and the
    // copy is not replaced by the old one.
    await store.copyOnto(objectKey, head, signal);
  } catch (error) {
    if (isStoreError(error, 'not-found')) return { kind: 'missing' };
    // Rewritten by someone else since the HEAD: that write restarted its clock.
    if (isStoreError(error, 'precondition-failed')) return { kind: 'recent', at };
    throw error;
  }
  return { kind: 'refreshed', at };
}

export interface RefreshContext {
  settings: Pick<AgentSettings, 'refreshAfterDays'>;
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
  // Objects refreshed per cycle at most (tests lower it to see the spreading).
  perCycle?: number;
  manifest: { markDue(): void };
}

// Each refresh costs two requests (HEAD, then CopyObject when the object is really old).
// At the default interval, 100 per cycle covers a million objects a week: a session's
// steady state needs a few per cycle, and a backlog (objects restored from the platform's
// state, whose ages are unknown) is worked off in bounded steps.
const REFRESH_PER_CYCLE = 100;
const DAY_MS = 86_400_000;

// Invariant 7: the bucket's lifecycle rule expires an object by the age of its last
// write, and sync never rewrites an unchanged file. The oldest objects past
// REFRESH_AFTER_DAYS are rewritten in place, a bounded number per cycle; one found
// missing leaves the manifest if the pod has no copy; the local copies of missing ones
// are returned, to be uploaded again.
export async function refreshOldest(context: RefreshContext, record: LocalRecord, admitted: LocalFileMap, signal: AbortSignal): Promise<string[]> {
  const { settings, target, log } = context;
  const maxAgeMs = settings.refreshAfterDays * DAY_MS;
  const due = planRefreshes(record.files, Date.now(), maxAgeMs, context.perCycle ?? REFRESH_PER_CYCLE);
  if (due.length === 0) return [];
  const reupload: string[] = [];
  const errors: string[] = [];
  await forEachBounded(due, context.workers, async ([key, entry]) => {
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
    const error = settle(context, record, admitted, [key, entry], outcome, reupload);
    if (error !== undefined) errors.push(error);
  });
  for (const error of errors.slice(0, 5)) log.warn(`refreshing ${error}`);
  if (errors.length > 5) log.warn(`refreshing failed for ${errors.length - 5} more objects`);
  return reupload;
}

// What one object's refresh leaves: a new age in the record, a local copy to upload again,
// an entry dropped, or the error to report.
function settle(
  context: RefreshContext,
  record: LocalRecord,
  admitted: LocalFileMap,
  [key, entry]: [string, FileEntry],
  outcome: RefreshOutcome,
  reupload: string[],
): string | undefined {
  const { log, manifest } = context;
  if (outcome.kind === 'refreshed' || outcome.kind === 'recent') {
    record.files.set(key, { ...entry, uploadedAt: outcome.at });
    manifest.markDue();
  } else if (admitted.has(key)) {
    reupload.push(key);
    log.warn(
      outcome.kind === 'missing'
        ? `${logName(key)} was missing in S3 (expired or deleted): uploading the local copy again`
        : `${logName(key)} is too large to refresh by copy: uploading the local copy again`,
    );
  } else if (outcome.kind === 'missing') {
    record.files.delete(key);
    manifest.markDue();
    log.warn(`${logName(key)} is missing in S3 (expired or deleted) and this pod has no copy: dropped from the manifest`);
  } else {
    return `${logName(key)}: over 5 GiB, cannot be refreshed by copy, and this pod has no copy to upload`;
  }
  return undefined;
}
