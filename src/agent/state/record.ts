import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { isSha256Hex } from '../../shared/checksum.js';
import { FileTable } from './file-table.js';
import type { FileEntry, FileMap } from './metadata.js';
import { parseStreamedMember } from './streamed-member.js';
import { backoffDelayMs } from '../../shared/backoff.js';
import { sleep } from '../../shared/sleep.js';

// The pod-local record, kept in AGENT_STATE_DIR (an EmptyDir shared by init-hydrate and
// state-sync). `hydrated` is true only when a hydrate completed in this pod: it is the
// permission to propagate deletions (data-safety invariant 1). `files` is what the agent
// knows is in S3, with the local stat it had when uploaded or restored.
// `files` is checked entry by entry below: a zod record schema copied every entry (and
// its key) once more, the largest cost of reading a 100,000-file record.
const recordSchema = z.object({
  version: z.literal(1),
  bucket: z.string(),
  prefix: z.string(),
  hydrated: z.boolean(),
  owner: z.string().optional(),
  files: z.custom<Record<string, unknown>>((value) => typeof value === 'object' && value !== null && !Array.isArray(value)),
  unrestored: z.array(z.string()).optional(),
});

const isCount = (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 0;

// The shape of fileEntrySchema (metadata.ts), checked without copying the entry.
function isFileEntry(value: unknown): value is FileEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    isCount(entry.size) &&
    typeof entry.mtimeMs === 'number' &&
    (entry.mode === undefined || isCount(entry.mode)) &&
    (entry.uploadedAt === undefined || typeof entry.uploadedAt === 'number') &&
    (entry.sha256 === undefined || isSha256Hex(entry.sha256)) &&
    (entry.remote === undefined || entry.remote === true)
  );
}


export interface LocalRecord {
  bucket: string;
  prefix: string;
  hydrated: boolean;
  // The pod (lease.ts PodIdentity uid) whose hydrate wrote the record: a re-run of
  // init-hydrate in that pod finds its own record and restores nothing over the runner's work.
  owner?: string;
  files: FileMap;
  // Keys hydrate found in S3 but could not restore (a name no local file can have, a key
  // that is also a directory, an object the server refused): absent locally, never deleted.
  unrestored?: Set<string>;
}

const FILE_NAME = 'record.json';

export async function readRecord(stateDir: string, bucket: string, prefix: string): Promise<LocalRecord | undefined> {
  // `files` is read in batches straight into the table, the rest of the document whole.
  const files = new FileTable();
  let valid = true;
  let rest: string;
  try {
    rest = await parseStreamedMember(createReadStream(path.join(stateDir, FILE_NAME)), 'files', (batch) => {
      for (const key in batch) {
        const entry = batch[key];
        if (isFileEntry(entry)) files.set(key, entry);
        else valid = false;
      }
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(rest);
  } catch {
    return undefined;
  }
  const parsed = recordSchema.safeParse(json);
  // A record for another bucket or session says nothing about this one.
  if (!valid || !parsed.success || parsed.data.bucket !== bucket || parsed.data.prefix !== prefix) return undefined;
  // Whatever JSON spelled "files" so that it was not streamed (escapes in its name).
  for (const key in parsed.data.files) {
    const entry = parsed.data.files[key];
    if (!isFileEntry(entry)) return undefined;
    files.set(key, entry);
  }
  return {
    bucket,
    prefix,
    hydrated: parsed.data.hydrated,
    ...(parsed.data.owner === undefined ? {} : { owner: parsed.data.owner }),
    files,
    ...(parsed.data.unrestored ? { unrestored: new Set(parsed.data.unrestored) } : {}),
  };
}

export async function writeRecord(stateDir: string, record: LocalRecord): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const target = path.join(stateDir, FILE_NAME);
  // A temp name of its own: a writer that does not hold the lock (hydrate, or a
  // process from before locking) must not rename another writer's half-written file.
  const temp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'w');
    try {
      await writeJson(handle, record);
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

// Written in pieces of about this many characters, never as the whole text of the record
// and the object built to stringify it at once (docs/BENCHMARKS.md).
const WRITE_CHUNK = 256 * 1024;

// The same JSON as JSON.stringify of the whole record, entry by entry.
async function writeJson(handle: FileHandle, record: LocalRecord): Promise<void> {
  const head = { version: 1, bucket: record.bucket, prefix: record.prefix, hydrated: record.hydrated, ...(record.owner === undefined ? {} : { owner: record.owner }) };
  let text = `${JSON.stringify(head).slice(0, -1)},"files":{`;
  let first = true;
  for (const [key, entry] of record.files) {
    text += `${first ? '' : ','}${JSON.stringify(key)}:${JSON.stringify(entry)}`;
    first = false;
    if (text.length >= WRITE_CHUNK) {
      await handle.write(text);
      text = '';
    }
  }
  text += '}';
  if (record.unrestored?.size) text += `,"unrestored":${JSON.stringify([...record.unrestored])}`;
  await handle.write(`${text}}`);
}

// Identifies the record file as last written, so a process holding a cached copy can
// tell that another process (`sync --once` beside the sidecar) wrote it since.
export async function recordVersion(stateDir: string): Promise<string | undefined> {
  try {
    const info = await stat(path.join(stateDir, FILE_NAME));
    return `${info.ino}:${info.mtimeMs}:${info.size}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const LOCK_NAME = 'record.lock';
const LOCK_POLL = { baseMs: 50, capMs: 1_000 };
// Locks held by this process, told apart from a stale lock file that carries this pid
// because an earlier run of the container (pid 1 again) died holding it.
const heldHere = new Set<string>();

export interface RecordLock {
  release(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Whether a lock file's holder is gone, and its pid when the file names one. A file
// without a pid yet is being created by its holder: it counts as held.
async function staleHolder(lockPath: string): Promise<{ stale: boolean; pid: number | undefined }> {
  const text = await readFile(lockPath, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return { stale: false, pid: undefined };
  const stale = pid === process.pid ? !heldHere.has(lockPath) : !isAlive(pid);
  return { stale, pid };
}

/**
 * The record's one-writer lock: an exclusive lock file in the state dir holding the
 * owner's pid. A sync cycle holds it from reading the record to writing it, so
 * `sync --once` run beside the sidecar waits for the sidecar's cycle instead of
 * interleaving with it. A lock whose pid is no longer alive is taken over.
 */
export async function lockRecord(stateDir: string, options: { waitMs: number; signal?: AbortSignal }): Promise<RecordLock> {
  await mkdir(stateDir, { recursive: true });
  const lockPath = path.join(stateDir, LOCK_NAME);
  const deadline = Date.now() + options.waitMs;
  for (let attempt = 1; ; attempt += 1) {
    if (options.signal?.aborted) throw new Error(`waiting for ${lockPath} aborted`);
    try {
      const handle = await open(lockPath, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
      } catch (error) {
        // A lock without a pid counts as being created by its holder: one left behind by a
        // failed write (a full state dir) would hold every later cycle off for good.
        await handle.close();
        await rm(lockPath, { force: true });
        throw error;
      }
      await handle.close();
      heldHere.add(lockPath);
      return {
        release: async () => {
          heldHere.delete(lockPath);
          await rm(lockPath, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await staleHolder(lockPath);
    if (holder.stale) {
      // Two waiters that see the same stale lock could both remove it, the second removing
      // the first's fresh lock: with the unique temp names above, the record still never
      // tears, and a stale lock (a killed process) is rare enough to accept that.
      await rm(lockPath, { force: true });
      continue;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const who = holder.pid === undefined ? 'another sync process' : `another sync process (pid ${holder.pid})`;
      throw new Error(`${who} holds ${lockPath}: gave up waiting after ${Math.round(options.waitMs / 1000)}s`);
    }
    await sleep(Math.min(remaining, Math.max(10, backoffDelayMs(attempt, LOCK_POLL))), options.signal);
  }
}

export async function clearRecord(stateDir: string): Promise<void> {
  await rm(path.join(stateDir, FILE_NAME), { force: true });
}
