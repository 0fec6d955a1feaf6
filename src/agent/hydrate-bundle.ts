import type { BundleEntry } from './bundle-format.js';
import { readBundle } from './bundle-reader.js';
import type { AgentLog } from './log.js';
import type { FileEntry } from './metadata.js';
import type { Listing, RemoteTarget } from './remote.js';

export interface BundleSource {
  target: RemoteTarget;
  listing: Listing;
  manifest: ReadonlyMap<string, FileEntry>;
  signal: AbortSignal;
  log: AgentLog;
}

export interface BundledFile {
  bytes: Buffer;
  mtimeMs: number;
  mode?: number;
}

// Whether a bundle entry is the object hydrate would fetch. With a listing: the same
// ETag and size, so the same bytes S3 holds now. Without one (no s3:ListBucket) the
// manifest is all hydrate knows of the object: the same size, mtime and mode as there.
function matchesRemote(source: BundleSource, entry: BundleEntry): boolean {
  const { listing, manifest } = source;
  if (listing.kind === 'listed') {
    const etag = listing.etags?.get(entry.key);
    return etag !== undefined && entry.etag === etag && listing.sizes.get(entry.key) === entry.size;
  }
  const known = manifest.get(entry.key);
  return known !== undefined && known.size === entry.size && Math.abs(known.mtimeMs - entry.mtimeMs) < 1 && known.mode === entry.mode;
}

/**
 * Hands `place` the bundle's verified copy of each wanted object (each at most once).
 * Returns when the bundle has been read; the jobs `place` did not complete are the
 * caller's to fetch per object.
 */
export async function restoreFromBundle<Job>(
  source: BundleSource,
  wanted: ReadonlyMap<string, Job>,
  place: (job: Job, file: BundledFile) => Promise<void>,
): Promise<void> {
  const taken = new Set<string>();
  const read = await readBundle(
    source.target,
    source.signal,
    (entry) => {
      if (!wanted.has(entry.key) || taken.has(entry.key) || !matchesRemote(source, entry)) return false;
      taken.add(entry.key);
      return true;
    },
    ({ entry, bytes }) => place(wanted.get(entry.key) as Job, { bytes, mtimeMs: entry.mtimeMs, ...(entry.mode === undefined ? {} : { mode: entry.mode }) }),
  );
  const rest = wanted.size - read.used;
  const summary = `restore bundle: ${read.used} of ${wanted.size} small files taken from it, ${rest} fetched per object`;
  if (read.corrupt > 0 || (read.problem !== undefined && read.problem !== 'none found')) {
    source.log.warn(`${summary} (${read.corrupt} corrupt entries${read.problem === undefined ? '' : `; bundle unreadable: ${read.problem}`})`);
  } else {
    source.log.detail(read.problem === undefined ? summary : `restore bundle: none found, ${wanted.size} small files fetched per object`);
  }
}
