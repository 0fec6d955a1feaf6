import { lstat } from 'node:fs/promises';
import type { AgentSettings } from '../settings.js';
import { resolveKey } from '../files/keys.js';
import type { PodIdentity } from '../state/lease.js';
import { clearRecord, readRecord, type LocalRecord } from '../state/record.js';
import type { RemoteTarget } from '../state/remote.js';

/**
 * This pod's record of an earlier complete hydrate of the session (init-hydrate run again
 * over the surviving workspace, DESIGN rule 11), or undefined. Any other record is
 * cleared: a hydrate that then fails leaves none, so sync can never delete on the strength
 * of a partial restore.
 */
export async function rerunRecord(stateDir: string, target: RemoteTarget, identity: PodIdentity): Promise<LocalRecord | undefined> {
  const earlier = await readRecord(stateDir, target.store.bucket, target.prefix);
  const rerun = earlier?.hydrated === true && earlier.owner === identity.uid ? earlier : undefined;
  if (!rerun) await clearRecord(stateDir);
  return rerun;
}

// Of the keys that map to a file of a sync path, those whose local file exists, whatever
// it is: in a re-run the runner's files stay as they are.
export async function presentKeys(keys: Iterable<string>, settings: Pick<AgentSettings, 'syncPaths' | 'workspaceDir'>): Promise<Set<string>> {
  const present = new Set<string>();
  for (const key of keys) {
    const resolution = resolveKey(key, settings.syncPaths, settings.workspaceDir);
    if (resolution.kind !== 'file') continue;
    const exists = await lstat(resolution.localPath).then(
      () => true,
      () => false,
    );
    if (exists) present.add(key);
  }
  return present;
}
