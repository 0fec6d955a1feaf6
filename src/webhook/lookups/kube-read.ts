import { ApiException } from '@kubernetes/client-node';
import { sleep } from '../../shared/sleep.js';

/**
 * Paces direct API reads to `perSecond` on average, in bursts of up to that many. A
 * caller may wait for its turn up to `maxWaitMs`; past that it gets no slot.
 */
export class RateLimiter {
  private readonly interval: number;
  private readonly burst: number;
  // The time at which the next read would be on schedule (GCRA's theoretical arrival time).
  private due = 0;

  constructor(perSecond: number) {
    this.interval = 1000 / perSecond;
    this.burst = Math.max(0, Math.ceil(perSecond) - 1) * this.interval;
  }

  /** Milliseconds to wait before reading, or undefined (and no slot taken) if over `maxWaitMs`. */
  reserve(maxWaitMs: number): number | undefined {
    const now = Date.now();
    const due = Math.max(this.due, now);
    const wait = Math.max(0, due - now - this.burst);
    if (wait > maxWaitMs) return undefined;
    this.due = due + this.interval;
    return wait;
  }
}

/** One GET bounded by a rate limit and a timeout that covers the wait for a slot too. */
export async function limitedRead<T>(
  limiter: RateLimiter,
  timeoutMs: number,
  read: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  const wait = limiter.reserve(timeoutMs);
  if (wait === undefined) throw new Error(`over the API read rate limit for ${timeoutMs} ms`);
  if (wait > 0) await sleep(wait);
  const left = timeoutMs - (Date.now() - started);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), Math.max(0, left));
  });
  try {
    return await Promise.race([read(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404;
}

/** The API server's own explanation (its Status message), e.g. which RBAC rule is missing. */
export function describeError(error: unknown): string {
  if (error instanceof ApiException) {
    const message = statusMessage(error.body);
    return `HTTP ${error.code}${message ? `: ${message}` : ''}`;
  }
  return error instanceof Error ? error.message : String(error);
}

// The generated client hands error bodies over as the raw response text.
function statusMessage(body: unknown): string | undefined {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  const message = (parsed as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}
