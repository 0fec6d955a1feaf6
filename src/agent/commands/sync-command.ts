import { setMaxListeners } from 'node:events';
import { loadRuntime, TRANSFER_WORKERS } from './runtime.js';
import { readLastSuccess, writeLastSuccess } from './last-success.js';
import { readMissingCount } from '../hydrate/missing-files.js';
import { createAgentLog, type AgentLog } from '../log.js';
import type { AgentSettings } from '../settings.js';
import { runSyncLoop } from '../sync/loop.js';
import { watchSyncPaths } from '../sync/change-watcher.js';
import type { SyncMetrics } from './metrics.js';
import { announceSidecar, sidecarRunning } from './sync-now.js';
import { Syncer, type CycleResult } from '../sync/sync.js';
import { unhealthyAfterSeconds } from '../../shared/liveness.js';
import { VERSION } from '../../shared/version.js';

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
// `sync --once` beside the sidecar waits for the sidecar's cycle to finish; a cycle
// uploading a large backlog can take minutes.
const ONCE_LOCK_WAIT_MS = 5 * 60_000;
// The release is one small conditional PUT, sent after the final sync's budget.
const RELEASE_TIMEOUT_MS = 5_000;

export async function runSyncCommand(
  options: { once: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const log = createAgentLog();
  const runtime = loadRuntime(env, log);
  if (!runtime) return 2;
  const { settings } = runtime;
  const syncer = new Syncer({
    settings,
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
      // Without a live sidecar beside it (the migration Job, a pod's last save), a one-off
      // sync is the pod's last word: the session's next pod must not wait out the grace
      // period for it. Beside one (kubectl exec), the sidecar's own final sync releases.
      if (!(await sidecarRunning(settings.stateDir))) await syncer.release(AbortSignal.timeout(RELEASE_TIMEOUT_MS));
      return result.ok ? 0 : 1;
    }
    const metrics = await serveMetrics(settings, log);
    const unannounce = await announceSidecar(settings.stateDir);
    const changes = watchSyncPaths(settings, log);
    const ok = await runSyncLoop({
      intervalSeconds: settings.syncIntervalSeconds,
      finalSyncTimeoutSeconds: settings.finalSyncTimeoutSeconds,
      log,
      cycle: measuredCycle(syncer, metrics, settings, log),
      abortNow: (signal) => process.exit(SIGNAL_EXIT[signal] ?? 1),
      ...(changes ? { changes: changes.trigger } : {}),
    }).finally(async () => {
      await changes?.armed;
      changes?.close();
      return unannounce();
    });
    // Whatever the final sync managed, this pod writes nothing more: its successor,
    // waiting for the session, may start now rather than after the grace period.
    await syncer.release(AbortSignal.timeout(RELEASE_TIMEOUT_MS));
    return ok ? 0 : 1;
  } finally {
    runtime.close();
  }
}

// The sidecar's /metrics and /healthz, where METRICS_PORT asks for them.
async function serveMetrics(settings: AgentSettings, log: AgentLog): Promise<SyncMetrics | undefined> {
  if (settings.metricsPort <= 0) return undefined;
  // prom-client is loaded only where metrics are served: it weighs on every start-up.
  const { serveSyncMetrics, SyncMetrics } = await import('./metrics.js');
  const metrics = new SyncMetrics({
    lastSuccessMs: await readLastSuccess(settings.stateDir),
    hydrateMissingFiles: await readMissingCount(settings.stateDir),
    session: settings.session,
    intervalSeconds: settings.syncIntervalSeconds,
    version: VERSION,
    unhealthyAfterSeconds: unhealthyAfterSeconds(settings.syncIntervalSeconds, settings.unhealthyMinSeconds),
  });
  try {
    await serveSyncMetrics(metrics, settings.metricsPort);
  } catch (error) {
    // Metrics are a signal, not the job: a taken port must not stop the syncing.
    log.warn(`cannot serve metrics on port ${settings.metricsPort}: ${(error as Error).message}`);
  }
  return metrics;
}

// A cycle of the loop, timed and counted in the metrics; a success is kept across restarts.
function measuredCycle(syncer: Syncer, metrics: SyncMetrics | undefined, settings: AgentSettings, log: AgentLog) {
  return async (signal: AbortSignal, final: boolean): Promise<CycleResult> => {
    metrics?.cycleStarted();
    const started = performance.now();
    const result = await syncer.cycle(signal, { final }).catch((error: unknown) => {
      metrics?.record({ ok: false, uploaded: 0, uploadedBytes: 0, deleted: 0, skipped: 0, durationSeconds: (performance.now() - started) / 1000 });
      throw error;
    });
    metrics?.record({ ...result, durationSeconds: (performance.now() - started) / 1000 });
    if (metrics && result.ok) {
      await writeLastSuccess(settings.stateDir, Date.now()).catch((error: unknown) => {
        log.warn(`cannot record the last successful sync in ${settings.stateDir}: ${(error as Error).message}`);
      });
    }
    return result;
  };
}
