import type { SkippedFile } from '../state/metadata.js';

export interface Sized {
  key: string;
  size: number;
}

export interface BudgetResult<T extends Sized> {
  admitted: T[];
  skipped: SkippedFile[];
}

export const BUDGET_REASON = 'MAX_SYNC_SIZE';

// MAX_SYNC_SIZE caps the total bytes kept in S3 for a session. Policy: files are admitted
// smallest first (ties by path), so the budget saves as many files as possible and the
// largest files are the ones skipped. A skipped file is never deleted remotely; an older
// copy already in S3 stays there.
export function applyBudget<T extends Sized>(files: readonly T[], maxBytes: number): BudgetResult<T> {
  const ordered = [...files].sort((a, b) => a.size - b.size || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const admitted: T[] = [];
  const skipped: SkippedFile[] = [];
  let total = 0;
  for (const file of ordered) {
    if (total + file.size <= maxBytes) {
      total += file.size;
      admitted.push(file);
    } else {
      skipped.push({ path: file.key, size: file.size, reason: BUDGET_REASON });
    }
  }
  return { admitted, skipped };
}
