import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BUNDLE_FILE_LIMIT, BUNDLE_KEY, parseEntryHeader, type BundleEntry } from './bundle-format.js';
import type { RemoteTarget } from '../state/remote.js';
import { describeFailure, isStoreError } from '../store/store.js';
import { streamedThrough } from '../../shared/gc-pacing.js';

export interface BundleFile {
  entry: BundleEntry;
  bytes: Buffer;
}

export interface BundleRead {
  // Entries handed to `use`.
  used: number;
  // Entries whose bytes did not match their SHA-256.
  corrupt: number;
  // Why the bundle was not read to its end, if it was not.
  problem?: string;
}

// Files being written while the next entries stream in.
const PARALLEL_WRITES = 16;

/**
 * Streams the restore bundle once. Each entry `accept` takes (the caller checks it
 * against the object) and whose bytes match its SHA-256 goes to `use`, which must not
 * throw; everything else is skipped. A missing, denied, truncated or garbled bundle ends
 * the read with a `problem` and never throws: what was not used is restored per object.
 * Memory stays at PARALLEL_WRITES entries of at most BUNDLE_FILE_LIMIT bytes.
 */
export async function readBundle(
  target: RemoteTarget,
  signal: AbortSignal,
  accept: (entry: BundleEntry) => boolean,
  use: (file: BundleFile) => Promise<void>,
): Promise<BundleRead> {
  const result: BundleRead = { used: 0, corrupt: 0 };
  let response;
  try {
    response = await target.store.get(target.prefix + BUNDLE_KEY, {}, signal);
  } catch (error) {
    // Without s3:ListBucket a missing bundle answers 403 like a denied one: either way
    // there is none to use.
    result.problem = isStoreError(error, 'not-found', 'access-denied') ? 'none found' : describeFailure(error);
    return result;
  }
  const extract = tar.extract();
  // Settles either way; its error is also the iterator's.
  const piped = pipeline(Readable.from(response.body), extract).catch(() => undefined);
  const writing = new Set<Promise<void>>();
  try {
    for await (const stream of extract) {
      const entry = parseEntryHeader(stream.header);
      streamedThrough();
      if (entry === undefined || entry.size > BUNDLE_FILE_LIMIT || !accept(entry)) {
        stream.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      if (bytes.length !== entry.size || createHash('sha256').update(bytes).digest('hex') !== entry.sha256) {
        result.corrupt += 1;
        continue;
      }
      result.used += 1;
      const task: Promise<void> = use({ entry, bytes }).finally(() => writing.delete(task));
      writing.add(task);
      if (writing.size >= PARALLEL_WRITES) await Promise.race(writing);
    }
  } catch (error) {
    // The source's own error when the GET's body failed; a parse error otherwise.
    result.problem = describeFailure(error);
    extract.destroy();
  } finally {
    await Promise.all(writing);
    response.discard();
    await piped;
  }
  return result;
}
