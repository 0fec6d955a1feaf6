import type { BundleEntry } from '../bundle/bundle-format.js';
import { readBundle } from '../bundle/bundle-reader.js';
import type { AgentLog } from '../log.js';
import type { FileEntry } from '../state/metadata.js';
import type { Listing, RemoteTarget } from '../state/remote.js';

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
  sha256: string;
}

// Whether a bundle entry is the content the manifest names for its key (rule 12): the
// same SHA-256 (the reader checks the bytes against it) and, where a listing shows the
// object, the same ETag and size (the object was not rewritten since the bundle). A key
// the manifest has no hash for (objects other tools wrote, manifests of older agents) is
// fetched: an ETag alone says nothing of the bytes under SSE-KMS, where a pod's stale
// copy passed for the object.
function matchesRemote(source: BundleSource, entry: BundleEntry): boolean {
  const { listing, manifest } = source;
  const known = manifest.get(entry.key)?.sha256;
  if (known === undefined || known !== entry.sha256) return false;
  return listing.kind !== 'listed' || (listing.sizes.get(entry.key) === entry.size && listing.etags?.get(entry.key) === entry.etag);
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
    ({ entry, bytes }) => place(wanted.get(entry.key) as Job, { bytes, mtimeMs: entry.mtimeMs, sha256: entry.sha256, ...(entry.mode === undefined ? {} : { mode: entry.mode }) }),
  );
  const rest = wanted.size - read.used;
  const summary = `restore bundle: ${read.used} of ${wanted.size} small files taken from it, ${rest} fetched per object`;
  if (read.corrupt > 0 || (read.problem !== undefined && read.problem !== 'none found')) {
    source.log.warn(`${summary} (${read.corrupt} corrupt entries${read.problem === undefined ? '' : `; bundle unreadable: ${read.problem}`})`);
  } else {
    source.log.detail(read.problem === undefined ? summary : `restore bundle: none found, ${wanted.size} small files fetched per object`);
  }
}
