import * as z from 'zod';

// What the agent knows about one synced file: the local size, mtime and mode at the
// moment it was uploaded or restored. Equal size and mtime mean "unchanged". `remote`
// marks an object known only remotely (listed, never seen in this pod; its mtimeMs is -1
// for agents that read the manifest before the marker existed).
// `uploadedAt` (ms since the epoch) is when the object was last written (uploaded or
// refreshed): the lifecycle rule's clock. Absent for objects written by other tools,
// which therefore count as old and are checked first. `sha256` (hex) is the hash of the
// content the store confirmed at the upload, or hydrate verified at the restore: every
// restore is checked against it (rule 9). Absent for objects written by other tools.
export const fileEntrySchema = z.object({
  size: z.number().int().nonnegative(),
  mtimeMs: z.number(),
  mode: z.number().int().nonnegative().optional(),
  uploadedAt: z.number().optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  remote: z.literal(true).optional(),
});
export type FileEntry = z.infer<typeof fileEntrySchema>;

// What the agent knows per file, by key: a Map (hydrate, tests) or a FileTable (the
// record a sync cycle reads, kept compactly).
export type FileMap = Pick<Map<string, FileEntry>, 'size' | 'get' | 'has' | 'delete' | 'keys' | 'values' | 'entries' | typeof Symbol.iterator> & {
  set(key: string, entry: FileEntry): unknown;
};

export const skippedSchema = z.object({
  path: z.string(),
  size: z.number(),
  reason: z.string(),
});
export type SkippedFile = z.infer<typeof skippedSchema>;

// metadata.json: the upstream fields (lastSync, session, namespace, pathsSynced) plus
// counts, skips and the manifest of synced files, so restores work without ListBucket.
// The platform's sync.sh writes pathsSynced as an integer (how many paths it synced) and
// tools built on it read it so: it is written as an integer. Agent versions up to 0.1.0
// wrote the list of names, which is still read.
export const metadataSchema = z.object({
  lastSync: z.string(),
  session: z.string(),
  namespace: z.string(),
  pathsSynced: z.union([z.number().int().nonnegative(), z.array(z.string())]),
  syncPaths: z.array(z.string()).optional(),
  files: z.number().optional(),
  bytes: z.number().optional(),
  skipped: z.array(skippedSchema).optional(),
  maxSyncSize: z.number().optional(),
  agentVersion: z.string().optional(),
  // The owner's lease generation this manifest completes (lease.ts).
  generation: z.string().optional(),
  manifest: z.record(z.string(), fileEntrySchema).optional(),
});
export type Metadata = z.infer<typeof metadataSchema>;

export const METADATA_KEY = 'metadata.json';

// An object this pod knows only from a listing. Manifests and records written before the
// `remote` marker spelled it mtimeMs -1 (and had no hashes): such an entry still reads so.
// Any other mtime, a negative one of a file from before 1970 included, is a file's.
export function isRemoteOnly(entry: FileEntry): boolean {
  return entry.remote === true || (entry.mtimeMs === -1 && entry.sha256 === undefined);
}

// The entry of an object known only from a listing, with its listed size.
export function remoteOnly(size: number): FileEntry {
  return { size, mtimeMs: -1, remote: true };
}

export function sameFile(a: FileEntry | undefined, b: FileEntry): boolean {
  return a !== undefined && !isRemoteOnly(a) && a.size === b.size && Math.abs(a.mtimeMs - b.mtimeMs) < 1;
}


/**
 * metadata.json as JSON.stringify(metadata, null, 2) writes it, with the manifest taken
 * from the record's map in key order, in pieces of about `chunk` characters: the whole
 * document is never held as one object and one string (docs/BENCHMARKS.md). `keys` are
 * the manifest's keys sorted, for a caller that writes the document more than once.
 */
export function* metadataPieces(
  metadata: Omit<Metadata, 'manifest'>,
  manifest: FileMap,
  chunk = 64 * 1024,
  keys: readonly string[] = [...manifest.keys()].sort(),
): Generator<string> {
  const head = JSON.stringify(metadata, null, 2);
  if (manifest.size === 0) {
    yield `${head.slice(0, -2)},\n  "manifest": {}\n}`;
    return;
  }
  let text = `${head.slice(0, -2)},\n  "manifest": {`;
  let first = true;
  for (const key of keys) {
    const entry = JSON.stringify(manifest.get(key), null, 2).replaceAll('\n', '\n    ');
    text += `${first ? '' : ','}\n    ${JSON.stringify(key)}: ${entry}`;
    first = false;
    if (text.length >= chunk) {
      yield text;
      text = '';
    }
  }
  yield `${text}\n  }\n}`;
}