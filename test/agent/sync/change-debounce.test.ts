import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChangeDebounce } from '../../../src/agent/sync/change-debounce.js';

// When the changes a sidecar sees are due for a cycle: the pure timing, on fake timers.
describe('change debounce', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const debounce = () => new ChangeDebounce({ quietMs: 1_000, maxWaitMs: 60_000 });

  it('makes a burst of changes one cycle, due once they have been quiet for the debounce', () => {
    const changes = debounce();
    changes.changed();
    vi.advanceTimersByTime(400);
    changes.changed();
    vi.advanceTimersByTime(400);
    changes.changed();
    expect(changes.dueAt()).toBe(1_800);
    vi.advanceTimersByTime(999);
    expect(changes.due.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(changes.due.aborted).toBe(true);
  });

  it('is never due without a change', () => {
    const changes = debounce();
    vi.advanceTimersByTime(3_600_000);
    expect(changes.dueAt()).toBeUndefined();
    expect(changes.due.aborted).toBe(false);
  });

  it('falls due at the maximum wait after the first change when the writer never pauses', () => {
    const changes = debounce();
    let dueAt: number | undefined;
    for (let t = 0; t < 120_000; t += 500) {
      changes.changed();
      if (changes.due.aborted && dueAt === undefined) dueAt = Date.now();
      vi.advanceTimersByTime(500);
    }
    expect(dueAt).toBe(60_000);
  });

  it('gives the changes seen before a cycle to that cycle, and those during it to the next', () => {
    const changes = debounce();
    changes.changed();
    vi.advanceTimersByTime(1_000);
    expect(changes.due.aborted).toBe(true);

    changes.cycleStarting();
    expect(changes.due.aborted).toBe(false);
    expect(changes.dueAt()).toBeUndefined();
    vi.advanceTimersByTime(100);
    changes.changed();
    // Nothing falls due while the cycle runs, even once the changes have settled.
    vi.advanceTimersByTime(2_000);
    expect(changes.due.aborted).toBe(false);
    changes.cycleEnded(300);
    vi.advanceTimersByTime(299);
    expect(changes.due.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(changes.due.aborted).toBe(true);
  });

  it('after a cycle, waits at least as long as that cycle took before the next', () => {
    const changes = debounce();
    changes.cycleStarting();
    vi.advanceTimersByTime(5_000);
    changes.cycleEnded(5_000);
    changes.changed();
    vi.advanceTimersByTime(1_000);
    expect(changes.due.aborted).toBe(false);
    expect(changes.dueAt()).toBe(10_000);
    vi.advanceTimersByTime(4_000);
    expect(changes.due.aborted).toBe(true);
  });

  it('a cycle with nothing seen during it leaves nothing due', () => {
    const changes = debounce();
    changes.changed();
    changes.cycleStarting();
    changes.cycleEnded(200);
    vi.advanceTimersByTime(120_000);
    expect(changes.due.aborted).toBe(false);
  });

  it('stops its timer when closed', () => {
    const changes = debounce();
    changes.changed();
    changes.close();
    vi.advanceTimersByTime(120_000);
    expect(changes.due.aborted).toBe(false);
  });
});
