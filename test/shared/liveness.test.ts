import { describe, expect, it } from 'vitest';
import { livenessProbeTiming, unhealthyAfterSeconds } from '../../src/shared/liveness.js';

describe("state-sync's liveness", () => {
  it('fails after 5 intervals without a successful cycle, never sooner than the floor', () => {
    expect(unhealthyAfterSeconds(60, 300)).toBe(300);
    expect(unhealthyAfterSeconds(120, 300)).toBe(600);
    expect(unhealthyAfterSeconds(3, 300)).toBe(300);
    expect(unhealthyAfterSeconds(3, 10)).toBe(15);
    expect(unhealthyAfterSeconds(1.5, 1)).toBe(7.5);
  });

  it('probes three times, every 30 s at the default threshold and every tenth of a shorter one', () => {
    expect(livenessProbeTiming(300)).toEqual({ periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 });
    expect(livenessProbeTiming(3000)).toEqual({ periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 });
    expect(livenessProbeTiming(100)).toEqual({ periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 });
    expect(livenessProbeTiming(15)).toEqual({ periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 });
    expect(livenessProbeTiming(5)).toEqual({ periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 });
  });
});
