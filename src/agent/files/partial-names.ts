import { createHash } from 'node:crypto';
import path from 'node:path';

const SUFFIX = '.session-storage-partial';
const PARTIAL_NAME = /^\.ss-[0-9a-f]{24}(\.etag)?\.session-storage-partial$/;

export interface PartialPaths {
  // The bytes downloaded so far.
  data: string;
  // The ETag of the object those bytes belong to: a retry resumes only that version.
  etag: string;
}

// Temporary names have a fixed length (under 60 bytes) whatever the final name's length,
// so a file whose name is at NAME_MAX (255 bytes) still has a temporary name the file
// system accepts. They are derived from the final name, not random, so a retry (the same
// process or a restarted init container) finds the partial download of the same file.
export function partialPaths(localPath: string): PartialPaths {
  const id = createHash('sha256').update(path.basename(localPath)).digest('hex').slice(0, 24);
  const dir = path.dirname(localPath);
  return { data: path.join(dir, `.ss-${id}${SUFFIX}`), etag: path.join(dir, `.ss-${id}.etag${SUFFIX}`) };
}

// Exactly the names partialPaths produces: what a walk must never upload, and nothing a
// user is likely to name a file.
export function isPartialName(name: string): boolean {
  return PARTIAL_NAME.test(name);
}
