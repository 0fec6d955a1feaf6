import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

// The time of the sidecar's last successful cycle, kept in the pod-scoped state dir so a
// restarted state-sync (the liveness probe restarts one that stopped saving) reports the
// real age of the session's last save instead of its own start: otherwise each restart
// would reset session_storage_sync_last_success_timestamp_seconds and the alert on it.
const FILE_NAME = 'last-success';

export async function readLastSuccess(stateDir: string): Promise<number | undefined> {
  try {
    const ms = Number((await readFile(path.join(stateDir, FILE_NAME), 'utf8')).trim());
    return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined;
  } catch {
    // Absent (a new pod) or unreadable: the sidecar's start stands in, as before.
    return undefined;
  }
}

export async function writeLastSuccess(stateDir: string, ms: number): Promise<void> {
  const file = path.join(stateDir, FILE_NAME);
  // Renamed into place, so a restart never reads half a number.
  await writeFile(`${file}.tmp`, `${Math.round(ms)}\n`);
  await rename(`${file}.tmp`, file);
}
