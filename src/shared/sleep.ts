/**
 * Waits `ms`, or less when `signal` aborts: a shutdown must leave a wait at once, and
 * resolving (rather than rejecting like timers/promises does) lets the caller simply
 * check why it woke up.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    }
    signal?.addEventListener('abort', finish, { once: true });
  });
}
