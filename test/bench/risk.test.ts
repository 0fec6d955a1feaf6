import { describe, expect, it } from 'vitest';
import { riskTargets } from '../../bench/lib/report-risk.js';
import type { RiskReport, RiskRun } from '../../bench/risk-bench.js';
import { perHour, secondsAtRisk } from '../../bench/lib/risk.js';
import { percentile } from '../../bench/lib/stats.js';

describe('data at risk', () => {
  it('is, for each write, the time until S3 first answered with the file at least that long', () => {
    const writes = [
      { at: 0, length: 10 },
      { at: 2_000, length: 20 },
      { at: 4_000, length: 30 },
    ];
    const observations = [
      { at: 500, length: 0 },
      { at: 1_200, length: 10 },
      // An answer that was on its way before the write does not cover it.
      { at: 1_900, length: 20 },
      { at: 3_100, length: 20 },
      { at: 5_500, length: 30 },
    ];
    expect(secondsAtRisk(writes, observations)).toEqual([1.2, 1.1, 1.5]);
  });

  it('counts a write S3 never showed as never safe', () => {
    expect(secondsAtRisk([{ at: 0, length: 5 }], [{ at: 100, length: 4 }])).toEqual([Infinity]);
  });

  it('extrapolates a window to an hour', () => {
    expect(perHour(12, 300)).toBe(144);
  });

  it('takes percentiles by nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile([3, 1, 2], 99)).toBe(3);
    expect(() => percentile([], 50)).toThrow();
  });
});

describe('the data-at-risk targets', () => {
  const run = (id: string, every: number, idlePuts: number): RiskRun => ({
    id,
    name: id,
    settings: '',
    writes: [{ at: 0, length: 10 }, { at: 2_000, length: 20 }],
    observations: [{ at: every * 1000, length: 10 }, { at: 2_000 + every * 1000, length: 20 }],
    active: { seconds: 300, requests: { PutObject: 600 }, cpuSeconds: 9 },
    idle: { seconds: 300, requests: idlePuts > 0 ? { PutObject: idlePuts } : {}, cpuSeconds: 0.3 },
  });
  const report = (ours: RiskRun, before: RiskRun): RiskReport => ({
    activeSeconds: 300,
    idleSeconds: 300,
    writeEverySeconds: 2,
    pollMs: 100,
    syncIntervalSeconds: 60,
    tools: [ours, before],
  });

  it('judges p99 against 5 s, and the idle hour against the interval sweep give or take one renewal', () => {
    expect(riskTargets(report(run('ours', 1.2, 3), run('ours-interval', 30, 2)))).toEqual([
      '- data at risk p99 ≤ 5 s with the defaults: 1.2 s (p50 1.2 s) → **met**',
      '- an idle hour costs no more requests than the interval sweep alone (give or take one ownership renewal in the window, 12/hour): 36 vs 24 → **met**',
    ]);
    const [risk, idle] = riskTargets(report(run('ours', 6, 4), run('ours-interval', 30, 2)));
    expect(risk).toMatch(/6\.0 s .* → \*\*missed\*\*$/);
    expect(idle).toMatch(/48 vs 24 → \*\*missed\*\*$/);
  });
});
