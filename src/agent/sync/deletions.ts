import { logName, type AgentLog } from '../log.js';
import type { LocalRecord } from '../state/record.js';
import { deleteKeys, type RemoteTarget } from '../state/remote.js';
import { describeFailure } from '../store/store.js';
import type { LeaseSteps } from './lease-steps.js';
import { planDeletions, type DeletionInput, type DeletionPlan } from './plan.js';

export interface DeletionOutcome {
  deleted: number;
  failed: boolean;
}

/**
 * Deletes the objects of files removed locally, as far as planDeletions allows
 * (data-safety invariant 1), and only as the session's owner, in a generation begun right
 * before. Objects deleted leave the record.
 */
export async function deleteRemoved(
  context: { target: RemoteTarget; log: AgentLog },
  input: DeletionInput & { record: LocalRecord },
  lease: LeaseSteps,
  signal: AbortSignal,
): Promise<DeletionOutcome> {
  const plan = planDeletions(input);
  if (lease.superseded) return { deleted: 0, failed: false };
  try {
    reportGuarded(context.log, plan);
    if (plan.deletions.length === 0 || !(await lease.confirm(signal))) return { deleted: 0, failed: false };
    return { deleted: await propagate(context.target, input.record, plan, signal), failed: false };
  } catch (error) {
    context.log.warn(`deleting removed files failed: ${describeFailure(error)}`);
    return { deleted: 0, failed: true };
  }
}

function reportGuarded(log: AgentLog, plan: DeletionPlan): void {
  for (const [name, count] of plan.guarded) {
    log.warn(`${logName(name)}/ is empty locally but ${count} files are in S3: not deleting them`);
  }
}

async function propagate(target: RemoteTarget, record: LocalRecord, plan: DeletionPlan, signal: AbortSignal): Promise<number> {
  const { deleted, failed } = await deleteKeys(target, plan.deletions, signal);
  for (const key of deleted) record.files.delete(key);
  if (failed.length > 0) throw new Error(`${failed.length} objects could not be deleted`);
  return deleted.length;
}
