import { loadRuntime, TRANSFER_WORKERS } from './runtime.js';
import { hydrate } from '../hydrate/hydrate.js';
import { createAgentLog } from '../log.js';

export async function runHydrateCommand(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const log = createAgentLog();
  const runtime = loadRuntime(env, log);
  if (!runtime) return 2;
  try {
    const ok = await hydrate({ settings: runtime.settings, target: runtime.target, log, workers: TRANSFER_WORKERS });
    return ok ? 0 : 1;
  } finally {
    runtime.close();
  }
}
