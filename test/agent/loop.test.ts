import { describe, expect, it } from 'vitest';
import { failureDelayMs } from '../../src/agent/loop.js';

describe('sync backoff', () => {
  it('doubles from one second and is capped at five minutes', () => {
    expect([1, 2, 3, 4].map(failureDelayMs)).toEqual([1000, 2000, 4000, 8000]);
    expect(failureDelayMs(30)).toBe(300_000);
  });
});
