import { describe, expect, it } from 'vitest';
import { LEASE_KEY, manifestIsCurrent, waitVerdict } from '../../../src/agent/state/lease.js';
import type { PutBody, PutOptions, PutResult } from '../../../src/agent/store/store.js';
import { takeOwnership } from '../../../src/agent/hydrate/take-ownership.js';
import { captureLog } from '../support/helpers.js';
import { MEMORY_PREFIX } from '../support/memory-pod.js';
import { MemoryStore } from '../support/memory-store.js';

const signal = new AbortController().signal;
const settings = { leaseTtlSeconds: 300, terminationGraceSeconds: 120, hydrateTimeoutSeconds: 5 };

describe('waiting for the previous owner (waitVerdict)', () => {
  const body = { ttlSeconds: 300, graceSeconds: 120 };
  it.each([
    ['renewed a moment ago, waited 10 s', { firstSeenMs: 0, changedMs: 5_000 }, 10_000, 'wait'],
    ['silent for its whole TTL', { firstSeenMs: 0, changedMs: 0 }, 300_000, 'silent'],
    ['still renewing after the waiter waited its grace period', { firstSeenMs: 0, changedMs: 119_000 }, 120_000, 'outlived'],
    ['silent and outlived: silence is named first', { firstSeenMs: 0, changedMs: 0 }, 400_000, 'silent'],
    ['a second short of the grace period', { firstSeenMs: 0, changedMs: 100_000 }, 119_000, 'wait'],
  ] as const)('%s', (_name, watch, now, verdict) => {
    expect(waitVerdict(body, { etag: '"e"', ...watch }, now)).toBe(verdict);
  });
});

describe('whether metadata.json is the whole truth (manifestIsCurrent)', () => {
  it.each([
    ['no cycle began under the lease', undefined, undefined, true],
    ['no cycle began, an older manifest with a generation', undefined, 'g1', true],
    ['the manifest completes the lease generation', 'g2', 'g2', true],
    ['a cycle began after the manifest was written', 'g3', 'g2', false],
    ['a manifest from before generations (agent 0.1, rclone)', 'g1', undefined, false],
  ] as const)('%s', (_name, lease, manifest, current) => {
    expect(manifestIsCurrent({ generation: lease }, manifest)).toBe(current);
  });
});

// A store like some S3-compatible servers: If-Match and If-None-Match are ignored.
class UnconditionalStore extends MemoryStore {
  override put(key: string, body: PutBody, options: PutOptions, signal: AbortSignal): Promise<PutResult> {
    const { ifMatch: _ifMatch, ifNoneMatch: _ifNoneMatch, ...unconditional } = options;
    return super.put(key, body, unconditional, signal);
  }
}

describe('taking ownership', () => {
  it('detects a store that ignores conditional writes and says once what is then not guaranteed', async () => {
    const store = new UnconditionalStore();
    const log = captureLog();
    const target = { store, prefix: MEMORY_PREFIX };
    const owned = await takeOwnership({ target, settings, identity: { uid: 'pod-a' }, log }, signal);
    expect(owned.conditional).toBe(false);
    expect(log.text()).toContain('this S3 endpoint ignores conditional writes (If-Match and If-None-Match): two pods of one session can both act as its owner');
    // The probes rewrote the lease with its own body.
    expect(JSON.parse(store.text(MEMORY_PREFIX + LEASE_KEY) ?? '{}')).toMatchObject({ owner: 'pod-a', state: 'active' });
  });

  it('finds conditional writes honoured by a store that checks them', async () => {
    const store = new MemoryStore();
    const log = captureLog();
    const owned = await takeOwnership({ target: { store, prefix: MEMORY_PREFIX }, settings, identity: { uid: 'pod-a' }, log }, signal);
    expect(owned).toMatchObject({ conditional: true, from: 'new' });
    expect(log.text()).not.toContain('ignores conditional writes');
  });

  it('of two pods racing for a released session, exactly one wins; the other then waits for the winner', async () => {
    const store = new MemoryStore();
    const target = { store, prefix: MEMORY_PREFIX };
    const log = captureLog();
    const short = { ...settings, terminationGraceSeconds: 0.3 };
    const first = await takeOwnership({ target, settings: short, identity: { uid: 'first' }, log }, signal);
    await store.put(MEMORY_PREFIX + LEASE_KEY, JSON.stringify({ ...first.body, state: 'released' }), {}, signal);
    const [a, b] = await Promise.all([
      takeOwnership({ target, settings: short, identity: { uid: 'pod-a' }, log, pollMs: 20 }, signal),
      takeOwnership({ target, settings: short, identity: { uid: 'pod-b' }, log, pollMs: 20 }, signal),
    ]);
    // Both read the same released lease; the conditional write let one of them take it.
    // The other read the winner's lease, waited out its 0.3 s grace period and took it
    // from the winner, not from `first`.
    const [winner, loser] = a.from === 'released' ? [a, b] : [b, a];
    expect(winner).toMatchObject({ from: 'released', previous: { owner: 'first' } });
    expect(loser).toMatchObject({ from: 'outlived', previous: { owner: winner.body.owner } });
  });
});
