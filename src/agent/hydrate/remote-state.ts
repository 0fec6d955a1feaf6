import type { AgentLog } from '../log.js';
import { listRemote, probeAccess, readMetadata, type Listing, type MetadataRead, type RemoteTarget } from '../state/remote.js';
import { describeFailure, isStoreError } from '../store/store.js';

// A failure hydrate names itself. Permanent ones (a policy, a missing bucket, state that
// cannot be enumerated) are not worth the whole HYDRATE_TIMEOUT_SECONDS.
export class HydrateFailure extends Error {
  constructor(
    readonly kind: string,
    detail: string,
  ) {
    super(detail);
  }
}

export interface RemoteState {
  metadata: MetadataRead;
  listing: Listing;
}

function listingFix(target: RemoteTarget): string {
  const namespace = target.prefix.slice(0, target.prefix.indexOf('/'));
  return `listing denied: grant s3:ListBucket on arn:aws:s3:::${target.store.bucket} with condition s3:prefix "${namespace}/*"`;
}

// metadata.json, where a policy denies it rather than the key being missing.
type MetadataState = MetadataRead | { kind: 'denied'; error: unknown };

async function readMetadataState(target: RemoteTarget, signal: AbortSignal): Promise<MetadataState> {
  try {
    return await readMetadata(target, signal);
  } catch (error) {
    if (isStoreError(error, 'access-denied')) return { kind: 'denied', error };
    throw error;
  }
}

/**
 * What the remote state is, or a failure when it exists but cannot be enumerated. A
 * session starts fresh only when nothing says state exists: metadata.json is missing
 * (told apart from denied by what the policy allows, not by the status code) and the
 * listing, where permitted, is empty.
 */
export async function readRemoteState(target: RemoteTarget, log: AgentLog, signal: AbortSignal): Promise<RemoteState> {
  const [read, listing] = await Promise.all([readMetadataState(target, signal), listRemote(target, signal, { etags: true })]);
  const metadata = read.kind === 'denied' ? await deniedMetadata(target, log, listing, read.error, signal) : read;
  if (listing.kind === 'denied') {
    if (metadata.kind === 'invalid') {
      throw new HydrateFailure('state cannot be enumerated', `metadata.json unreadable: ${metadata.reason}; ${listingFix(target)}`);
    }
    if (metadata.kind === 'found' && metadata.metadata.manifest === undefined) {
      throw new HydrateFailure(
        'state cannot be enumerated',
        `metadata.json has no manifest (written by the platform's sync.sh); ${listingFix(target)}`,
      );
    }
  } else if (metadata.kind === 'invalid') {
    log.warn(`metadata.json is unreadable (${metadata.reason}): restoring from the listing`);
  }
  return { metadata, listing };
}

// metadata.json answered 403: missing, where the policy lets these credentials read what
// they write here; a denial otherwise.
async function deniedMetadata(target: RemoteTarget, log: AgentLog, listing: Listing, denial: unknown, signal: AbortSignal): Promise<MetadataRead> {
  // With s3:ListBucket, S3 answers 404 for a missing key: this 403 is a real denial.
  if (listing.kind === 'listed') throw denial;
  const probe = await probeAccess(target, signal);
  if (probe.kind === 'denied') {
    const granted = probe.step === 'write' ? 'neither read nor write' : 'write but not read';
    throw new HydrateFailure(
      'access denied',
      `reading metadata.json was refused, and these credentials may ${granted} objects under ${target.prefix}: grant s3:GetObject and s3:PutObject on arn:aws:s3:::${target.store.bucket}/${target.prefix}* (${describeFailure(probe.error)})`,
    );
  }
  if (probe.leftOver !== undefined) {
    log.warn(`could not delete the access probe under ${target.prefix}: ${describeFailure(probe.leftOver)}`);
  }
  log.detail('metadata.json answered 403 without s3:ListBucket; a probe object was written and read back: it is missing');
  return { kind: 'missing' };
}
