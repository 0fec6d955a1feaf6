import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/agent/hydrate.js';

describe('hydrate backoff', () => {
  it('waits a random time up to a ceiling that doubles from 1 s to at most 15 s (full jitter)', () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 10].map((attempt) => backoffDelay(attempt, () => 1));
    expect(ceilings).toEqual([1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000]);
    expect(backoffDelay(4, () => 0)).toBe(0);
    expect(backoffDelay(4, () => 0.5)).toBe(4_000);
  });
});
