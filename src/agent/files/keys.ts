import path from 'node:path';
import type { SyncPath } from '../settings.js';

export type KeyResolution =
  | { kind: 'file'; key: string; syncPath: SyncPath; localPath: string }
  | { kind: 'unmapped'; key: string }
  | { kind: 'refused'; key: string; reason: string };

// Why a key (relative to the session prefix) cannot be written locally, or undefined.
// Keys come from S3 and from metadata.json, which anyone with write access to the bucket
// controls, so nothing in them is trusted to stay inside the workspace.
export function unsafeKeyReason(key: string): string | undefined {
  if (key === '') return 'empty key';
  if (key.includes('\0')) return 'contains a NUL byte';
  if (key.startsWith('/')) return 'absolute path';
  if (/^[a-zA-Z]:/.test(key)) return 'absolute path';
  const segments = key.split('/');
  if (segments.some((segment) => segment === '..')) return 'contains ".."';
  if (segments.some((segment) => segment === '.' || segment === '')) return 'contains an empty or "." segment';
  return undefined;
}

export function resolveKey(key: string, syncPaths: readonly SyncPath[], workspaceDir: string): KeyResolution {
  const reason = unsafeKeyReason(key);
  if (reason !== undefined) return { kind: 'refused', key, reason };
  const slash = key.indexOf('/');
  if (slash < 0) return { kind: 'unmapped', key };
  const name = key.slice(0, slash);
  const syncPath = syncPaths.find((candidate) => candidate.name === name);
  if (!syncPath) return { kind: 'unmapped', key };
  const root = path.resolve(workspaceDir, syncPath.localDir);
  const localPath = path.resolve(root, key.slice(slash + 1));
  const relative = path.relative(path.resolve(workspaceDir), localPath);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    return { kind: 'refused', key, reason: 'resolves outside the workspace' };
  }
  return { kind: 'file', key, syncPath, localPath };
}

// NAME_MAX of Linux file systems, in bytes (UTF-8), per path component.
const NAME_MAX = 255;

// Whether a local relative path has a component no file system here can create: S3 keys
// allow it, so it is reported per key rather than failing the restore.
export function longComponent(relativePath: string): boolean {
  return relativePath.split(path.sep).some((component) => Buffer.byteLength(component) > NAME_MAX);
}

export function keyFor(syncPath: SyncPath, relativePath: string): string {
  return `${syncPath.name}/${relativePath}`;
}
