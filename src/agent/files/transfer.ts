import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, createReadStream, fchmodSync, futimesSync, openSync, renameSync, writeSync } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isRemoteOnly, type FileEntry } from '../state/metadata.js';
import { partialPaths, type PartialPaths } from './partial-names.js';
import { isStoreError, StoreError, type ObjectRead, type ObjectStore } from '../store/store.js';
import type { FsPath } from '../../shared/fs-path.js';
import { streamedThrough } from '../../shared/gc-pacing.js';

// Files below this size are read whole: one buffer, one request, and the cheapest path for
// the many small files a session holds.
export const SMALL_FILE = 2 ** 20;
// Above this size a file goes up in parts, so a dropped connection costs one part, not the
// whole file. Between the two, the file is streamed from disk in one PutObject whose length
// is known up front, so nothing but the socket's buffers holds its bytes.
export const MULTIPART_THRESHOLD = 64 * 2 ** 20;

// The mtime is stored the way rclone stores it (seconds with a fraction, x-amz-meta-mtime)
// so objects written by the shell version restore with their times too.
function objectMetadata(entry: FileEntry): Record<string, string> {
  const metadata: Record<string, string> = { mtime: (entry.mtimeMs / 1000).toFixed(6) };
  if (entry.mode !== undefined) metadata.mode = (entry.mode & 0o777).toString(8);
  return metadata;
}

// Open errors (ENOENT, EACCES) surface as the file's own error, as readFile's do.
async function openStream(absolutePath: FsPath): Promise<ReturnType<typeof createReadStream>> {
  const stream = createReadStream(absolutePath);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  return stream;
}

// Returns the SHA-256 (hex) of the content the store confirmed (rule 9). `onlyNew`: the
// object is written only if the key has none yet (If-None-Match), which a multipart upload
// cannot ask for: a file that large fails with precondition-failed.
export async function uploadFile(
  store: ObjectStore,
  objectKey: string,
  absolutePath: FsPath,
  entry: FileEntry,
  signal: AbortSignal,
  onlyNew = false,
): Promise<string | undefined> {
  const metadata = objectMetadata(entry);
  const condition = onlyNew ? { ifNoneMatch: '*' as const } : {};
  if (entry.size < SMALL_FILE) {
    const body = await readFile(absolutePath, { signal });
    return (await store.put(objectKey, body, { metadata, ...condition }, signal)).sha256;
  }
  // Exactly the size the walk saw: a file that grew meanwhile is cut at that length, one
  // that shrank fails; either goes up again next cycle, when its stat no longer matches.
  if (entry.size < MULTIPART_THRESHOLD) {
    return (await store.put(objectKey, { file: absolutePath, size: entry.size }, { metadata, ...condition }, signal)).sha256;
  }
  if (onlyNew) throw new StoreError('precondition-failed', { kind: 'error', detail: `${objectKey}: too large for a conditional upload` });
  const body = await openStream(absolutePath);
  try {
    return (await store.putMultipart(objectKey, body, { metadata }, signal)).sha256;
  } finally {
    body.destroy();
  }
}

// rclone writes x-amz-meta-mtime as decimal seconds with a fraction. Anything else ("1e300",
// "abc", a negative or a time beyond what file systems hold) is reported by the caller and
// the file restored with another time.
const MTIME = /^\d{1,10}(\.\d+)?$/;

function parseMtime(value: string | undefined): number | undefined {
  return value !== undefined && MTIME.test(value) ? Number(value) * 1000 : undefined;
}

function parseMode(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-7]{1,4}$/.test(value)) return undefined;
  return Number.parseInt(value, 8) & 0o777;
}

// A local path the restore refuses to create or write through.
export class RefusedPath extends Error {}

// The directories of the workspace, created and checked one component at a time: a
// component that is a symlink (wherever it points, inside the workspace or not) or not a
// directory refuses every key below it. Nothing is followed, so nothing is written
// outside the workspace or through a link. A symlink is refused rather than replaced: it
// is not the agent's, and a restore must not destroy what it did not create. hydrate runs
// before the runner starts, so nothing swaps a checked directory for a link meanwhile.
export class WorkspaceTree {
  private readonly dirs = new Map<string, Promise<void>>();
  // Directories this tree created: nothing of an earlier attempt (a file in place, a
  // partial download) can be in them, so the restore skips looking.
  private readonly created = new Set<string>();

  // `root` is the real path of the workspace. `recordCreated`, where given, keeps each
  // directory this tree creates on disk (hydrate-journal.ts) before anything is written
  // into it, which lets small files there be written under their final names.
  constructor(
    readonly root: string,
    private readonly recordCreated?: (relativeDir: string) => void,
  ) {}

  ensureDir(relativeDir: string): Promise<void> {
    if (relativeDir === '' || relativeDir === '.') return Promise.resolve();
    let ready = this.dirs.get(relativeDir);
    if (!ready) {
      ready = this.ensureDir(path.dirname(relativeDir)).then(() => this.checkOrCreate(relativeDir));
      this.dirs.set(relativeDir, ready);
    }
    return ready;
  }

  // Whether the directory (already ensured) was created by this tree.
  isNew(relativeDir: string): boolean {
    return this.created.has(relativeDir);
  }

  // Whether a file in the directory (already ensured) may be written under its final name.
  writesFinalNames(relativeDir: string): boolean {
    return this.recordCreated !== undefined && this.created.has(relativeDir);
  }

  private async checkOrCreate(relativeDir: string): Promise<void> {
    const absolute = path.join(this.root, relativeDir);
    const made = await mkdir(absolute).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
        return false;
      },
    );
    // mkdir never follows a link at the name (EEXIST): what it made is a plain directory.
    if (made) {
      this.recordCreated?.(relativeDir);
      this.created.add(relativeDir);
      return;
    }
    const info = await lstat(absolute);
    if (info.isSymbolicLink()) throw new RefusedPath(`${relativeDir} is a symlink`);
    if (!info.isDirectory()) throw new RefusedPath(`${relativeDir} is not a directory`);
  }
}

const SMALL_OBJECT = 2 ** 20;
// Regular files only, never through a link at the final component; creation fails on any
// existing name, so a link planted at a temporary path is never opened.
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW;
const READ = constants.O_RDONLY | constants.O_NOFOLLOW;

async function removeName(file: string): Promise<void> {
  // unlink removes a link or a hard link's own name, never what it points at.
  await unlink(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

// A temporary name is nearly always free: it is removed only when taken (what an
// interrupted attempt left), instead of unlinking up front for every file.
async function createFresh(file: string, mode: number): Promise<FileHandle> {
  try {
    return await open(file, CREATE, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    await removeName(file);
    return open(file, CREATE, mode);
  }
}

// A partial download is continued only if it is a plain file of this restore: not a
// link, not a second name of some other file, with the ETag of the version it holds.
async function resumePoint(partial: PartialPaths): Promise<{ offset: number; etag: string } | undefined> {
  try {
    const info = await lstat(partial.data);
    if (!info.isFile() || info.nlink !== 1 || info.size === 0) return undefined;
    const handle = await open(partial.etag, READ);
    try {
      const etagInfo = await handle.stat();
      if (!etagInfo.isFile() || etagInfo.size > 256) return undefined;
      const etag = await handle.readFile('utf8');
      return etag === '' ? undefined : { offset: info.size, etag };
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

function totalSize(response: ObjectRead, offset: number): number | undefined {
  const range = /\/(\d+)$/.exec(response.contentRange ?? '');
  if (range?.[1] !== undefined) return Number(range[1]);
  return response.contentLength === undefined ? undefined : offset + response.contentLength;
}

export interface DownloadRequest {
  store: ObjectStore;
  objectKey: string;
  // Relative to the workspace root.
  relativePath: string;
  // The manifest's entry, whose mtime and mode stand in for missing object metadata and
  // whose sha256 the restored bytes must have.
  known: FileEntry | undefined;
  // The object's size as the listing (else the manifest) announces it.
  announcedSize?: number;
  signal: AbortSignal;
}

// Restored bytes that are not the object's (rule 9): the manifest's hash, the hash the
// store keeps, or the announced size says so. The file never takes its final name.
export class IntegrityError extends Error {}

// Checks what was fetched against the manifest's hash, else the store's own, and the
// announced size.
function verify(request: DownloadRequest, response: ObjectRead, size: number, sha256: string): void {
  const expected = request.known?.sha256 ?? response.storedSha256;
  const source = request.known?.sha256 === undefined ? "the store's checksum" : 'the manifest';
  if (expected !== undefined && expected !== sha256) {
    throw new IntegrityError(`content does not match ${source}: sha256 ${sha256} (${size} bytes), expected ${expected}`);
  }
  if (request.announcedSize !== undefined && size !== request.announcedSize) {
    throw new IntegrityError(`${size} bytes received, ${request.announcedSize} announced (sha256 ${sha256})`);
  }
}

// The hash of what an earlier attempt already wrote to a partial file, which a ranged
// GET continues.
async function hashPartial(file: string, length: number): Promise<Hash> {
  const hash = createHash('sha256');
  const handle = await open(file, READ);
  try {
    const buffer = Buffer.allocUnsafe(Math.min(length, 256 * 1024));
    for (let read = 0; read < length; ) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - read), read);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      read += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hash;
}

export interface Downloaded {
  entry: FileEntry;
  // The object's x-amz-meta-mtime when it could not be used, and which time was used.
  unusableMtime?: { value: string; used: 'manifest' | 'upload' };
}

async function fetchObject(
  request: DownloadRequest,
  resume: { offset: number; etag: string } | undefined,
): Promise<{ response: ObjectRead; offset: number }> {
  const { store, objectKey, signal } = request;
  if (resume) {
    try {
      const response = await store.get(objectKey, { from: { offset: resume.offset, ifMatch: resume.etag } }, signal);
      return { response, offset: resume.offset };
    } catch (error) {
      // The object changed since (412) or the partial is already whole (416): start over.
      if (!isStoreError(error, 'precondition-failed', 'invalid-range')) throw error;
    }
  }
  return { response: await store.get(objectKey, {}, signal), offset: 0 };
}

export interface FileAttributes {
  mtimeMs: number;
  mode: number | undefined;
}

// The mask the kernel applies to a created file's mode: where it leaves the wanted mode
// whole, the open sets it and no chmod is needed.
const UMASK = process.umask();

// An mtime as utimes takes it: seconds keep the fraction of a millisecond, but Node reads
// a negative number as "now", so a time before 1970 goes as a Date.
function fileTime(mtimeMs: number): number | Date {
  return mtimeMs < 0 ? new Date(mtimeMs) : mtimeMs / 1000;
}

// Writes, sets mode and mtime (last: a file whose mtime matches was written whole), closes.
function fillSync(fd: number, bytes: Uint8Array, attributes: FileAttributes): void {
  try {
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
    if (attributes.mode !== undefined && (attributes.mode & ~UMASK) !== attributes.mode) fchmodSync(fd, attributes.mode);
    futimesSync(fd, new Date(), fileTime(attributes.mtimeMs));
  } finally {
    closeSync(fd);
  }
}

// A whole file from bytes in memory (a small object, a restore-bundle entry). In a
// directory this restore created (and recorded, see hydrate-journal.ts) it is created under
// its final name; elsewhere written under its temporary name and renamed into place.
// Synchronous on purpose: for a file of a few KiB the system calls take microseconds,
// while each asynchronous one is a round trip through libuv's four threads (measured:
// docs/BENCHMARKS.md, "Figures behind the code"). At most SMALL_OBJECT bytes, so the
// event loop stalls briefly at worst.
export async function writeWholeFile(tree: WorkspaceTree, relativePath: string, bytes: Uint8Array, attributes: FileAttributes): Promise<void> {
  const localPath = path.join(tree.root, relativePath);
  const mode = attributes.mode ?? 0o666;
  if (tree.writesFinalNames(path.dirname(relativePath))) {
    // O_EXCL: only a name no one else has; this file is then this restore's to remove.
    const fd = openSync(localPath, CREATE, mode);
    try {
      fillSync(fd, bytes, attributes);
    } catch (error) {
      await removeName(localPath);
      throw error;
    }
    return;
  }
  const temporary = partialPaths(localPath).data;
  let fd: number;
  try {
    fd = openSync(temporary, CREATE, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // What an interrupted attempt left.
    await removeName(temporary);
    fd = openSync(temporary, CREATE, mode);
  }
  try {
    fillSync(fd, bytes, attributes);
    renameSync(temporary, localPath);
  } catch (error) {
    await removeName(temporary);
    throw error;
  }
}

// Downloads into a short temporary name beside the target (partialPaths) and renames it
// into place, so the runner never sees a half-written file; rename replaces a symlink at
// the target rather than writing through it. Mode and mtime are set on the open file.
// A large download that fails keeps its partial file, and the next attempt continues it
// where it stopped. In a directory this restore created there is nothing to continue.
// Bytes that fail verification are fetched once more, whole; a second mismatch throws an
// IntegrityError (the caller names the key and leaves the object as it is).
export async function downloadFile(request: DownloadRequest, tree: WorkspaceTree): Promise<Downloaded> {
  try {
    return await downloadOnce(request, tree, true);
  } catch (error) {
    if (!(error instanceof IntegrityError) || request.signal.aborted) throw error;
    try {
      return await downloadOnce(request, tree, false);
    } catch (again) {
      if (again instanceof IntegrityError) throw new IntegrityError(`${again.message}, fetched twice`);
      throw again;
    }
  }
}

// The time and mode a restored file gets: the object's own, else the manifest's, else the
// upload's time; an x-amz-meta-mtime that could not be used is reported with what was.
function attributesOf(request: DownloadRequest, response: ObjectRead): { attributes: FileAttributes; unusableMtime?: Downloaded['unusableMtime'] } {
  const metaMtime = response.metadata.mtime;
  const parsedMtime = parseMtime(metaMtime);
  // Manifest entries learned from a listing have no time at all.
  const knownMtime = request.known && !isRemoteOnly(request.known) ? request.known.mtimeMs : undefined;
  const mtimeMs = parsedMtime ?? knownMtime ?? response.lastModified?.getTime() ?? Date.now();
  const known = request.known?.mode;
  const mode = parseMode(response.metadata.mode) ?? (known === undefined ? undefined : known & 0o777);
  const attributes = { mtimeMs, mode };
  if (parsedMtime !== undefined || metaMtime === undefined) return { attributes };
  return { attributes, unusableMtime: { value: metaMtime, used: knownMtime === undefined ? 'upload' : 'manifest' } };
}

interface Written {
  size: number;
  sha256: string;
}

// A small object, read whole into memory and written in one go.
async function writeSmall(request: DownloadRequest, tree: WorkspaceTree, response: ObjectRead, attributes: FileAttributes): Promise<Written> {
  let bytes: Uint8Array;
  try {
    bytes = await response.bytes();
  } catch (error) {
    // A body left unread would hold its keep-alive socket for good.
    response.discard();
    throw error;
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  verify(request, response, bytes.length, sha256);
  await writeWholeFile(tree, request.relativePath, bytes, attributes);
  streamedThrough();
  return { size: bytes.length, sha256 };
}

// The ETag of the version a new partial file holds, beside it: a later attempt continues
// only that version.
async function keepEtag(partial: PartialPaths, offset: number, etag: string | undefined): Promise<void> {
  if (offset > 0) return;
  if (etag) {
    const file = await createFresh(partial.etag, 0o600);
    await file.writeFile(etag).finally(() => file.close());
  } else {
    await removeName(partial.etag);
  }
}

// Written through the handle (not a stream that owns it) so chmod and utimes below apply
// to this very file.
async function fillPartial(
  handle: FileHandle,
  request: DownloadRequest,
  response: ObjectRead,
  offset: number,
  hash: Hash,
  attributes: FileAttributes,
): Promise<Written> {
  for await (const chunk of response.body) {
    if (request.signal.aborted) throw request.signal.reason;
    hash.update(chunk);
    await handle.write(chunk);
    streamedThrough();
  }
  const size = (await handle.stat()).size;
  const expected = totalSize(response, offset);
  if (expected !== undefined && size !== expected) {
    throw new Error(`incomplete download of ${request.objectKey}: ${size} of ${expected} bytes`);
  }
  const sha256 = hash.digest('hex');
  verify(request, response, size, sha256);
  if (attributes.mode !== undefined) await handle.chmod(attributes.mode);
  await handle.utimes(new Date(), fileTime(attributes.mtimeMs));
  return { size, sha256 };
}

// A large object (or the rest of one), streamed into its partial file, which takes the
// final name once whole and verified.
async function writeStreamed(request: DownloadRequest, localPath: string, response: ObjectRead, offset: number, attributes: FileAttributes): Promise<Written> {
  const partial = partialPaths(localPath);
  let written: Written;
  try {
    const hash = offset > 0 ? await hashPartial(partial.data, offset) : createHash('sha256');
    const handle = offset > 0 ? await open(partial.data, APPEND) : await createFresh(partial.data, 0o666);
    try {
      await keepEtag(partial, offset, response.etag);
      written = await fillPartial(handle, request, response, offset, hash, attributes);
    } finally {
      await handle.close();
    }
    await rename(partial.data, localPath);
  } catch (error) {
    response.discard();
    // Wrong bytes are never continued.
    if (error instanceof IntegrityError) await Promise.all([removeName(partial.data), removeName(partial.etag)]);
    throw error;
  }
  await removeName(partial.etag);
  return written;
}

async function downloadOnce(request: DownloadRequest, tree: WorkspaceTree, mayResume: boolean): Promise<Downloaded> {
  const dir = path.dirname(request.relativePath);
  await tree.ensureDir(dir);
  const localPath = path.join(tree.root, request.relativePath);
  const resume = !mayResume || tree.isNew(dir) ? undefined : await resumePoint(partialPaths(localPath));
  const { response, offset } = await fetchObject(request, resume);
  const { attributes, unusableMtime } = attributesOf(request, response);
  const { size, sha256 } =
    offset === 0 && (response.contentLength ?? Infinity) < SMALL_OBJECT
      ? await writeSmall(request, tree, response, attributes)
      : await writeStreamed(request, localPath, response, offset, attributes);
  const entry = { size, mtimeMs: attributes.mtimeMs, mode: attributes.mode, sha256 };
  return unusableMtime === undefined ? { entry } : { entry, unusableMtime };
}
