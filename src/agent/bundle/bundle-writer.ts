import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import {
  BUNDLE_FILE_LIMIT,
  BUNDLE_KEY,
  BUNDLE_TOTAL_LIMIT,
  bundleLength,
  entryHeader,
  entryLength,
  fillerHeader,
  type BundleEntry,
} from './bundle-format.js';
import { resolveKey } from '../files/keys.js';
import type { AgentLog } from '../log.js';
import { isRemoteOnly, sameFile, type FileMap } from '../state/metadata.js';
import { listRemote, type RemoteTarget } from '../state/remote.js';
import type { AgentSettings } from '../settings.js';
import { formatBytes } from '../../shared/size.js';
import { describeFailure } from '../store/store.js';
import { streamedThrough } from '../../shared/gc-pacing.js';

export interface BundleWriteContext {
  settings: Pick<AgentSettings, 'syncPaths' | 'workspaceDir'>;
  target: RemoteTarget;
  log: AgentLog;
}

export interface BundleWritten {
  files: number;
  bytes: number;
  // Files left out because the time or the size cap ran out.
  truncated: boolean;
  seconds: number;
}

// The bundle's share of what is left of the final sync's budget, and its most: the grace
// period is the data's, and a bundle cut short costs the next pod a little time only.
const BUNDLE_BUDGET_SHARE = 0.5;
const BUNDLE_MAX_MS = 30_000;

export function bundleTimeLimitMs(budgetMs: number, elapsedMs: number): number {
  return Math.max(0, Math.floor(Math.min(BUNDLE_MAX_MS, (budgetMs - elapsedMs) * BUNDLE_BUDGET_SHARE)));
}

// Below this, not even a small bundle would go up.
const MIN_TIME_MS = 1_000;
// Files read ahead of the tar at once: enough to hide the disk, few enough that the
// buffers stay small (at most this many times BUNDLE_FILE_LIMIT).
const READ_AHEAD = 16;
// The share of the time limit spent adding files; the rest is for the upload to finish.
const FILL_SHARE = 0.6;
const READ = constants.O_RDONLY | constants.O_NOFOLLOW;

interface Candidate {
  localPath: string;
  // The entry as the record and the listing know it.
  facts: BundleEntry;
  // Its bytes in the tar, known before the file is read.
  length: number;
}

// Zeros the tail of a bundle closed early is padded with, up to its announced length.
const ZEROS = Buffer.alloc(64 * 1024);

// The bytes of a file exactly as the record knows it (same size and mtime, the test sync
// itself trusts), or undefined: a file changed or replaced since its upload stays out.
async function readAsRecorded(candidate: Candidate): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(candidate.localPath, READ);
  } catch {
    return undefined;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || !sameFile(candidate.facts, info)) return undefined;
    const bytes = await handle.readFile();
    return bytes.length === candidate.facts.size ? bytes : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

// A local copy goes in only if its bytes are the content the store confirmed (the
// record's hash): hydrate uses an entry only when it has the manifest's hash (rule 12).
function matchesObject(candidate: Candidate, bytes: Buffer): boolean {
  return createHash('sha256').update(bytes).digest('hex') === candidate.facts.sha256;
}

async function candidatesOf(context: BundleWriteContext, files: FileMap, signal: AbortSignal): Promise<Candidate[]> {
  const { settings, target } = context;
  const listing = await listRemote(target, signal, { etags: true });
  const candidates: Candidate[] = [];
  for (const [key, entry] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    // Known only remotely: this pod has no copy to put in. Without a hash there is
    // nothing to prove a copy current by.
    if (isRemoteOnly(entry) || entry.size > BUNDLE_FILE_LIMIT || entry.sha256 === undefined) continue;
    const resolution = resolveKey(key, settings.syncPaths, settings.workspaceDir);
    if (resolution.kind !== 'file') continue;
    let etag: string | undefined;
    if (listing.kind === 'listed') {
      // An object the listing lacks or sizes differently is not what the record says.
      etag = listing.etags?.get(key);
      if (etag === undefined || listing.sizes.get(key) !== entry.size) continue;
    }
    const facts = { key, size: entry.size, mtimeMs: entry.mtimeMs, sha256: entry.sha256, ...(etag === undefined ? {} : { etag }), ...(entry.mode === undefined ? {} : { mode: entry.mode }) };
    candidates.push({ localPath: resolution.localPath, facts, length: entryLength(facts) });
  }
  return candidates;
}

// The candidates whose files fit under BUNDLE_TOTAL_LIMIT, in order.
function planned(candidates: Candidate[]): { entries: Candidate[]; truncated: boolean } {
  let bytes = 0;
  for (const [index, candidate] of candidates.entries()) {
    bytes += candidate.facts.size;
    if (bytes > BUNDLE_TOTAL_LIMIT) return { entries: candidates.slice(0, index), truncated: true };
  }
  return { entries: candidates, truncated: false };
}

// The tar as it is packed, then zeros up to the announced length (after an archive closed
// early, which any tar reader ends at). More bytes than announced fail the upload.
async function* announced(pack: AsyncIterable<Buffer>, length: number): AsyncGenerator<Buffer> {
  let sent = 0;
  for await (const chunk of pack) {
    sent += chunk.length;
    if (sent > length) throw new Error(`restore bundle longer than the ${length} bytes announced`);
    yield chunk;
  }
  while (sent < length) {
    const zeros = ZEROS.subarray(0, Math.min(ZEROS.length, length - sent));
    sent += zeros.length;
    yield zeros;
  }
}

function packed(pack: tar.Pack, header: ReturnType<typeof entryHeader>, content: Buffer): Promise<void> {
  // Resolves once the tar's reader has taken the bytes: memory stays bounded.
  return new Promise<void>((resolve, reject) => pack.entry(header, content, (error) => (error ? reject(error) : resolve())));
}

interface Filled {
  written: number;
  bytes: number;
  // Cut short by the fill's time.
  truncated: boolean;
}

// Packs the planned entries until `fillUntil`, then closes the tar. A file changed since
// the record keeps its place as filler, as the length is announced.
async function fill(pack: tar.Pack, entries: readonly Candidate[], fillUntil: number): Promise<Filled> {
  const filled: Filled = { written: 0, bytes: 0, truncated: false };
  for (let start = 0; start < entries.length; start += READ_AHEAD) {
    if (performance.now() > fillUntil) {
      filled.truncated = true;
      break;
    }
    // The listing's parse and each batch's file buffers are garbage by now, promoted
    // under --max-semi-space-size=1: collected on the way (rate-limited), they do not
    // pile up on top of the record for the whole fill.
    streamedThrough();
    const batch = entries.slice(start, start + READ_AHEAD);
    const contents = await Promise.all(batch.map(readAsRecorded));
    for (const [index, candidate] of batch.entries()) {
      const content = contents[index];
      if (content === undefined || !matchesObject(candidate, content)) {
        const filler = fillerHeader(candidate.length);
        await packed(pack, filler, Buffer.alloc(filler.size));
        continue;
      }
      await packed(pack, entryHeader(candidate.facts), content);
      filled.written += 1;
      filled.bytes += content.length;
    }
  }
  pack.finalize();
  return filled;
}

/**
 * Writes the restore bundle from the final sync's record, within `timeLimitMs`: files
 * are added for FILL_SHARE of it and the tar closed early (truncated) when that runs out;
 * the upload is aborted at the limit, leaving the previous bundle (whose stale entries
 * hydrate does not use). Never throws: the data and metadata.json are already up, and the
 * bundle only saves the next pod time. Returns what went up, or undefined.
 */
export async function writeBundle(
  context: BundleWriteContext,
  files: FileMap,
  signal: AbortSignal,
  timeLimitMs: number,
): Promise<BundleWritten | undefined> {
  const { target, log } = context;
  if (timeLimitMs < MIN_TIME_MS) {
    log.warn('restore bundle not written (no time left in the final sync budget): the next pod restores file by file');
    return undefined;
  }
  const started = performance.now();
  const limited = AbortSignal.any([signal, AbortSignal.timeout(Math.ceil(timeLimitMs))]);
  const pack = tar.pack();
  let plan: { entries: Candidate[]; truncated: boolean };
  let filled: Filled;
  try {
    plan = planned(await candidatesOf(context, files, limited));
    const length = bundleLength(plan.entries.map((candidate) => candidate.length));
    // One streamed PUT of a length known up front: no part buffers, whatever the size.
    const upload = target.store.put(target.prefix + BUNDLE_KEY, Readable.from(announced(pack as AsyncIterable<Buffer>, length)), { contentLength: length }, limited);
    // A failed upload stops the producer too: it would wait for a reader forever.
    upload.catch(() => pack.destroy());
    [filled] = await Promise.all([fill(pack, plan.entries, started + timeLimitMs * FILL_SHARE), upload]);
  } catch (error) {
    pack.destroy();
    const why = limited.aborted && !signal.aborted ? `it did not fit in ${(timeLimitMs / 1000).toFixed(1)}s` : describeFailure(error);
    log.warn(`restore bundle not written (${why}): the next pod restores file by file`);
    return undefined;
  }
  const { written, bytes } = filled;
  const truncated = plan.truncated || filled.truncated;
  const seconds = (performance.now() - started) / 1000;
  log.info(
    `Restore bundle written: ${written} files, ${formatBytes(bytes)}${truncated ? ' (truncated: the rest restores file by file)' : ''}, ${seconds.toFixed(2)}s`,
  );
  return { files: written, bytes, truncated, seconds };
}
