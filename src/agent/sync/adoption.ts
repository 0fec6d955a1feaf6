import type { AgentLog } from '../log.js';
import { remoteOnly } from '../state/metadata.js';
import type { LocalRecord } from '../state/record.js';
import { listRemote, type RemoteTarget } from '../state/remote.js';
import { describeFailure } from '../store/store.js';
import type { LeaseSteps } from './lease-steps.js';
import type { AgentSettings } from '../settings.js';
import { planAdoption } from './plan.js';

// Where s3:ListBucket is granted, once per this many SYNC_INTERVALs (and in the final sync)
// one listing adopts objects others wrote under the prefix (the platform's file-uploads).
// Counted in time, not cycles: syncing on change runs a cycle every few seconds while the
// runner writes, and a listing is one request per 1,000 objects.
export const ADOPT_EVERY_INTERVALS = 10;

export interface AdoptionContext {
  target: RemoteTarget;
  log: AgentLog;
  settings: Pick<AgentSettings, 'syncIntervalSeconds'>;
  now?: () => number;
}

/**
 * Objects this pod did not write, taken into the record and so into metadata.json: the
 * files a superseded pod left in the lease for the owner, and, from a listing, those others
 * put under the prefix.
 */
export class Adoption {
  private readonly now: () => number;
  private lastListingMs: number;
  private listingDenied = false;

  constructor(
    private readonly context: AdoptionContext,
    private readonly manifest: { markDue(): void },
  ) {
    this.now = context.now ?? Date.now;
    this.lastListingMs = this.now();
  }

  // Files a superseded pod left in the lease for this owner: into the record as objects
  // known only remotely (never deleted for being absent here), and so into metadata.json.
  // Returns their keys, for the lease to drop once metadata.json lists them.
  fromLease(record: LocalRecord, lease: LeaseSteps): string[] {
    if (lease.superseded) return [];
    const taken: string[] = [];
    for (const [key, entry] of lease.owner.pendingAdoptions()) {
      if (!record.files.has(key)) record.files.set(key, remoteOnly(entry.size));
      taken.push(key);
    }
    if (taken.length > 0) {
      this.manifest.markDue();
      this.context.log.info(`${taken.length} files a superseded pod of this session uploaded are added to metadata.json (restored by the session's next pod)`);
    }
    return taken;
  }

  // Objects others put under the prefix (the platform's backend pre-uploads to
  // file-uploads/ before and while the pod runs) enter the manifest with their remote
  // size and an unknown mtime, so a later pod without s3:ListBucket restores them too. An
  // object the record knows but the listing lacks expired or was deleted behind the
  // agent's back: it is made due for a refresh, which uploads it again from the local copy.
  // Returns the vanished keys.
  async fromListing(record: LocalRecord, final: boolean, signal: AbortSignal): Promise<string[]> {
    const { target, log } = this.context;
    if (this.listingDenied) return [];
    const now = this.now();
    if (!final && now - this.lastListingMs < ADOPT_EVERY_INTERVALS * this.context.settings.syncIntervalSeconds * 1000) return [];
    this.lastListingMs = now;
    let listing;
    try {
      listing = await listRemote(target, signal);
    } catch (error) {
      log.warn(`listing s3://${target.store.bucket}/${target.prefix} failed: ${describeFailure(error)}`);
      return [];
    }
    if (listing.kind === 'denied') {
      this.listingDenied = true;
      return [];
    }
    const { adopted, vanished } = planAdoption(record.files, listing.sizes);
    for (const [key, entry] of adopted) record.files.set(key, entry);
    for (const key of vanished) record.files.set(key, { ...record.files.get(key)!, uploadedAt: undefined });
    if (adopted.size > 0) {
      this.manifest.markDue();
      log.detail(`${adopted.size} objects written by others adopted into metadata.json`);
    }
    return vanished;
  }
}
