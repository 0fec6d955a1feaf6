import { describe, expect, it } from 'vitest';
import { applyBudget } from '../../../src/agent/sync/budget.js';

describe('MAX_SYNC_SIZE budget', () => {
  it('admits everything that fits', () => {
    const files = [{ key: 'a', size: 10 }, { key: 'b', size: 20 }];
    expect(applyBudget(files, 30)).toEqual({ admitted: files, skipped: [] });
  });

  it('skips the largest files first and says why', () => {
    const result = applyBudget(
      [
        { key: 'artifacts/big.bin', size: 600 },
        { key: '.claude/history.jsonl', size: 100 },
        { key: 'uploads/medium.pdf', size: 300 },
        { key: 'uploads/huge.iso', size: 5000 },
      ],
      500,
    );
    expect(result.admitted.map((file) => file.key)).toEqual(['.claude/history.jsonl', 'uploads/medium.pdf']);
    expect(result.skipped).toEqual([
      { path: 'artifacts/big.bin', size: 600, reason: 'MAX_SYNC_SIZE' },
      { path: 'uploads/huge.iso', size: 5000, reason: 'MAX_SYNC_SIZE' },
    ]);
  });

  it('is stable: equal sizes are ordered by path', () => {
    const result = applyBudget(
      [
        { key: 'b', size: 5 },
        { key: 'a', size: 5 },
      ],
      5,
    );
    expect(result.admitted.map((file) => file.key)).toEqual(['a']);
    expect(result.skipped.map((file) => file.path)).toEqual(['b']);
  });
});
