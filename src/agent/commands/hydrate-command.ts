import { loadRuntime, TRANSFER_WORKERS } from './runtime.js';
import { hydrate } from '../hydrate/hydrate.js';
import { MissingFiles, reportMissing } from '../hydrate/missing-files.js';
import { seedContinuation } from '../hydrate/seed-continuation.js';
import { createAgentLog } from '../log.js';

export async function runHydrateCommand(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const log = createAgentLog();
  const runtime = loadRuntime(env, log);
  if (!runtime) return 2;
  try {
    const context = { settings: runtime.settings, target: runtime.target, log, workers: TRANSFER_WORKERS, missing: new MissingFiles() };
    if (!(await seedContinuation(context))) return 1;
    const ok = await hydrate(context);
    if (ok) await reportMissing(context.missing, runtime.settings, log);
    return ok ? 0 : 1;
  } finally {
    runtime.close();
  }
}
