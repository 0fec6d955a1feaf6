import { open, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { logName, type AgentLog } from '../log.js';
import type { AgentSettings } from '../settings.js';

/*
 * Files the session's manifest names that hydrate found gone from S3: expired by a bucket
 * lifecycle rule, or deleted behind the agent's back. Hydrate restores the rest and the
 * runner starts without these, so it is said where users look: the last line of
 * init-hydrate's log, its termination message (`kubectl describe pod`, the pod's status)
 * and state-sync's `session_storage_hydrate_missing_files` gauge.
 */
export class MissingFiles {
  private readonly keys = new Set<string>();

  add(key: string): void {
    this.keys.add(key);
  }

  get count(): number {
    return this.keys.size;
  }

  sorted(): string[] {
    return [...this.keys].sort();
  }
}

// The pod-local count state-sync's metrics read (the agent state dir both containers share).
const COUNT_FILE = 'hydrate-missing-files';
// The kubelet keeps at most 4096 bytes of a termination message.
const MESSAGE_LIMIT = 4096;

export function missingMessage(missing: MissingFiles): string {
  const keys = missing.sorted();
  const plural = keys.length !== 1;
  let text =
    `${keys.length} file${plural ? 's' : ''} of this session's saved state ${plural ? 'were' : 'was'} missing from S3 ` +
    `(expired or deleted); the runner started without ${plural ? 'them' : 'it'}: `;
  for (const [index, key] of keys.entries()) {
    const next = `${index === 0 ? '' : ', '}${logName(key)}`;
    // Room kept for the "(and N more)" that may follow.
    if (Buffer.byteLength(text + next) + 24 > MESSAGE_LIMIT) return `${text} (and ${keys.length - index} more)`;
    text += next;
  }
  return text;
}

/**
 * After a successful hydrate: the count for state-sync's gauge (0 included, so a re-run in
 * the same pod replaces an earlier count), and, when files were missing, the termination
 * message and the last log line.
 */
export async function reportMissing(missing: MissingFiles, settings: Pick<AgentSettings, 'stateDir' | 'terminationMessagePath'>, log: AgentLog): Promise<void> {
  const file = path.join(settings.stateDir, COUNT_FILE);
  try {
    await writeFile(`${file}.tmp`, `${missing.count}\n`);
    await rename(`${file}.tmp`, file);
  } catch (error) {
    log.warn(`cannot record the count of missing files in ${settings.stateDir}: ${(error as Error).message}`);
  }
  if (missing.count === 0) return;
  const message = missingMessage(missing);
  await writeTerminationMessage(settings.terminationMessagePath, message);
  log.warn(message);
}

// Only into a file that exists: the kubelet creates it in every container; a hydrate run
// by hand has none and writes nothing outside its directories.
async function writeTerminationMessage(file: string, message: string): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'r+');
  } catch {
    return;
  }
  try {
    await handle.truncate(0);
    await handle.write(message, 0, 'utf8');
  } catch {
    // The message is a courtesy: the log line and the metric still say it.
  } finally {
    await handle.close();
  }
}

/** How many files the pod's hydrate found missing; undefined before any hydrate reported. */
export async function readMissingCount(stateDir: string): Promise<number | undefined> {
  try {
    const count = Number((await readFile(path.join(stateDir, COUNT_FILE), 'utf8')).trim());
    return Number.isSafeInteger(count) && count >= 0 ? count : undefined;
  } catch {
    return undefined;
  }
}
