import { isStoreError, type ObjectStore } from '../store/store.js';

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
