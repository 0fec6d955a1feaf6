import type { AgentLog } from '../log.js';
import type { AgentSettings } from '../settings.js';
import { podIdentity } from '../state/lease.js';
import type { RemoteTarget } from '../state/remote.js';
import { describeFailure } from '../store/store.js';
import { SessionOwner } from './session-owner.js';

export interface LeaseStepsContext {
  settings: AgentSettings;
  target: RemoteTarget;
  log: AgentLog;
}

/**
 * The lease writes of a cycle (session-owner.ts does them): a renewal when due at the
 * start and while a long cycle runs, a new generation before the uploads and another
 * before the deletions and metadata.json, the release after the final sync.
 */
export class LeaseSteps {
  private sessionOwner: SessionOwner | undefined;
  private uid = '';
  // Whether this cycle began the generation its deletions and metadata.json carry.
  private confirmed = false;

  constructor(private readonly context: LeaseStepsContext) {}

  get owner(): SessionOwner {
    if (!this.sessionOwner) throw new Error('the session lease is read at the start of a cycle');
    return this.sessionOwner;
  }

  get superseded(): boolean {
    return this.owner.superseded !== undefined;
  }

  get generation(): string | undefined {
    return this.owner.generation;
  }

  /** This pod's UID, under which a superseded pod keeps its copies. */
  get podUid(): string {
    return this.uid;
  }

  // The session's ownership, learned at the first cycle (hydrate took it for this pod),
  // and renewed when due.
  async start(signal: AbortSignal, final: boolean): Promise<void> {
    if (!this.sessionOwner) {
      const { settings, target, log } = this.context;
      const identity = await podIdentity(settings);
      this.uid = identity.uid;
      this.sessionOwner = new SessionOwner({ target, stateDir: settings.stateDir, settings, identity, log });
    }
    this.confirmed = false;
    await this.sessionOwner.start(signal, !final);
    await this.sessionOwner.renewIfDue(signal);
  }

  // A cycle longer than the lease's renewal period (a large backlog) renews on the way,
  // or a new pod would take it for a crashed owner. Returns what stops it.
  heartbeat(signal: AbortSignal): () => void {
    const { settings, log } = this.context;
    const owner = this.owner;
    const timer = setInterval(
      () => void owner.renewIfDue(signal).catch((error: unknown) => log.warn(`renewing the session's ownership failed: ${describeFailure(error)}`)),
      (settings.leaseTtlSeconds * 1000) / 3,
    );
    return () => clearInterval(timer);
  }

  async beforeUploads(signal: AbortSignal): Promise<void> {
    if (!this.superseded) await this.owner.beginChanges(signal);
  }

  // Deletions and metadata.json are the owner's alone; ownership is confirmed (a new
  // generation) right before the first of them, after the uploads that may have taken long.
  async confirm(signal: AbortSignal): Promise<boolean> {
    if (!this.confirmed && !this.superseded) this.confirmed = await this.owner.beginChanges(signal);
    return this.confirmed;
  }

  /** After the final sync: the session's next pod need not wait for this one. */
  async release(signal: AbortSignal): Promise<void> {
    await this.sessionOwner?.release(signal);
  }
}
