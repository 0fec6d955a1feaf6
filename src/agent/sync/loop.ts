import { setMaxListeners } from 'node:events';
import type { AgentLog } from '../log.js';
import { backoffDelayMs, type BackoffPolicy } from '../../shared/backoff.js';
import { sleep } from '../../shared/sleep.js';
import type { ChangeTrigger } from './change-debounce.js';
import type { CycleResult } from './sync.js';

export interface SyncLoopOptions {
  intervalSeconds: number;
  finalSyncTimeoutSeconds: number;
  log: AgentLog;
  cycle: (signal: AbortSignal, final: boolean) => Promise<CycleResult>;
  // Called on the second signal: the operator wants out now.
  abortNow: (signal: NodeJS.Signals) => void;
  signals?: NodeJS.Signals[];
  // Changes to the sync paths, which end a wait after a successful cycle (never a backoff).
  changes?: ChangeTrigger;
}

// After a failed cycle: up to 1 s, doubling up to 5 min, jittered (see backoff.ts).
export const SYNC_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 300_000 };

// Runs cycles every interval, and sooner when changes fall due, until SIGTERM/SIGINT. The
// first signal starts the final-sync budget and the final cycle at once: a regular cycle
// still running is aborted (a hung request must not eat the budget; the final cycle's walk
// picks up all it had not uploaded), and a wait ends. The final cycle is aborted when the
// budget runs out. A second signal aborts immediately.
export async function runSyncLoop(options: SyncLoopOptions): Promise<boolean> {
  const { log } = options;
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const wake = new AbortController();
  const budget = new AbortController();
  // Every in-flight request of a cycle listens on the budget signal.
  setMaxListeners(0, budget.signal);
  let stopping = false;
  let budgetTimer: NodeJS.Timeout | undefined;

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.error(`received ${signal} again: aborting the final sync`);
      budget.abort();
      options.abortNow(signal);
      return;
    }
    stopping = true;
    log.info(`Received ${signal}: running the final sync (budget ${options.finalSyncTimeoutSeconds}s)`);
    budgetTimer = setTimeout(() => budget.abort(), options.finalSyncTimeoutSeconds * 1000);
    wake.abort();
  };
  for (const signal of signals) process.on(signal, onSignal);
  // SIGUSR1 (`session-storage sync-now`) ends the current wait, or the next one when a
  // cycle is running, so the cycle runs in this process and nothing races its record.
  let nudge = new AbortController();
  const onNudge = () => {
    log.info('Received SIGUSR1: syncing now');
    nudge.abort();
  };
  process.on('SIGUSR1', onNudge);

  try {
    let failures = 0;
    // Regular cycles end on the first signal as well as on the budget.
    const regular = AbortSignal.any([wake.signal, budget.signal]);
    setMaxListeners(0, regular);
    while (!stopping) {
      const ok = await regularCycle(options, regular);
      failures = ok ? 0 : failures + 1;
      if (stopping) break;
      const delay = ok ? options.intervalSeconds * 1000 : backoffDelayMs(failures, SYNC_BACKOFF);
      if (!ok) log.info(`next attempt in ${(delay / 1000).toFixed(1)}s`);
      await sleep(delay, AbortSignal.any([wake.signal, nudge.signal, ...(ok && options.changes ? [options.changes.due] : [])]));
      if (nudge.signal.aborted) nudge = new AbortController();
    }
    const finalOk = await runCycle(options, budget.signal, true);
    if (budget.signal.aborted) {
      log.error(`final sync did not finish within FINAL_SYNC_TIMEOUT_SECONDS (${options.finalSyncTimeoutSeconds}s)`);
      return false;
    }
    if (finalOk) log.info('Final sync complete, exiting');
    return finalOk;
  } finally {
    clearTimeout(budgetTimer);
    for (const signal of signals) process.off(signal, onSignal);
    process.off('SIGUSR1', onNudge);
  }
}

// The changes seen before a regular cycle starts are its to pick up.
async function regularCycle(options: SyncLoopOptions, signal: AbortSignal): Promise<boolean> {
  options.changes?.cycleStarting();
  const started = performance.now();
  try {
    return await runCycle(options, signal, false);
  } finally {
    options.changes?.cycleEnded(performance.now() - started);
  }
}

// A cycle that throws (an unreadable workspace, a bug) is a failed cycle, not a crash:
// the sidecar must keep the data and keep trying.
async function runCycle(options: SyncLoopOptions, signal: AbortSignal, final: boolean): Promise<boolean> {
  try {
    return (await options.cycle(signal, final)).ok;
  } catch (error) {
    options.log.error(`Sync failed: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }
}

