import { logName, type AgentLog } from '../log.js';
import type { FileEntry, FileMap } from '../state/metadata.js';
import { forEachBounded } from '../../shared/pool.js';
import { AGENT_OBJECTS_PREFIX, type RemoteTarget } from '../state/remote.js';
import { leaveForOwner } from './session-owner.js';
import { describeFailure, isStoreError } from '../store/store.js';
import { uploadFile } from '../files/transfer.js';
import type { LocalFileMap } from '../files/walk.js';

export interface SupersededUploads {
  uploaded: number;
  bytes: number;
  failures: Array<{ key: string; reason: string }>;
}

/** Where a superseded pod keeps its copy of a file the owner has its own version of. */
export function supersededKey(podUid: string, key: string): string {
  return `${AGENT_OBJECTS_PREFIX}superseded/${podUid}/${key}`;
}

/**
 * What a pod that lost the session to another pod still holds and the owner may not
 * (DESIGN rule 8): a file S3 has no object for goes up under its own key, written only if
 * the key is still free, and is listed in the lease for the owner to adopt; a file whose
 * object exists (the owner's copy may be newer) goes up beside the data under
 * `.session-storage/superseded/<pod uid>/`, never over the owner's object. Each is named.
 */
export async function uploadAsSuperseded(
  context: { target: RemoteTarget; log: AgentLog; workers: number; podUid: string },
  keys: readonly string[],
  local: LocalFileMap,
  known: FileMap,
  signal: AbortSignal,
): Promise<SupersededUploads> {
  const { target, log } = context;
  const result: SupersededUploads = { uploaded: 0, bytes: 0, failures: [] };
  const forOwner = new Map<string, FileEntry>();
  const where = (key: string) => `s3://${target.store.bucket}/${target.prefix}${supersededKey(context.podUid, key)}`;
  await forEachBounded(keys, context.workers, async (key) => {
    const file = local.get(key);
    if (!file || signal.aborted) return;
    const entry: FileEntry = { size: file.size, mtimeMs: file.mtimeMs, mode: file.mode, uploadedAt: Date.now() };
    const previously = known.get(key);
    try {
      let placed = false;
      if (previously === undefined) {
        try {
          entry.sha256 = await uploadFile(target.store, target.prefix + key, file.absolutePath, entry, signal, true);
          forOwner.set(key, { size: entry.size, mtimeMs: entry.mtimeMs, ...(entry.mode === undefined ? {} : { mode: entry.mode }), ...(entry.sha256 === undefined ? {} : { sha256: entry.sha256 }) });
          log.warn(`uploaded ${logName(key)}, which the session's owner pod did not have`);
          placed = true;
        } catch (error) {
          if (!isStoreError(error, 'precondition-failed')) throw error;
        }
      }
      if (!placed) {
        entry.sha256 = await uploadFile(target.store, target.prefix + supersededKey(context.podUid, key), file.absolutePath, entry, signal);
        log.warn(`kept this pod's ${logName(key)} as ${logName(where(key))}: the owner pod has its own copy`);
      }
      known.set(key, entry);
      result.uploaded += 1;
      result.bytes += entry.size;
    } catch (error) {
      const local = error as NodeJS.ErrnoException;
      if (local.code === 'ENOENT') return;
      result.failures.push({ key, reason: local.path !== undefined ? `cannot read (${local.code ?? local.message})` : describeFailure(error) });
    }
  });
  if (forOwner.size > 0 && !(await leaveForOwner(target, forOwner, signal))) {
    log.warn(`could not list ${forOwner.size} uploaded files in the session's lease: the owner adopts them only through a listing`);
  }
  return result;
}
