import { unsafeKeyReason } from '../agent/files/keys.js';
import type { FileEntry, Metadata } from '../agent/state/metadata.js';
import { listRemote, readMetadata, type RemoteTarget } from '../agent/state/remote.js';
import { failureOf } from '../agent/store/store.js';
import { ToolError } from './project.js';

export interface SessionFile {
  /** relative to the session prefix, like "artifacts/report.md" */
  key: string;
  size: number;
  /** known from the manifest; a key seen only in the listing has none */
  mtimeMs?: number;
  /** why the key cannot be downloaded (it would escape the destination) */
  refused?: string;
}

export interface SessionFiles {
  files: SessionFile[];
  metadata?: Metadata;
  /** where the names came from */
  source: 'manifest' | 'listing' | 'manifest and listing';
}

export const LIST_FIX = 'grant s3:ListBucket on the bucket (a prefix condition is enough)';

// The same sources hydrate uses: the manifest in metadata.json, which works without
// s3:ListBucket, and the listing where the policy allows it (state written by the
// platform's own sync has no manifest).
export async function readSessionFiles(target: RemoteTarget, signal: AbortSignal): Promise<SessionFiles> {
  const where = `s3://${target.store.bucket}/${target.prefix}`;
  let read;
  try {
    read = await readMetadata(target, signal);
  } catch (error) {
    throw s3Failure(`reading ${where}metadata.json`, error);
  }
  const metadata = read.kind === 'found' ? read.metadata : undefined;
  const manifest: Record<string, FileEntry> | undefined = metadata?.manifest;
  let listing;
  try {
    listing = await listRemote(target, signal);
  } catch (error) {
    throw s3Failure(`listing ${where}`, error);
  }
  if (listing.kind === 'denied' && manifest === undefined) {
    const why =
      read.kind === 'missing'
        ? 'there is no metadata.json'
        : read.kind === 'invalid'
          ? `metadata.json is unreadable (${read.reason})`
          : 'metadata.json has no manifest (written by the platform\'s sync)';
    throw new ToolError(`cannot enumerate ${where}: ${why} and listing is denied: ${LIST_FIX}`);
  }
  const files = new Map<string, SessionFile>();
  if (listing.kind === 'listed') {
    for (const [key, size] of listing.sizes) files.set(key, { key, size });
  }
  for (const [key, entry] of Object.entries(manifest ?? {})) files.set(key, { key, size: entry.size, mtimeMs: entry.mtimeMs });
  for (const file of files.values()) {
    const reason = unsafeKeyReason(file.key);
    if (reason !== undefined) file.refused = reason;
  }
  if (files.size === 0) {
    throw new ToolError(`no saved files at ${where}: the session never synced, or its state was deleted`);
  }
  const source = manifest === undefined ? 'listing' : listing.kind === 'listed' ? 'manifest and listing' : 'manifest';
  return { files: sortFiles([...files.values()]), ...(metadata ? { metadata } : {}), source };
}

function s3Failure(what: string, error: unknown): ToolError {
  const failure = failureOf(error);
  return new ToolError(`${what}: ${failure.kind === 'error' ? failure.detail : `${failure.kind} (${failure.detail})`}`);
}

// Artifacts are what a user comes for; the rest follows in key order.
export function sortFiles(files: SessionFile[]): SessionFile[] {
  const rank = (key: string) => (key.startsWith('artifacts/') ? 0 : 1);
  return files.sort((a, b) => rank(a.key) - rank(b.key) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** "artifacts", "artifacts/", "./artifacts/x", "/workspace/artifacts/x" all name keys below the session. */
export function normalizePath(path: string): string {
  let normalized = path.trim();
  if (normalized.startsWith('/workspace/')) normalized = normalized.slice('/workspace/'.length);
  while (normalized.startsWith('./')) normalized = normalized.slice(2);
  while (normalized.endsWith('/')) normalized = normalized.slice(0, -1);
  return normalized;
}

/** The files at `path` or below it; everything for an empty path. */
export function filesUnder(files: readonly SessionFile[], path: string): SessionFile[] {
  const normalized = normalizePath(path);
  if (normalized === '' || normalized === '.') return [...files];
  return files.filter((file) => file.key === normalized || file.key.startsWith(`${normalized}/`));
}
