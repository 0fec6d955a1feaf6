import { setMaxListeners } from 'node:events';
import { mkdir } from 'node:fs/promises';
import type { AgentSettings } from '../settings.js';
import { sessionPrefix } from '../settings.js';
import type { AgentLog } from '../log.js';
import { saveHeldLease } from '../state/held-lease.js';
import { podIdentity, type PodIdentity } from '../state/lease.js';
import type { LocalRecord } from '../state/record.js';
import type { RemoteTarget } from '../state/remote.js';
import { failureOf as storeFailureOf } from '../store/store.js';
import { formatBytes } from '../../shared/size.js';
import { backoffDelayMs, type BackoffPolicy } from '../../shared/backoff.js';
import { sleep } from '../../shared/sleep.js';
import { releaseUnused, takeOwnership, type Owned } from './take-ownership.js';
import { CreatedDirs } from './hydrate-journal.js';
import type { MissingFiles } from './missing-files.js';
import { HydrateFailure, readRemoteState, type RemoteState } from './remote-state.js';
import { presentKeys, rerunRecord } from './local-state.js';
import { planRestore, remoteKeys, type RestorePlan } from './restore-plan.js';
import { completeHydrate, restore, type RecordContext } from './restore.js';
import type { HydrateSummary } from './restore-tally.js';

export const FRESH_SESSION_MESSAGE = 'No existing state found, starting fresh session';
const PROGRESS_INTERVAL_MS = 2_000;

export interface HydrateContext {
  settings: AgentSettings;
  target: RemoteTarget;
  log: AgentLog;
  workers: number;
  // How often a long restore reports its progress.
  progressIntervalMs?: number;
  // How often a pod waiting for the session's previous owner reads its lease.
  leasePollMs?: number;
  // Files of the manifest found gone from S3 (missing-files.ts reports them).
  missing?: MissingFiles;
}

// What every attempt starts from.
interface HydrateStart {
  identity: PodIdentity;
  // This pod's own record of an earlier complete hydrate: nothing is restored over the
  // live files (DESIGN rule 11).
  rerun: LocalRecord | undefined;
  createdDirs: CreatedDirs;
  started: number;
  // Waiting for a previous owner's final sync is not restore time: until the session is
  // this pod's, nothing aborts and the deadline is HYDRATE_TIMEOUT_SECONDS from the start.
  unbounded: AbortSignal;
  deadline: number;
}

// The session, once this pod owns it: the restore's deadline moves by the time waited,
// and its signal starts now.
interface SessionHold {
  owned: Owned;
  deadline: number;
  // Every in-flight request of the restore listens on this one signal.
  signal: AbortSignal;
}

const PERMANENT_KINDS = new Set(['access denied', 'bucket not found', 'state cannot be enumerated', 'wrong region']);

function failureOf(error: unknown): { kind: string; detail: string } {
  if (error instanceof HydrateFailure) return { kind: error.kind, detail: error.message };
  return storeFailureOf(error);
}

// After a failed attempt: up to 1 s, doubling up to 15 s, jittered (see backoff.ts).
export const HYDRATE_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 15_000 };
// The last retry is worth making only with this much of the budget left.
const MIN_LAST_ATTEMPT_MS = 250;
// A policy or a missing bucket does not change between attempts a second apart; a few
// tries cover a credential or bucket being created at the same moment.
export const PERMANENT_ATTEMPTS = 3;

// Retries with backoff until HYDRATE_TIMEOUT_SECONDS is spent (PERMANENT_ATTEMPTS for a
// permanent failure). Any failure leaves no record behind, so state-sync (which only starts
// after a successful hydrate anyway) can never delete on the strength of a partial restore.
export async function hydrate(context: HydrateContext): Promise<boolean> {
  const { settings, target, log } = context;
  const started = Date.now();
  await mkdir(settings.stateDir, { recursive: true });
  const identity = await podIdentity(settings);
  const rerun = await rerunRecord(settings.stateDir, target, identity);
  log.info(`Hydrating ${settings.workspaceDir} from s3://${target.store.bucket}/${sessionPrefix(settings)}`);
  if (rerun) log.info('init-hydrate already completed in this pod: restoring only what the workspace lacks and the runner did not delete');
  const createdDirs = await CreatedDirs.open(settings.stateDir);
  const unbounded = new AbortController().signal;
  const deadline = started + settings.hydrateTimeoutSeconds * 1000;
  try {
    return await attempts(context, { identity, rerun, createdDirs, started, unbounded, deadline });
  } finally {
    createdDirs.close();
  }
}

async function attempts(context: HydrateContext, start: HydrateStart): Promise<boolean> {
  let hold: SessionHold | undefined;
  for (let attempt = 1; ; attempt += 1) {
    try {
      hold ??= await holdSession(context, start);
      const summary = await hydrateAttempt(context, start, hold);
      const seconds = ((Date.now() - start.started) / 1000).toFixed(1);
      context.log.info(
        `Hydrate complete (${summary.restored} files restored, ${formatBytes(summary.bytes)}, ${summary.unchanged} already in place, ${summary.refused} refused, ${summary.unrestored} not restorable, ${seconds}s)`,
      );
      return true;
    } catch (error) {
      const delay = retryDelay(context.log, start, hold, attempt, error);
      if (delay === undefined) {
        // A re-run in a live pod keeps the session: the runner's unsynced files are here.
        if (hold && !start.rerun) await releaseUnused({ target: context.target, log: context.log }, hold.owned);
        return false;
      }
      await sleep(delay, hold?.signal ?? start.unbounded);
    }
  }
}

async function holdSession(context: HydrateContext, start: HydrateStart): Promise<SessionHold> {
  const { target, settings, log } = context;
  const owned = await takeOwnership({ target, settings, identity: start.identity, log, pollMs: context.leasePollMs }, start.unbounded);
  // state-sync starts from this copy: a sidecar with nothing to upload then sends nothing.
  await saveHeldLease(settings.stateDir, { etag: owned.etag, body: owned.body, writtenAtMs: Date.now() }).catch(() => undefined);
  const deadline = start.deadline + owned.waitedMs;
  const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
  setMaxListeners(0, signal);
  return { owned, deadline, signal };
}

// How long to wait before the next attempt, or undefined (logged) when hydrate gives up.
function retryDelay(log: AgentLog, start: HydrateStart, hold: SessionHold | undefined, attempt: number, error: unknown): number | undefined {
  const classified = failureOf(error);
  const failure = hold?.signal.aborted && classified.kind === 'error' ? { kind: 'timed out', detail: 'HYDRATE_TIMEOUT_SECONDS reached' } : classified;
  const remaining = (hold?.deadline ?? start.deadline) - Date.now();
  if (remaining < MIN_LAST_ATTEMPT_MS || (PERMANENT_KINDS.has(failure.kind) && attempt >= PERMANENT_ATTEMPTS)) {
    const seconds = Math.round((Date.now() - start.started) / 1000);
    log.error(`hydrate failed: ${failure.kind}: ${failure.detail} (gave up after ${attempt} attempts, ${seconds}s)`);
    return undefined;
  }
  const delay = Math.min(backoffDelayMs(attempt, HYDRATE_BACKOFF), remaining - MIN_LAST_ATTEMPT_MS);
  log.warn(`hydrate attempt ${attempt} failed: ${failure.kind}: ${failure.detail}; retrying in ${(delay / 1000).toFixed(1)}s`);
  return delay;
}

// One attempt: the remote state, then the plan, then the restore.
async function hydrateAttempt(context: HydrateContext, start: HydrateStart, hold: SessionHold): Promise<HydrateSummary> {
  const { settings, target, log } = context;
  const { signal } = hold;
  const remote = await readRemoteState(target, log, signal);
  const lease = hold.owned.body;
  const { rerun } = start;
  const present = rerun ? await presentKeys(remoteKeys({ ...remote, lease }), settings) : undefined;
  const plan = planRestore({ ...remote, lease, rerun, present, syncPaths: settings.syncPaths, workspaceDir: settings.workspaceDir });
  if (!plan.current) {
    log.warn(
      "metadata.json is older than the session's last changes (a cycle's uploads went up without it): every file is fetched from its object, none from the restore bundle",
    );
  }
  const recordContext: RecordContext = { target, stateDir: settings.stateDir, owner: start.identity.uid, createdDirs: start.createdDirs };
  if (plan.fresh) return startFresh(context, recordContext, remote, plan);
  const progressIntervalMs = context.progressIntervalMs ?? PROGRESS_INTERVAL_MS;
  return restore({ ...recordContext, log, workers: context.workers, progressIntervalMs, signal, missing: context.missing }, plan, remote.listing, settings.workspaceDir);
}

// A fresh session is a complete hydrate of nothing: the record lets sync propagate
// deletions of files it uploads itself in this first pod, and knows no remote file it
// could wrongly delete.
async function startFresh(context: HydrateContext, recordContext: RecordContext, remote: RemoteState, plan: RestorePlan): Promise<HydrateSummary> {
  const { settings, log } = context;
  log.info(FRESH_SESSION_MESSAGE);
  if (remote.listing.kind === 'denied') {
    log.detail('(without s3:ListBucket only metadata.json can show state: objects uploaded without one, such as pre-uploaded files, are not seen)');
  }
  await completeHydrate(recordContext, settings.workspaceDir, new Set(), plan.files, plan.unrestored);
  return { restored: 0, unchanged: 0, bytes: 0, refused: 0, unrestored: 0 };
}
