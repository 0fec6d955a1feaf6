import { describe, expect, it } from 'vitest';
import { backoffDelayMs, backoffCeilingMs } from '../../src/shared/backoff.js';
import { HYDRATE_BACKOFF } from '../../src/agent/hydrate/hydrate.js';
import { SYNC_BACKOFF } from '../../src/agent/sync/loop.js';

const policy = { baseMs: 1_000, capMs: 300_000 };

describe('backoff with full jitter', () => {
  it('draws uniformly between 0 and a ceiling that doubles from the base', () => {
    expect([1, 2, 3, 4].map((attempt) => backoffCeilingMs(attempt, policy))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffDelayMs(3, { ...policy, random: () => 0 })).toBe(0);
    expect(backoffDelayMs(3, { ...policy, random: () => 0.5 })).toBe(2000);
    expect(backoffDelayMs(3, { ...policy, random: () => 0.999999 })).toBeLessThan(4000);
    expect(backoffDelayMs(3, { ...policy, random: () => 0.999999 })).toBeGreaterThan(3990);
  });

  it('never exceeds the cap, however many failures (no overflow to Infinity or NaN)', () => {
    for (const attempt of [10, 11, 30, 1_000, 100_000]) {
      expect(backoffCeilingMs(attempt, policy)).toBe(300_000);
      expect(backoffDelayMs(attempt, { ...policy, random: () => 0.999999 })).toBeLessThan(300_000);
    }
    expect(backoffCeilingMs(0, policy)).toBe(1000);
  });

  it('spreads sidecars that failed together: the sync loop retries at random points, not in lockstep', () => {
    const delays = Array.from({ length: 200 }, () => backoffDelayMs(6, SYNC_BACKOFF));
    const ceiling = backoffCeilingMs(6, SYNC_BACKOFF);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(ceiling);
    }
    expect(new Set(delays).size).toBeGreaterThan(150);
    // Roughly uniform: both halves of the window get a fair share.
    expect(delays.filter((delay) => delay < ceiling / 2).length).toBeGreaterThan(50);
    expect(delays.filter((delay) => delay >= ceiling / 2).length).toBeGreaterThan(50);
  });

  it('hydrate retries with the same helper: a ceiling doubling from 1 s to at most 15 s', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 10].map((attempt) => backoffCeilingMs(attempt, HYDRATE_BACKOFF));
    expect(ceilings).toEqual([1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000]);
    expect(backoffDelayMs(4, { ...HYDRATE_BACKOFF, random: () => 0 })).toBe(0);
    expect(backoffDelayMs(4, { ...HYDRATE_BACKOFF, random: () => 0.5 })).toBe(4_000);
  });
});
