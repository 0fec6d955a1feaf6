import { describe, expect, it } from 'vitest';
import { forEachBounded } from '../../src/shared/pool.js';

describe('forEachBounded', () => {
  it('runs every item once with never more than the limit in flight', async () => {
    const items = Array.from({ length: 1000 }, (_, index) => index);
    const seen: number[] = [];
    let inFlight = 0;
    let highest = 0;
    await forEachBounded(items, 8, async (item) => {
      inFlight += 1;
      highest = Math.max(highest, inFlight);
      await new Promise((resolve) => setTimeout(resolve, item % 3));
      seen.push(item);
      inFlight -= 1;
    });
    expect(highest).toBe(8);
    expect([...seen].sort((a, b) => a - b)).toEqual(items);
  });

  it('starts items in list order as workers free up', async () => {
    const started: number[] = [];
    await forEachBounded([0, 1, 2, 3, 4], 2, async (item) => {
      started.push(item);
      await Promise.resolve();
    });
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it('handles an empty list and a limit above the item count', async () => {
    let calls = 0;
    await forEachBounded([], 4, async () => {
      calls += 1;
    });
    await forEachBounded(['only'], 32, async () => {
      calls += 1;
    });
    expect(calls).toBe(1);
  });
});
