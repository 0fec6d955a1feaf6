import type { Header } from 'tar-stream';
import { AGENT_OBJECTS_PREFIX } from '../state/remote.js';

/*
 * The restore bundle: one uncompressed tar (pax) beside the session's objects holding
 * copies of its small files, written by the final sync so the next pod's hydrate reads
 * thousands of files in one GET. The objects stay the truth: hydrate uses an entry only
 * where it matches the object (ETag and size from the listing, or the manifest's size,
 * mtime and mode without s3:ListBucket) and its SHA-256 verifies; anything else is
 * fetched per object. Any tar tool lists it (`tar tvf`); the per-entry facts are pax
 * records.
 */

// Relative to the session prefix. Under the agent's own prefix, which no sync path can be
// named and which listings skip: never synced, restored, adopted or deleted as a file.
export const BUNDLE_KEY = `${AGENT_OBJECTS_PREFIX}restore-bundle.tar`;
// Files up to this size go into the bundle. Larger files are few, and per-object GETs in
// parallel already move them at the link's speed; small ones cost a request each.
export const BUNDLE_FILE_LIMIT = 256 * 2 ** 10;
// The file bytes one bundle holds at most (the tar adds about 1.5 KiB per file): what
// the final sync uploads in its grace period and what hydrate streams. Files past the cap
// are restored per object.
export const BUNDLE_TOTAL_LIMIT = 128 * 2 ** 20;

const PAX_ETAG = 'SESSION_STORAGE.etag';
const PAX_SHA256 = 'SESSION_STORAGE.sha256';
const PAX_MTIME_MS = 'SESSION_STORAGE.mtime_ms';
const PAX_MODE = 'SESSION_STORAGE.mode';

export interface BundleEntry {
  // The object key, relative to the session prefix (the tar entry's path).
  key: string;
  size: number;
  // The object's ETag when the bundle was written (absent without s3:ListBucket).
  etag?: string;
  // Of the file's bytes, hex.
  sha256: string;
  mtimeMs: number;
  mode?: number;
}

// tar-stream writes the entry's path as a pax record itself, so names of any length (and
// UTF-8) survive.
export function entryHeader(entry: BundleEntry): Partial<Header> & Pick<Header, 'name'> {
  const pax: Record<string, string> = { [PAX_SHA256]: entry.sha256, [PAX_MTIME_MS]: String(entry.mtimeMs) };
  if (entry.etag !== undefined) pax[PAX_ETAG] = entry.etag;
  if (entry.mode !== undefined) pax[PAX_MODE] = (entry.mode & 0o7777).toString(8);
  return {
    name: entry.key,
    size: entry.size,
    type: 'file',
    mode: (entry.mode ?? 0o644) & 0o7777,
    mtime: new Date(Math.floor(entry.mtimeMs)),
    pax,
  };
}

const BLOCK = 512;
// tar-stream closes an archive with two zero blocks.
const END_OF_ARCHIVE = 2 * BLOCK;
const SHA256_PLACEHOLDER = '0'.repeat(64);

function blocks(bytes: number): number {
  return Math.ceil(bytes / BLOCK) * BLOCK;
}

// A pax record as tar-stream writes it, "LENGTH key=value\n", where LENGTH counts itself.
function paxRecordLength(key: string, value: string): number {
  const rest = Buffer.byteLength(` ${key}=${value}\n`);
  let digits = String(rest).length;
  if (rest + digits >= 10 ** digits) digits += 1;
  return rest + digits;
}

/**
 * The bytes an entry takes in the bundle (pax header, its records, the ustar header, the
 * padded content), known before its file is read: the SHA-256 is always 64 hex digits. The
 * bundle goes up as one PUT of a length announced before the first byte.
 */
export function entryLength(entry: Omit<BundleEntry, 'sha256'>): number {
  const header = entryHeader({ ...entry, sha256: SHA256_PLACEHOLDER });
  let records = paxRecordLength('path', header.name);
  for (const [key, value] of Object.entries(header.pax ?? {})) records += paxRecordLength(key, value);
  return BLOCK + blocks(records) + BLOCK + blocks(entry.size);
}

export function bundleLength(entryLengths: Iterable<number>): number {
  let total = END_OF_ARCHIVE;
  for (const length of entryLengths) total += length;
  return total;
}

/**
 * The stand-in for an entry whose file changed or went between the plan and its read:
 * the same length, no records of this agent's, so hydrate skips it (and any tar lists it
 * under this name). Its content is `length - 512` zero bytes.
 */
export function fillerHeader(length: number): Partial<Header> & Pick<Header, 'name' | 'size'> {
  return { name: `${AGENT_OBJECTS_PREFIX}left-out`, size: length - BLOCK, type: 'file', mode: 0o644, mtime: new Date(0) };
}

const SHA256 = /^[0-9a-f]{64}$/;
const MODE = /^[0-7]{1,4}$/;

// The entry a header describes, or undefined for anything this agent did not write that
// way (another entry type, missing or malformed records): such entries are skipped.
export function parseEntryHeader(header: Header): BundleEntry | undefined {
  const pax = (header.pax ?? {}) as Record<string, string | undefined>;
  const sha256 = pax[PAX_SHA256];
  const mtimeMs = Number(pax[PAX_MTIME_MS]);
  const mode = pax[PAX_MODE];
  const size = header.size;
  if (header.type !== 'file' || sha256 === undefined || !SHA256.test(sha256) || !Number.isFinite(mtimeMs)) return undefined;
  if (mode !== undefined && !MODE.test(mode)) return undefined;
  return {
    key: header.name,
    size,
    sha256,
    mtimeMs,
    ...(pax[PAX_ETAG] === undefined ? {} : { etag: pax[PAX_ETAG] }),
    ...(mode === undefined ? {} : { mode: Number.parseInt(mode, 8) }),
  };
}
