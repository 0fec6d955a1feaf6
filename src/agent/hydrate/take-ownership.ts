import { logName, type AgentLog } from '../log.js';
import {
  activeLease,
  describeOwner,
  LEASE_KEY,
  readLease,
  waitVerdict,
  writeLease,
  type LeaseBody,
  type PodIdentity,
  type Watch,
} from '../state/lease.js';
import type { RemoteTarget } from '../state/remote.js';
import type { AgentSettings } from '../settings.js';
import { StoreError } from '../store/store.js';
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
  const conditional = await honoursConditions(context, owned, signal);
  return { ...owned, conditional };
}

async function attemptOwnership(context: OwnershipContext, started: number, signal: AbortSignal): Promise<Omit<Owned, 'conditional'>> {
  const { target, settings, identity, log } = context;
  let watch: Watch | undefined;
  let reported = 0;
  for (;;) {
    if (signal.aborted) throw signal.reason;
    const read = await readLease(target, signal);
    const now = Date.now();
    if (read.kind === 'missing' || read.kind === 'unknown') {
      const body = activeLease(identity, settings, undefined);
      const etag = await writeLease(target, body, { ifNoneMatch: '*' }, signal);
      if (etag !== undefined) return { etag, body, from: 'new', waitedMs: now - started };
      if (read.kind === 'unknown') {
        // It exists (the create was refused as a duplicate), yet reading it was denied.
        throw new StoreError('access-denied', {
          kind: 'access denied',
          detail: `reading ${target.prefix}${LEASE_KEY} was refused: grant s3:GetObject on arn:aws:s3:::${target.store.bucket}/${target.prefix}*`,
        });
      }
      continue;
    }
    if (read.kind === 'invalid') {
      log.warn(`${logName(target.prefix + LEASE_KEY)} is unreadable (${read.reason}): taking the session over`);
      const body = activeLease(identity, settings, undefined);
      const etag = await writeLease(target, body, { ifMatch: read.etag }, signal);
      if (etag !== undefined) return { etag, body, from: 'unreadable', waitedMs: now - started };
      continue;
    }
    const { body: held, etag: heldEtag } = read;
    const from = held.owner === identity.uid ? 'self' : held.state === 'released' ? 'released' : undefined;
    let verdict: Owned['from'] | undefined = from;
    if (verdict === undefined) {
      if (watch === undefined) {
        watch = { etag: heldEtag, firstSeenMs: now, changedMs: now };
        log.info(`Waiting for ${describeOwner(held)} to release the session (its final sync; at most ${held.graceSeconds}s, or ${held.ttlSeconds}s of silence)`);
        reported = now;
      } else if (watch.etag !== heldEtag) {
        watch = { ...watch, etag: heldEtag, changedMs: now };
      }
      const waited = waitVerdict(held, watch, now);
      if (waited === 'wait') {
        if (now - reported >= REPORT_EVERY_MS) {
          log.detail(`still waiting for ${describeOwner(held)} (${Math.round((now - watch.firstSeenMs) / 1000)}s)`);
          reported = now;
        }
        // A few reads within even a short grace period.
        await sleep(context.pollMs ?? Math.min(POLL_MS, held.graceSeconds * 250), signal);
        continue;
      }
      verdict = waited;
    }
    // The generation goes on; files a superseded pod left for the owner stay listed.
    const body: LeaseBody = { ...activeLease(identity, settings, held.generation), ...(held.adopt ? { adopt: held.adopt } : {}) };
    const etag = await writeLease(target, body, { ifMatch: heldEtag }, signal);
    if (etag === undefined) continue;
    if (verdict === 'silent') {
      log.warn(`${describeOwner(held)} held the session but went silent for ${held.ttlSeconds}s (crashed or lost): taking it over`);
    } else if (verdict === 'outlived') {
      log.warn(`${describeOwner(held)} still holds the session after ${held.graceSeconds}s (its grace period): taking it over; it can no longer delete objects or replace metadata.json`);
    } else if (verdict === 'released') {
      log.detail(`took the session over from ${describeOwner(held)}, which released it`);
    }
    return { etag, body, from: verdict, previous: held, waitedMs: now - started };
  }
}

let warnedUnconditional = false;

// A store that ignores If-Match or If-None-Match lets two pods both believe they own the
// session: that is logged once per process, and the protocol goes on as well as it can.
// Both probes rewrite the lease with the body it already has.
async function honoursConditions(context: OwnershipContext, owned: Omit<Owned, 'conditional'>, signal: AbortSignal): Promise<boolean> {
  const { target, log } = context;
  const ignoredMatch = await writeLease(target, owned.body, { ifMatch: NO_SUCH_ETAG }, signal);
  const ignoredNone = await writeLease(target, owned.body, { ifNoneMatch: '*' }, signal);
  const ignored = ignoredNone ?? ignoredMatch;
  if (ignored === undefined) return true;
  owned.etag = ignored;
  if (!warnedUnconditional) {
    warnedUnconditional = true;
    const which = [ignoredMatch !== undefined ? 'If-Match' : undefined, ignoredNone !== undefined ? 'If-None-Match' : undefined].filter(Boolean).join(' and ');
    log.warn(
      `this S3 endpoint ignores conditional writes (${which}): two pods of one session can both act as its owner, so overlapping pods are not protected (see the README's "Data safety")`,
    );
  }
  return false;
}
