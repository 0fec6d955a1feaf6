import { setMaxListeners } from 'node:events';
import { loadRuntime, TRANSFER_WORKERS } from './context.js';
import { createAgentLog } from './log.js';
import { runSyncLoop } from './loop.js';
import { Syncer } from './sync.js';

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
// `sync --once` beside the sidecar waits for the sidecar's cycle to finish; a cycle
// uploading a large backlog can take minutes.
const ONCE_LOCK_WAIT_MS = 5 * 60_000;

export async function runSyncCommand(
  options: { once: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const log = createAgentLog();
  const runtime = loadRuntime(env, log);
  if (!runtime) return 2;
  const syncer = new Syncer({
    settings: runtime.settings,
    target: runtime.target,
    log,
    workers: TRANSFER_WORKERS,
    lockWaitMs: options.once ? ONCE_LOCK_WAIT_MS : undefined,
  });
  try {
    if (options.once) {
      const signal = new AbortController().signal;
      setMaxListeners(0, signal);
      const result = await syncer.cycle(signal, { final: true });
      return result.ok ? 0 : 1;
    }
    const ok = await runSyncLoop({
      intervalSeconds: runtime.settings.syncIntervalSeconds,
      finalSyncTimeoutSeconds: runtime.settings.finalSyncTimeoutSeconds,
      log,
      cycle: (signal, final) => syncer.cycle(signal, { final }),
      abortNow: (signal) => process.exit(SIGNAL_EXIT[signal] ?? 1),
    });
    return ok ? 0 : 1;
  } finally {
    runtime.client.destroy();
  }
}
