import { CopyObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { hasErrorCode, isNotFound } from './s3.js';

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

function copySource(bucket: string, objectKey: string): string {
  return `${bucket}/${objectKey.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Keeps an unchanged object from expiring without moving its bytes through the pod: a
 * server-side CopyObject onto itself. Copying an object onto itself is only allowed with
 * `MetadataDirective: REPLACE`, so the HEAD's metadata (x-amz-meta-mtime/mode, and the
 * Content-Type and other headers rclone may have set) is written back unchanged. Needs
 * s3:GetObject on the source and s3:PutObject on the target, nothing more.
 */
export async function refreshObject(
  client: S3Client,
  bucket: string,
  objectKey: string,
  recentMs: number,
  signal: AbortSignal,
): Promise<RefreshOutcome> {
  let head;
  try {
    head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: signal });
  } catch (error) {
    if (isNotFound(error)) return { kind: 'missing' };
    throw error;
  }
  const modified = head.LastModified?.getTime();
  if (modified !== undefined && Date.now() - modified < recentMs) return { kind: 'recent', at: modified };
  if ((head.ContentLength ?? 0) > MAX_COPY_BYTES) return { kind: 'too-large' };
  const at = Date.now();
  try {
    await client.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: objectKey,
        CopySource: copySource(bucket, objectKey),
        // A version written between the HEAD and the copy is not replaced by the old one.
        CopySourceIfMatch: head.ETag,
        MetadataDirective: 'REPLACE',
        Metadata: head.Metadata,
        ContentType: head.ContentType,
        ContentEncoding: head.ContentEncoding,
        ContentDisposition: head.ContentDisposition,
        ContentLanguage: head.ContentLanguage,
        CacheControl: head.CacheControl,
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    if (isNotFound(error)) return { kind: 'missing' };
    // Rewritten by someone else since the HEAD: that write restarted its clock.
    if (hasErrorCode(error, 'PreconditionFailed')) return { kind: 'recent', at };
    throw error;
  }
  return { kind: 'refreshed', at };
}
