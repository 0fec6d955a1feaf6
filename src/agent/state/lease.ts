import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { fileEntrySchema, type FileEntry } from './metadata.js';
import { AGENT_OBJECTS_PREFIX, type RemoteTarget } from './remote.js';
import type { AgentSettings } from '../settings.js';
import { isStoreError } from '../store/store.js';

/*
 * One writer at a time (DESIGN rule 8). A session's state has one owner pod, named in
 * `.session-storage/owner.json` beside the data and changed only by conditional writes
 * (If-None-Match: * to create it, If-Match: <its ETag> to change it), so two pods that
 * race for it cannot both win. The owner renews it while it lives and marks it released
 * after its final sync; a new pod waits for that release (or for the owner to go silent)
 * before it restores. The arithmetic is in docs/HOW-IT-WORKS.md.
 */

export const LEASE_KEY = `${AGENT_OBJECTS_PREFIX}owner.json`;

export const leaseSchema = z.object({
  version: z.literal(1),
  // The owner's pod UID (or the id its state dir keeps).
  owner: z.string().min(1),
  pod: z.string().optional(),
  state: z.enum(['active', 'released']),
  // The owner's clock; waiters judge silence by their own clock and the ETag.
  renewedAt: z.string(),
  // The owner renews at least this often while it is active.
  ttlSeconds: z.number().positive(),
  // How long a successor waits for this owner's release at most: its grace period.
  graceSeconds: z.number().nonnegative(),
  // A new token before every step of a cycle that changes data (uploads, then deletions
  // and metadata.json); metadata.json carries the token of the step it completes. A
  // manifest whose token is not the lease's is not the whole truth: a cycle changed
  // objects and did not get to write it. Absent: no cycle began under this lease.
  generation: z.string().optional(),
  // Files a superseded pod uploaded that the owner did not have: the owner takes them
  // into its manifest (a policy without s3:ListBucket shows them no other way).
  adopt: z.record(z.string(), fileEntrySchema).optional(),
});
export type LeaseBody = z.infer<typeof leaseSchema>;

export type LeaseRead =
  | { kind: 'missing' }
  | { kind: 'found'; body: LeaseBody; etag: string }
  | { kind: 'invalid'; etag: string; reason: string };

export interface PodIdentity {
  uid: string;
  name?: string;
}

const IDENTITY_FILE = 'pod-identity';

// The pod's UID from the downward API. Without it (a pod injected by an older webhook, a
// process run by hand) an id kept in the state dir: an EmptyDir of the pod, shared by
// init-hydrate and state-sync and kept across container restarts, so it names this pod
// for as long as it lives.
export async function podIdentity(settings: Pick<AgentSettings, 'podUid' | 'podName' | 'stateDir'>): Promise<PodIdentity> {
  const name = settings.podName === undefined ? {} : { name: settings.podName };
  if (settings.podUid !== undefined) return { uid: settings.podUid, ...name };
  const file = path.join(settings.stateDir, IDENTITY_FILE);
  await mkdir(settings.stateDir, { recursive: true });
  try {
    const handle = await open(file, 'wx');
    const uid = `local-${randomBytes(8).toString('hex')}`;
    try {
      await handle.writeFile(uid);
    } finally {
      await handle.close();
    }
    return { uid, ...name };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const uid = (await readFile(file, 'utf8')).trim();
  if (uid === '') throw new Error(`${file} is empty: remove it to give this pod a new identity`);
  return { uid, ...name };
}

export function describeOwner(body: Pick<LeaseBody, 'owner' | 'pod'>): string {
  return body.pod === undefined ? `pod ${body.owner}` : `pod ${body.pod} (${body.owner})`;
}

// A policy without s3:ListBucket answers 403 for a missing key: `unknown`, which the
// caller resolves by trying to create the lease.
export async function readLease(target: RemoteTarget, signal: AbortSignal): Promise<LeaseRead | { kind: 'unknown' }> {
  let text: string;
  let etag: string | undefined;
  try {
    const object = await target.store.get(target.prefix + LEASE_KEY, {}, signal);
    etag = object.etag;
    text = Buffer.from(await object.bytes()).toString('utf8');
  } catch (error) {
    if (isStoreError(error, 'not-found')) return { kind: 'missing' };
    if (isStoreError(error, 'access-denied')) return { kind: 'unknown' };
    throw error;
  }
  if (etag === undefined) throw new Error(`${LEASE_KEY}: the store answered without an ETag`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', etag, reason: 'not JSON' };
  }
  const parsed = leaseSchema.safeParse(json);
  if (!parsed.success) return { kind: 'invalid', etag, reason: parsed.error.issues[0]?.message ?? 'unexpected shape' };
  return { kind: 'found', body: parsed.data, etag };
}

export type Condition = { ifMatch: string } | { ifNoneMatch: '*' };

// The new ETag, or undefined when the condition failed (someone else wrote the lease).
export async function writeLease(target: RemoteTarget, body: LeaseBody, condition: Condition, signal: AbortSignal): Promise<string | undefined> {
  try {
    const { etag } = await target.store.put(target.prefix + LEASE_KEY, JSON.stringify(body), condition, signal);
    return etag;
  } catch (error) {
    if (isStoreError(error, 'precondition-failed')) return undefined;
    // If-Match on a key deleted meanwhile.
    if ('ifMatch' in condition && isStoreError(error, 'not-found')) return undefined;
    throw error;
  }
}

export function activeLease(
  identity: PodIdentity,
  settings: Pick<AgentSettings, 'leaseTtlSeconds' | 'terminationGraceSeconds'>,
  generation: string | undefined,
  now = new Date(),
): LeaseBody {
  return {
    version: 1,
    owner: identity.uid,
    ...(identity.name === undefined ? {} : { pod: identity.name }),
    state: 'active',
    renewedAt: now.toISOString(),
    ttlSeconds: settings.leaseTtlSeconds,
    graceSeconds: settings.terminationGraceSeconds,
    ...(generation === undefined ? {} : { generation }),
  };
}

export function newGeneration(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Whether metadata.json is the whole truth for this lease: no data-changing step began since it was written. */
export function manifestIsCurrent(lease: Pick<LeaseBody, 'generation'>, metadataGeneration: string | undefined): boolean {
  return lease.generation === undefined || lease.generation === metadataGeneration;
}

/** What a waiting pod saw of another pod's lease: when it first saw it, and when it last changed. */
export interface Watch {
  etag: string;
  firstSeenMs: number;
  changedMs: number;
}

export type WaitVerdict = 'wait' | 'silent' | 'outlived';

/**
 * Whether a pod waiting for another owner's release should go on waiting. The owner is
 * gone when its lease has not changed for its TTL (judged by the waiter's own clock, so
 * clocks need not agree), and outlived when the waiter has waited its whole grace period:
 * a pod being deleted is gone by then, so an owner still renewing is not the one
 * terminating (a second pod of the session started by hand, a partitioned node) and is
 * superseded rather than waited for without end.
 */
export function waitVerdict(body: Pick<LeaseBody, 'ttlSeconds' | 'graceSeconds'>, watch: Watch, nowMs: number): WaitVerdict {
  if (nowMs - watch.changedMs >= body.ttlSeconds * 1000) return 'silent';
  if (nowMs - watch.firstSeenMs >= body.graceSeconds * 1000) return 'outlived';
  return 'wait';
}

export function pendingAdoptions(body: LeaseBody): Map<string, FileEntry> {
  return new Map(Object.entries(body.adopt ?? {}));
}
