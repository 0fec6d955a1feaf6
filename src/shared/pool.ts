// Runs `task` over `items` with at most `concurrency` in flight. Workers pull the next item
// when they finish one, so a cycle over 100,000 files holds `concurrency` promises, not
// one pending closure per file as mapping everything through p-limit did.
export async function forEachBounded<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
