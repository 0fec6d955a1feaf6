import path from 'node:path';
import type { V1Container } from '@kubernetes/client-node';
import type { SyncPath } from '../../shared/agent-env.js';

// The runner's own name for its state directory (`.claude` for Claude, `.gemini` for
// Gemini): the platform's operator sets it on the runner from its agent registry, mounts
// `/app/<dir>` from that subPath of the workspace, and its sync.sh keeps it under `<dir>/`.
export const RUNNER_STATE_DIR = 'RUNNER_STATE_DIR';

// What SYNC_PATHS can carry as a prefix name (parseSyncPaths' rule): one path segment.
const SEGMENT = /^[^/\\\0,=]+$/;

/**
 * `configured` with the runner's state directory in it: a RUNNER_STATE_DIR the paths do not
 * name yet is added, from the subPath the runner mounts it from when there is one, so a
 * runner whose state lives elsewhere than `.claude` and `.gemini` keeps it too.
 */
export function withRunnerStateDir(configured: readonly SyncPath[], containers: V1Container[], stateVolume: string, warnings: string[]): readonly SyncPath[] {
  const dir = runnerStateDir(containers);
  if (dir === undefined || configured.some((p) => p.name === dir)) return configured;
  if (!SEGMENT.test(dir) || dir === '.' || dir === '..' || dir === 'metadata.json' || dir === '.session-storage' || dir.trim() !== dir) {
    warnings.push(`${RUNNER_STATE_DIR} "${dir}" cannot be a sync path: the runner's state there is not saved`);
    return configured;
  }
  const subPath = containers
    .flatMap((c) => (c.volumeMounts ?? []).filter((mount) => mount.name === stateVolume))
    .map((mount) => mount.subPath?.replace(/\/+$/, ''))
    .find((sub) => sub !== undefined && (sub === dir || sub.endsWith(`/${dir}`)) && !sub.includes(',') && sub.trim() === sub);
  return [...configured, { name: dir, localDir: subPath === undefined ? dir : path.posix.normalize(subPath) }];
}

// A plain value on any container (the runner's); a value from a reference cannot be read here.
function runnerStateDir(containers: V1Container[]): string | undefined {
  for (const container of containers) {
    const value = (container.env ?? []).findLast((e) => e.name === RUNNER_STATE_DIR)?.value;
    if (value !== undefined && value !== '') return value.replace(/\/+$/, '');
  }
  return undefined;
}
