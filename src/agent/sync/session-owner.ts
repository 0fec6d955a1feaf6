import type { AgentLog } from '../log.js';
import {
  activeLease,
  describeOwner,
  newGeneration,
  readLease,
  writeLease,
  type LeaseBody,
  type PodIdentity,
} from '../state/lease.js';
import { loadHeldLease, saveHeldLease } from '../state/held-lease.js';
import type { FileEntry } from '../state/metadata.js';
import type { RemoteTarget } from '../state/remote.js';
import type { AgentSettings } from '../settings.js';
import { describeFailure } from '../store/store.js';

export interface SessionOwnerContext {
  target: RemoteTarget;
  // Where this pod keeps its last write of the lease (held-lease.ts).
  stateDir: string;
  settings: Pick<AgentSettings, 'leaseTtlSeconds' | 'terminationGraceSeconds'>;
  identity: PodIdentity;
  log: AgentLog;
}

// Attempts at a lease write that keeps losing to other writers (a superseded pod leaving
// files for the owner) before the cycle gives up on it.
const WRITE_ATTEMPTS = 5;

/**
 * state-sync's side of the session's ownership (lease.ts): it renews the lease hydrate
 * took, starts a new generation before each step that changes data, finds out when
 * another pod has taken the session over (a write conditioned on the lease's ETag fails
 * and the lease names someone else), and releases the session after the final sync.
 */
export class SessionOwner {
  private etag: string | undefined;
  private body: LeaseBody | undefined;
  private supersededBy: LeaseBody | undefined;
  private writtenAtMs = 0;
  private started = false;
  private readonly handedOver = new Set<string>();

  constructor(private readonly context: SessionOwnerContext) {}

  /** The pod that took the session over from this one, once that is known. */
  get superseded(): LeaseBody | undefined {
    return this.supersededBy;
  }

  get generation(): string | undefined {
    return this.body?.generation;
  }

  /**
   * Learns the lease once per process: from this pod's own last write of it (hydrate's,
   * or an earlier run of this sidecar) when the state dir has one and `fromCopy` allows,
   * else by reading it. A final sync reads it: the files a superseded pod left in it for
   * the owner go into this pod's last metadata.json. Hydrate normally holds the lease for
   * this pod; without one (sync started alone) the session is taken when nobody holds it,
   * and a lease another live pod holds makes this pod superseded from the start.
   */
  async start(signal: AbortSignal, fromCopy = false): Promise<void> {
    if (this.started) return;
    const { target, settings, identity, stateDir } = this.context;
    const held = fromCopy ? await loadHeldLease(stateDir, identity.uid) : undefined;
    if (held) {
      this.writtenAtMs = held.writtenAtMs;
      this.body = held.body;
      this.etag = held.etag;
      this.started = true;
      return;
    }
    const read = await readLease(target, signal);
    if (read.kind === 'found' && read.body.owner === identity.uid) {
      await this.hold(read.body, read.etag);
    } else if (read.kind === 'found' && read.body.state === 'active') {
      this.supersede(read.body);
    } else {
      const body = { ...activeLease(identity, settings, read.kind === 'found' ? read.body.generation : undefined) };
      const condition = read.kind === 'found' || read.kind === 'invalid' ? { ifMatch: read.etag } : { ifNoneMatch: '*' as const };
      const etag = await writeLease(target, body, condition, signal);
      // Lost a race for it: the next cycle reads it again.
      if (etag === undefined) return;
      this.writtenAtMs = Date.now();
      await this.hold(body, etag);
    }
    this.started = true;
  }

  /** Files a superseded pod uploaded that this owner did not have, to take into the manifest. */
  pendingAdoptions(): Map<string, FileEntry> {
    const adopt = new Map(Object.entries(this.body?.adopt ?? {}));
    for (const key of this.handedOver) adopt.delete(key);
    return adopt;
  }

  /** The manifest in S3 now lists these: the next lease write drops them. */
  adopted(keys: Iterable<string>): void {
    for (const key of keys) this.handedOver.add(key);
  }

  /** A renewal once a third of the TTL has passed since the last write; false once superseded. */
  async renewIfDue(signal: AbortSignal, nowMs = Date.now()): Promise<boolean> {
    if (this.supersededBy) return false;
    if (nowMs - this.writtenAtMs < (this.context.settings.leaseTtlSeconds * 1000) / 3) return true;
    return this.write((body) => body, signal);
  }

  /** A new generation before a step that changes objects or metadata.json; false when another pod owns the session. */
  beginChanges(signal: AbortSignal): Promise<boolean> {
    if (this.supersededBy) return Promise.resolve(false);
    return this.write((body) => ({ ...body, generation: newGeneration() }), signal);
  }

  /** After the final sync: a successor may start at once. */
  async release(signal: AbortSignal): Promise<void> {
    if (this.supersededBy || this.body === undefined) return;
    try {
      if (await this.write((body) => ({ ...body, state: 'released' }), signal)) this.context.log.detail('released the session for its next pod');
    } catch (error) {
      this.context.log.warn(`could not release the session (the next pod waits up to ${this.context.settings.terminationGraceSeconds}s): ${describeFailure(error)}`);
    }
  }

  private async hold(body: LeaseBody, etag: string): Promise<void> {
    this.body = body;
    this.etag = etag;
    // Only a saving: without the copy the next start reads the lease.
    await saveHeldLease(this.context.stateDir, { etag, body, writtenAtMs: this.writtenAtMs }).catch(() => undefined);
  }

  private supersede(by: LeaseBody): void {
    this.supersededBy = by;
    this.context.log.warn(
      `${describeOwner(by)} has taken this session over: this pod no longer deletes objects or writes metadata.json, and uploads only what S3 does not have`,
    );
  }

  // A conditional write of the lease as `change` makes it. When the ETag moved, the lease
  // is read again: still this pod's (a superseded pod added files for it to adopt), the
  // write is tried again on the new body; another pod's, this pod is superseded.
  private async write(change: (body: LeaseBody) => LeaseBody, signal: AbortSignal): Promise<boolean> {
    const { target, settings, identity } = this.context;
    for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt += 1) {
      if (this.body === undefined || this.etag === undefined) {
        await this.start(signal);
        if (this.supersededBy) return false;
        if (this.body === undefined) continue;
      }
      const current = this.body as LeaseBody;
      const adopt = Object.fromEntries(Object.entries(current.adopt ?? {}).filter(([key]) => !this.handedOver.has(key)));
      const renewed = { ...activeLease(identity, settings, current.generation), ...(Object.keys(adopt).length > 0 ? { adopt } : {}) };
      const next = change(renewed);
      const etag = await writeLease(target, next, { ifMatch: this.etag as string }, signal);
      if (etag !== undefined) {
        this.writtenAtMs = Date.now();
        await this.hold(next, etag);
        if (!next.adopt) this.handedOver.clear();
        return true;
      }
      const read = await readLease(target, signal);
      if (read.kind === 'found' && read.body.owner === identity.uid) {
        await this.hold(read.body, read.etag);
      } else if (read.kind === 'found') {
        this.supersede(read.body);
        return false;
      } else {
        // Deleted or garbled behind the agent's back: made again at the next attempt.
        this.body = undefined;
        this.etag = undefined;
        this.started = false;
      }
    }
    throw new Error('the session lease kept changing under this pod; will retry next cycle');
  }
}

// A superseded pod's files the owner does not have, listed in the lease for the owner to
// adopt; conditional on the lease's ETag like every write of it.
export async function leaveForOwner(target: RemoteTarget, files: ReadonlyMap<string, FileEntry>, signal: AbortSignal): Promise<boolean> {
  for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt += 1) {
    const read = await readLease(target, signal);
    if (read.kind !== 'found') return false;
    const body: LeaseBody = { ...read.body, adopt: { ...read.body.adopt, ...Object.fromEntries(files) } };
    if ((await writeLease(target, body, { ifMatch: read.etag }, signal)) !== undefined) return true;
  }
  return false;
}
