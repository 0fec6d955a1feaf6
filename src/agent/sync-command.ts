import { setMaxListeners } from 'node:events';
import { loadRuntime, TRANSFER_WORKERS } from './context.js';
import { createAgentLog } from './log.js';
import { runSyncLoop } from './loop.js';
import { Syncer } from './sync.js';

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export async function runSyncCommand(
  options: { once: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const log = createAgentLog();
  const runtime = loadRuntime(env, log);
  if (!runtime) return 2;
  const syncer = new Syncer({ settings: runtime.settings, target: runtime.target, log, workers: TRANSFER_WORKERS });
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
