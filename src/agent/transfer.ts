import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, readFile, realpath, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, PutObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pLimit from 'p-limit';
import type { FileEntry } from './manifest.js';
import { hasErrorCode } from './s3.js';
import type { FsPath } from './walk.js';

// Hydrate's temp files beside their targets. The walk syncs user files that happen to
// end in it: sync runs only after hydrate finished in this pod.
export const PARTIAL_SUFFIX = '.session-storage-partial';

// Files below this size are read whole: one buffer, one request, and the cheapest path for
// the many small files a session holds.
export const SMALL_FILE = 2 ** 20;
// Above this size a file goes up in parts, so a dropped connection costs one part, not the
// whole file. Between the two, the file is streamed from disk in one PutObject whose length
// is known up front, so nothing but the socket's buffers holds its bytes.
export const MULTIPART_THRESHOLD = 64 * 2 ** 20;
const PART_SIZE = 8 * 2 ** 20;
const PART_QUEUE = 2;
// Each multipart upload buffers up to PART_QUEUE parts; capping how many run at once keeps
// memory bounded whatever the worker count.
const multipartLimit = pLimit(2);

// The mtime is stored the way rclone stores it (seconds with a fraction, x-amz-meta-mtime)
// so objects written by the shell version restore with their times too.
function objectMetadata(entry: FileEntry): Record<string, string> {
  const metadata: Record<string, string> = { mtime: (entry.mtimeMs / 1000).toFixed(6) };
  if (entry.mode !== undefined) metadata.mode = (entry.mode & 0o777).toString(8);
  return metadata;
}

// The stream reads exactly the size the walk saw: a file that grew meanwhile is cut at that
// length (and goes up again next cycle, when its stat no longer matches). One that shrank
// would leave the request waiting for bytes that never come, so a short read aborts it.
async function putStream(
  client: S3Client,
  bucket: string,
  objectKey: string,
  absolutePath: FsPath,
  entry: FileEntry,
  Metadata: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  const Body = createReadStream(absolutePath, { start: 0, end: entry.size - 1 });
  // Open errors (ENOENT, EACCES) surface as the file's own error, as readFile's do.
  await new Promise<void>((resolve, reject) => {
    Body.once('open', () => resolve());
    Body.once('error', reject);
  });
  const shortRead = new AbortController();
  Body.once('end', () => {
    if (Body.bytesRead < entry.size) shortRead.abort();
  });
  try {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: objectKey, Body, ContentLength: entry.size, Metadata }),
      { abortSignal: AbortSignal.any([signal, shortRead.signal]) },
    );
  } catch (error) {
    if (shortRead.signal.aborted && !signal.aborted) {
      throw new Error(`${objectKey} shrank during upload (${Body.bytesRead} of ${entry.size} bytes)`);
    }
    throw error;
  } finally {
    Body.destroy();
  }
}

export async function uploadFile(
  client: S3Client,
  bucket: string,
  objectKey: string,
  absolutePath: FsPath,
  entry: FileEntry,
  signal: AbortSignal,
): Promise<void> {
  const Metadata = objectMetadata(entry);
  if (entry.size < SMALL_FILE) {
    const Body = await readFile(absolutePath, { signal });
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey, Body, Metadata }), {
      abortSignal: signal,
    });
    return;
  }
  if (entry.size < MULTIPART_THRESHOLD) {
    await putStream(client, bucket, objectKey, absolutePath, entry, Metadata, signal);
    return;
  }
  await multipartLimit(async () => {
    if (signal.aborted) throw signal.reason;
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: objectKey, Body: createReadStream(absolutePath), Metadata },
      partSize: PART_SIZE,
      queueSize: PART_QUEUE,
      leavePartsOnError: false,
    });
    const abort = () => void upload.abort();
    signal.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
    } finally {
      signal.removeEventListener('abort', abort);
    }
  });
}

function parseMtime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

function parseMode(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-7]{1,4}$/.test(value)) return undefined;
  return Number.parseInt(value, 8) & 0o777;
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

// Directories already created and checked during this restore: thousands of files share
// a few directories, and each check costs a realpath.
export type CheckedDirs = Map<string, Promise<void>>;

async function prepareDir(dir: string, workspaceReal: string, objectKey: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  // A symlinked directory planted in the workspace must not redirect a restore elsewhere.
  if (!isInside(workspaceReal, await realpath(dir))) {
    throw new Error(`refusing to restore ${objectKey}: ${dir} resolves outside the workspace`);
  }
}

const SMALL_OBJECT = 2 ** 20;
// Beside a large partial download, the ETag of the object it holds: a retry resumes with
// a ranged GET only if the object is still that version.
const ETAG_SUFFIX = `.etag${PARTIAL_SUFFIX}`;

async function resumePoint(temp: string, etagFile: string): Promise<{ offset: number; etag: string } | undefined> {
  try {
    const [info, etag] = await Promise.all([stat(temp), readFile(etagFile, 'utf8')]);
    return info.size > 0 && etag !== '' ? { offset: info.size, etag } : undefined;
  } catch {
    return undefined;
  }
}

function totalSize(response: GetObjectCommandOutput, offset: number): number | undefined {
  const range = /\/(\d+)$/.exec(response.ContentRange ?? '');
  if (range?.[1] !== undefined) return Number(range[1]);
  return response.ContentLength === undefined ? undefined : offset + response.ContentLength;
}

// Downloads into "<name>.session-storage-partial" beside the target and renames it into
// place, so the runner never sees a half-written file. A large download that fails keeps
// its partial file, and the next attempt continues it where it stopped.
export async function downloadFile(
  client: S3Client,
  bucket: string,
  objectKey: string,
  localPath: string,
  workspaceReal: string,
  known: FileEntry | undefined,
  checkedDirs: CheckedDirs,
  signal: AbortSignal,
): Promise<FileEntry> {
  const dir = path.dirname(localPath);
  let ready = checkedDirs.get(dir);
  if (!ready) {
    ready = prepareDir(dir, workspaceReal, objectKey);
    checkedDirs.set(dir, ready);
  }
  await ready;
  const temp = `${localPath}${PARTIAL_SUFFIX}`;
  const etagFile = `${localPath}${ETAG_SUFFIX}`;

  let offset = 0;
  let response: GetObjectCommandOutput | undefined;
  const resume = await resumePoint(temp, etagFile);
  if (resume) {
    try {
      response = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: objectKey, Range: `bytes=${resume.offset}-`, IfMatch: resume.etag }),
        { abortSignal: signal },
      );
      offset = resume.offset;
    } catch (error) {
      // The object changed since (412) or the partial is already whole (416): start over.
      if (!hasErrorCode(error, 'PreconditionFailed', 'InvalidRange')) throw error;
    }
  }
  response ??= await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: signal });

  // A negative manifest mtime means "unknown" (an object sync only knows from a listing).
  const knownMtime = known !== undefined && known.mtimeMs >= 0 ? known.mtimeMs : undefined;
  const mtimeMs = parseMtime(response.Metadata?.mtime) ?? knownMtime ?? response.LastModified?.getTime() ?? Date.now();
  const mode = parseMode(response.Metadata?.mode) ?? (known?.mode === undefined ? undefined : known.mode & 0o777);
  const small = offset === 0 && (response.ContentLength ?? Infinity) < SMALL_OBJECT;
  let size: number;
  try {
    if (small && response.Body) {
      const bytes = await response.Body.transformToByteArray();
      await writeFile(temp, bytes, { signal });
      size = bytes.length;
    } else {
      if (offset === 0 && response.ETag) await writeFile(etagFile, response.ETag);
      await pipeline(response.Body as Readable, createWriteStream(temp, { flags: offset > 0 ? 'a' : 'w' }), { signal });
      size = (await stat(temp)).size;
      const expected = totalSize(response, offset);
      if (expected !== undefined && size !== expected) {
        throw new Error(`incomplete download of ${objectKey}: ${size} of ${expected} bytes`);
      }
    }
    if (mode !== undefined) await chmod(temp, mode);
    await utimes(temp, new Date(), mtimeMs / 1000);
    await rename(temp, localPath);
  } catch (error) {
    if (small) await rm(temp, { force: true });
    throw error;
  }
  await rm(etagFile, { force: true });
  return { size, mtimeMs, mode };
}
