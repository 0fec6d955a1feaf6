import { logName, type AgentLog } from '../log.js';
import {
  activeLease,
  describeOwner,
  LEASE_KEY,
  readLease,
  waitVerdict,
  writeLease,
  type LeaseBody,
  type LeaseRead,
  type PodIdentity,
  type Watch,
} from '../state/lease.js';
import type { RemoteTarget } from '../state/remote.js';
import type { AgentSettings } from '../settings.js';
import { describeFailure, StoreError } from '../store/store.js';
import { sleep } from '../../shared/sleep.js';

export interface OwnershipContext {
  target: RemoteTarget;
  settings: Pick<AgentSettings, 'leaseTtlSeconds' | 'terminationGraceSeconds'>;
  identity: PodIdentity;
  log: AgentLog;
  // How often a waiting pod reads the owner's lease (tests shorten it).
  pollMs?: number;
}

export interface Owned {
  etag: string;
  body: LeaseBody;
  // How this pod came to own the session.
  from: 'new' | 'self' | 'released' | 'silent' | 'outlived' | 'unreadable';
  previous?: LeaseBody;
  waitedMs: number;
  // Whether the store honours If-Match and If-None-Match (checked once per hydrate).
  conditional: boolean;
}

const POLL_MS = 2_000;
const REPORT_EVERY_MS = 10_000;
// An ETag no object has: a store that honours If-Match refuses a write conditioned on it.
const NO_SUCH_ETAG = '"00000000000000000000000000000000"';

/**
 * Hydrate's first step: this pod becomes the session's owner. A lease another pod holds
 * and renews is waited for until released, silent for its TTL, or outlived (the waiter's
 * whole grace period); then this pod takes it over with a write conditioned on the ETag it
 * read, so of two pods racing for it exactly one wins and the other reads again. Waiting
 * is not an error and has no deadline of its own beyond those bounds; an S3 error is
 * thrown, for hydrate's attempts to retry.
 */
export async function takeOwnership(context: OwnershipContext, signal: AbortSignal): Promise<Owned> {
  const owned = await attemptOwnership(context, Date.now(), signal);
  const ignored = await ignoredConditions(context, owned.body, signal);
  // The lease's ETag is then the last probe's.
  return ignored === undefined ? { ...owned, conditional: true } : { ...owned, etag: ignored, conditional: false };
}

type Taken = Omit<Owned, 'conditional' | 'waitedMs'>;

async function attemptOwnership(context: OwnershipContext, started: number, signal: AbortSignal): Promise<Omit<Owned, 'conditional'>> {
  let waiting: Waiting | undefined;
  for (;;) {
    if (signal.aborted) throw signal.reason;
    const read = await readLease(context.target, signal);
    const now = Date.now();
    if (read.kind !== 'found') {
      const taken = await takeUnheld(context, read, signal);
      if (taken) return { ...taken, waitedMs: now - started };
      continue;
    }
    const judged = judge(context, read.body, read.etag, waiting, now);
    waiting = judged.waiting;
    if (judged.verdict === 'wait') {
      // A few reads within even a short grace period.
      await sleep(context.pollMs ?? Math.min(POLL_MS, read.body.graceSeconds * 250), signal);
      continue;
    }
    const taken = await takeOver(context, read.body, read.etag, judged.verdict, signal);
    if (taken) return { ...taken, waitedMs: now - started };
  }
}

// A lease no pod holds (missing, or unreadable), created or replaced; undefined when
// another pod's write came first.
async function takeUnheld(context: OwnershipContext, read: Exclude<LeaseRead, { kind: 'found' }> | { kind: 'unknown' }, signal: AbortSignal): Promise<Taken | undefined> {
  const { target, settings, identity, log } = context;
  const body = activeLease(identity, settings, undefined);
  if (read.kind === 'invalid') {
    log.warn(`${logName(target.prefix + LEASE_KEY)} is unreadable (${read.reason}): taking the session over`);
    const etag = await writeLease(target, body, { ifMatch: read.etag }, signal);
    return etag === undefined ? undefined : { etag, body, from: 'unreadable' };
  }
  const etag = await writeLease(target, body, { ifNoneMatch: '*' }, signal);
  if (etag !== undefined) return { etag, body, from: 'new' };
  if (read.kind === 'unknown') {
    // It exists (the create was refused as a duplicate), yet reading it was denied.
    throw new StoreError('access-denied', {
      kind: 'access denied',
      detail: `reading ${target.prefix}${LEASE_KEY} was refused: grant s3:GetObject on arn:aws:s3:::${target.store.bucket}/${target.prefix}*`,
    });
  }
  return undefined;
}

// A pod waiting for another owner: what it saw of the lease, and when it last said so.
interface Waiting {
  watch: Watch;
  reported: number;
}

// Whether the lease another pod holds is this pod's to take now, and why; or 'wait'.
function judge(
  context: OwnershipContext,
  held: LeaseBody,
  etag: string,
  waiting: Waiting | undefined,
  now: number,
): { verdict: Owned['from'] | 'wait'; waiting: Waiting | undefined } {
  const { identity, log } = context;
  if (held.owner === identity.uid) return { verdict: 'self', waiting };
  if (held.state === 'released') return { verdict: 'released', waiting };
  let next: Waiting;
  if (waiting === undefined) {
    log.info(`Waiting for ${describeOwner(held)} to release the session (its final sync; at most ${held.graceSeconds}s, or ${held.ttlSeconds}s of silence)`);
    next = { watch: { etag, firstSeenMs: now, changedMs: now }, reported: now };
  } else {
    next = waiting.watch.etag === etag ? waiting : { ...waiting, watch: { ...waiting.watch, etag, changedMs: now } };
  }
  const verdict = waitVerdict(held, next.watch, now);
  if (verdict === 'wait' && now - next.reported >= REPORT_EVERY_MS) {
    log.detail(`still waiting for ${describeOwner(held)} (${Math.round((now - next.watch.firstSeenMs) / 1000)}s)`);
    next = { ...next, reported: now };
  }
  return { verdict, waiting: next };
}

// The held lease, taken over with a write conditioned on the ETag read; undefined when
// another pod's write came first.
async function takeOver(context: OwnershipContext, held: LeaseBody, heldEtag: string, verdict: Owned['from'], signal: AbortSignal): Promise<Taken | undefined> {
  const { target, settings, identity, log } = context;
  // The generation goes on; files a superseded pod left for the owner stay listed.
  const body: LeaseBody = { ...activeLease(identity, settings, held.generation), ...(held.adopt ? { adopt: held.adopt } : {}) };
  const etag = await writeLease(target, body, { ifMatch: heldEtag }, signal);
  if (etag === undefined) return undefined;
  if (verdict === 'silent') {
    log.warn(`${describeOwner(held)} held the session but went silent for ${held.ttlSeconds}s (crashed or lost): taking it over`);
  } else if (verdict === 'outlived') {
    log.warn(`${describeOwner(held)} still holds the session after ${held.graceSeconds}s (its grace period): taking it over; it can no longer delete objects or replace metadata.json`);
  } else if (verdict === 'released') {
    log.detail(`took the session over from ${describeOwner(held)}, which released it`);
  }
  return { etag, body, from: verdict, previous: held };
}

// A release is one PUT: it must not hold up a pod that already failed.
const RELEASE_TIMEOUT_MS = 10_000;

/**
 * After hydrate gave up: the runner never started in this pod, so the pod has nothing
 * left to save and its successor (a Job's next pod) need not wait out this pod's grace
 * period. The generation and the files left to adopt stay as they were.
 */
export async function releaseUnused(context: Pick<OwnershipContext, 'target' | 'log'>, owned: Owned): Promise<void> {
  try {
    const released: LeaseBody = { ...owned.body, state: 'released' };
    if ((await writeLease(context.target, released, { ifMatch: owned.etag }, AbortSignal.timeout(RELEASE_TIMEOUT_MS))) !== undefined) {
      context.log.detail('released the session: its next pod need not wait for this one');
    }
  } catch (error) {
    context.log.detail(`could not release the session (its next pod waits up to ${owned.body.graceSeconds}s): ${describeFailure(error)}`);
  }
}

let warnedUnconditional = false;

// A store that ignores If-Match or If-None-Match lets two pods both believe they own the
// session: that is logged once per process, and the protocol goes on as well as it can.
// Both probes rewrite the lease with the body it already has: the ETag of the last write
// a store let through, or undefined where it honours both.
async function ignoredConditions(context: OwnershipContext, body: LeaseBody, signal: AbortSignal): Promise<string | undefined> {
  const { target, log } = context;
  const ignoredMatch = await writeLease(target, body, { ifMatch: NO_SUCH_ETAG }, signal);
  const ignoredNone = await writeLease(target, body, { ifNoneMatch: '*' }, signal);
  const ignored = ignoredNone ?? ignoredMatch;
  if (ignored === undefined) return undefined;
  if (!warnedUnconditional) {
    warnedUnconditional = true;
    const which = [ignoredMatch !== undefined ? 'If-Match' : undefined, ignoredNone !== undefined ? 'If-None-Match' : undefined].filter(Boolean).join(' and ');
    log.warn(
      `this S3 endpoint ignores conditional writes (${which}): two pods of one session can both act as its owner, so overlapping pods are not protected (see the README's "Data safety")`,
    );
  }
  return ignored;
}
