export interface BackoffPolicy {
  // Ceiling of the first retry's delay; it doubles with each further failure.
  baseMs: number;
  capMs: number;
  // Injected by tests; Math.random otherwise.
  random?: () => number;
}

/** The upper bound of the delay before retry number `attempt` (1 = first retry). */
export function backoffCeilingMs(attempt: number, policy: BackoffPolicy): number {
  // The exponent is clamped so thousands of failures cannot overflow to Infinity.
  const exponent = Math.min(Math.max(0, attempt - 1), 30);
  return Math.min(policy.baseMs * 2 ** exponent, policy.capMs);
}

/**
 * "Full jitter": a delay drawn uniformly from [0, ceiling). After an S3 outage hundreds
 * of sidecars fail at the same moment; with plain exponential delays they would all retry
 * at the same moments too, and the recovering server would see each wave at once.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy): number {
  const random = policy.random ?? Math.random;
  return Math.floor(random() * backoffCeilingMs(attempt, policy));
}
