import { describe, expect, it } from 'vitest';
import { median, medianIndex } from '../../bench/lib/stats.js';

describe('bench statistics', () => {
  it('takes the middle of an odd count and the mean of the middle pair of an even one', () => {
    expect(median([9, 1, 5])).toBe(5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('points at the run whose time is the median so its other figures are reported with it', () => {
    expect(medianIndex([30.1, 10.2, 20.3])).toBe(2);
  });

  it('refuses an empty series instead of reporting NaN', () => {
    expect(() => median([])).toThrow();
  });
});
