import { isUtf8 } from 'node:buffer';
import type { Dirent } from 'node:fs';
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { SyncPath } from '../settings.js';
import { keyFor } from './keys.js';
import { FileTable } from '../state/file-table.js';
import type { FileEntry } from '../state/metadata.js';
import { keyName } from './key-names.js';
import type { ExcludeMatcher } from './patterns.js';
import { isPartialName } from './partial-names.js';
import type { FsPath } from '../../shared/fs-path.js';


export interface LocalFile extends FileEntry {
  key: string;
  absolutePath: FsPath;
}

// What a cycle reads of the walk's files: a ReadonlyMap of them satisfies it (tests).
export interface LocalFileMap extends Pick<ReadonlyMap<string, LocalFile>, 'size' | 'has' | 'get' | 'keys' | 'values'> {
  // Each file's stat by key, without the path a LocalFile is given.
  entries(): Iterable<[string, FileEntry]>;
}

/**
 * The files a walk found, kept compactly: their stat in a FileTable, their path derived
 * from the key and the sync path's root, and a LocalFile made only when asked for one: a
 * Map of LocalFile objects with their absolute paths held far more (docs/BENCHMARKS.md).
 */
export class LocalFiles implements LocalFileMap {
  private readonly stats = new FileTable();
  // Sync path name → its directory with a trailing slash.
  private readonly roots = new Map<string, string>();
  // The few files whose path holds a name that is not valid UTF-8: opened by their bytes.
  private readonly bytePaths = new Map<string, Buffer>();

  constructor(private readonly intern: (key: string) => string | undefined = () => undefined) {}

  get size(): number {
    return this.stats.size;
  }

  addRoot(syncPath: SyncPath, root: string): void {
    this.roots.set(syncPath.name, root.endsWith('/') ? root : `${root}/`);
  }

  has(key: string): boolean {
    return this.stats.has(key);
  }

  // A file at a path of bytes that shares its key with a spelled-out name gives way to it.
  add(key: string, absolutePath: FsPath, stat: FileEntry): 'added' | 'duplicate' {
    if (this.stats.has(key)) {
      if (!this.bytePaths.has(key) || typeof absolutePath !== 'string') return 'duplicate';
      this.bytePaths.delete(key);
      this.stats.set(key, stat);
      return 'duplicate';
    }
    this.stats.set(this.intern(key) ?? key, stat);
    if (typeof absolutePath !== 'string') this.bytePaths.set(key, absolutePath);
    return 'added';
  }

  stat(key: string): FileEntry | undefined {
    return this.stats.get(key);
  }

  get(key: string): LocalFile | undefined {
    const stat = this.stats.get(key);
    if (!stat) return undefined;
    const slash = key.indexOf('/');
    const absolutePath = this.bytePaths.get(key) ?? `${this.roots.get(key.slice(0, slash))}${key.slice(slash + 1)}`;
    return { key, absolutePath, ...stat };
  }

  keys(): MapIterator<string> {
    return this.stats.keys();
  }

  entries(): MapIterator<[string, FileEntry]> {
    return this.stats.entries();
  }

  *values(): MapIterator<LocalFile> {
    for (const key of this.stats.keys()) yield this.get(key)!;
  }
}

export interface WalkResult {
  files: LocalFiles;
  // Files found per sync path name; an empty path never triggers deletions.
  counts: Map<string, number>;
  // Directories that could not be read: their files may look deleted, so a cycle with
  // errors propagates no deletions.
  errors: Array<{ path: string; reason: string }>;
  symlinksSkipped: string[];
  // Files that cannot be synced, by key, each with the reason the log names.
  unsyncable: Array<{ path: string; reason: string }>;
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

// Walks each sync path, pruning excluded directories before reading them (node_modules
// is never listed), and following a symlink only when it points at a file inside the
// workspace.
export async function walkSyncPaths(
  workspaceDir: string,
  syncPaths: readonly SyncPath[],
  excludes: ExcludeMatcher,
  onPath?: (syncPath: SyncPath) => void,
  // The record's copy of a key, kept instead of the walk's equal string.
  intern?: (key: string) => string | undefined,
): Promise<WalkResult> {
  const result: WalkResult = { files: new LocalFiles(intern), counts: new Map(), errors: [], symlinksSkipped: [], unsyncable: [] };
  let workspaceReal: string;
  try {
    workspaceReal = await realpath(workspaceDir);
  } catch (error) {
    // The workspace is the pod's volume mount: without it there is nothing to compare,
    // and a cycle that reported success would hide the broken mount.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`workspace directory ${workspaceDir} does not exist: is the volume mounted?`);
    }
    throw error;
  }

  for (const syncPath of syncPaths) {
    onPath?.(syncPath);
    await walkSyncPath(workspaceDir, workspaceReal, syncPath, excludes, result);
  }
  return result;
}

async function walkSyncPath(
  workspaceDir: string,
  workspaceReal: string,
  syncPath: SyncPath,
  excludes: ExcludeMatcher,
  result: WalkResult,
): Promise<void> {
  const root = path.join(workspaceDir, syncPath.localDir);
  const before = result.files.size;
  let rootReal: string | undefined;
  try {
    rootReal = await realpath(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') result.errors.push({ path: root, reason: String(error) });
  }
  if (rootReal !== undefined && !isInside(workspaceReal, rootReal)) {
    result.symlinksSkipped.push(`${syncPath.name}/`);
  } else if (rootReal !== undefined) {
    result.files.addRoot(syncPath, root);
    await walkDir(root, '', syncPath, workspaceReal, excludes, result);
  }
  result.counts.set(syncPath.name, result.files.size - before);
}

function joinPath(dir: FsPath, name: string | Buffer): FsPath {
  if (typeof dir === 'string' && typeof name === 'string') return path.join(dir, name);
  return Buffer.concat([Buffer.from(dir), Buffer.from('/'), Buffer.from(name)]);
}

function displayPath(target: FsPath): string {
  return typeof target === 'string' ? target : keyName(target);
}

// Each directory is listed and its entries stat'ed with the synchronous calls, and the
// event loop gets a turn between directories (signals, metrics). Awaiting a promise per
// lstat cost far more than a synchronous lstat of a cached inode, in promise and
// thread-pool hand-offs: a large part of a no-change cycle (docs/BENCHMARKS.md).
async function walkDir(
  dir: FsPath,
  relativeDir: string,
  syncPath: SyncPath,
  workspaceReal: string,
  excludes: ExcludeMatcher,
  result: WalkResult,
): Promise<void> {
  let entries: Array<Dirent<Buffer>>;
  try {
    // Names as bytes: the default UTF-8 decoding replaces invalid bytes with U+FFFD, and
    // the resulting name opens nothing.
    entries = readdirSync(dir, { withFileTypes: true, encoding: 'buffer' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && relativeDir === '') return;
    result.errors.push({ path: displayPath(dir), reason: code ?? String(error) });
    return;
  }
  const subdirs: Array<[FsPath, string]> = [];
  for (const entry of entries) {
    const raw = entry.name;
    const valid = isUtf8(raw);
    const name = valid ? raw.toString() : keyName(raw);
    const relativePath = relativeDir === '' ? name : `${relativeDir}/${name}`;
    const absolutePath = joinPath(dir, valid ? name : raw);
    if (entry.isDirectory()) {
      if (!excludes.prunesDir(relativePath)) subdirs.push([absolutePath, relativePath]);
      continue;
    }
    // Only hydrate's own leftovers (a download of an object it then skipped) are left
    // out; a user's file that merely ends in the same suffix is synced.
    if (excludes.excludesFile(relativePath) || isPartialName(name)) continue;
    let stat: FileEntry | undefined;
    if (entry.isSymbolicLink()) stat = symlinkEntry(absolutePath, relativePath, syncPath, workspaceReal, result);
    else if (entry.isFile()) stat = fileEntry(absolutePath, result, lstatSync);
    if (!stat) continue;
    const key = keyFor(syncPath, relativePath);
    // A name spelled with "‛E9" and one holding the raw byte 0xE9 share a key: the
    // spelled-out one (valid UTF-8, a string path) keeps it.
    if (result.files.add(key, absolutePath, stat) === 'duplicate') {
      result.unsyncable.push({ path: key, reason: 'another file maps to the same S3 key' });
    }
  }
  await new Promise((resolve) => setImmediate(resolve));
  for (const [absolutePath, relativePath] of subdirs) {
    await walkDir(absolutePath, relativePath, syncPath, workspaceReal, excludes, result);
  }
}

function symlinkEntry(
  absolutePath: FsPath,
  relativePath: string,
  syncPath: SyncPath,
  workspaceReal: string,
  result: WalkResult,
): FileEntry | undefined {
  let target: string;
  try {
    target = realpathSync(absolutePath);
  } catch {
    // Dangling links have nothing to upload.
    return undefined;
  }
  if (!isInside(workspaceReal, target)) {
    result.symlinksSkipped.push(keyFor(syncPath, relativePath));
    return undefined;
  }
  return fileEntry(absolutePath, result, statSync);
}

function fileEntry(absolutePath: FsPath, result: WalkResult, statFn: typeof statSync): FileEntry | undefined {
  try {
    const info = statFn(absolutePath);
    if (!info.isFile()) return undefined;
    return { size: info.size, mtimeMs: info.mtimeMs, mode: info.mode & 0o7777 };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A file removed between listing and stat is simply gone.
    if (code !== 'ENOENT') result.errors.push({ path: displayPath(absolutePath), reason: code ?? String(error) });
    return undefined;
  }
}
