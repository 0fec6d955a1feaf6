import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AGENT_ENV, AGENT_STATE_DIR } from '../../shared/agent-env.js';

// `session-storage sync-now`, run beside the sidecar (kubectl exec POD -c state-sync):
// asks the running `sync` loop for a cycle with SIGUSR1 instead of running a second
// syncer. The loop writes its pid here once it handles the signal: without a handler,
// SIGUSR1 would open Node's inspector in the sidecar, so sync-now signals only a process
// that announced itself.
const PID_FILE = 'state-sync.pid';

const stateDirOf = (env: NodeJS.ProcessEnv) => path.resolve(env[AGENT_ENV.AGENT_STATE_DIR]?.trim() || AGENT_STATE_DIR);

/**
 * Called by the sync command around its loop; the returned function removes the
 * announcement. A listener is held for as long as the pid file exists, so a signal sent
 * before the loop installs its own (or after it removed it) is ignored, never the inspector.
 */
export async function announceSidecar(stateDir: string): Promise<() => Promise<void>> {
  const hold = () => undefined;
  process.on('SIGUSR1', hold);
  await mkdir(stateDir, { recursive: true });
  const file = path.join(stateDir, PID_FILE);
  await writeFile(file, `${process.pid}\n`);
  return async () => {
    await rm(file, { force: true });
    process.off('SIGUSR1', hold);
  };
}

/** Whether a `sync` loop announced itself in this state dir and is still alive. */
export async function sidecarRunning(stateDir: string): Promise<boolean> {
  const pid = Number.parseInt(await readFile(path.join(stateDir, PID_FILE), 'utf8').catch(() => ''), 10);
  if (!Number.isInteger(pid) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function runSyncNow(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const file = path.join(stateDirOf(env), PID_FILE);
  let pid: number;
  try {
    pid = Number.parseInt(await readFile(file, 'utf8'), 10);
  } catch {
    process.stderr.write(`error: no running state-sync announced itself in ${file}: run this in the state-sync container (kubectl exec POD -c state-sync -- ...)\n`);
    return 1;
  }
  try {
    process.kill(pid, 'SIGUSR1');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    process.stderr.write(`error: cannot signal state-sync (pid ${pid}): ${code === 'ESRCH' ? 'it is not running (stale pid file)' : code}\n`);
    return 1;
  }
  process.stdout.write(`asked state-sync (pid ${pid}) for a sync cycle now; it logs "Received SIGUSR1: syncing now" and the cycle's result\n`);
  return 0;
}
