/*
 * state-sync's liveness, on both sides of the env contract: the agent's /healthz fails past
 * the threshold, and the webhook's probe turns that into a restart the pod shows.
 */

// This many intervals without a successful cycle, and never less than
// SYNC_UNHEALTHY_MIN_SECONDS, so a short S3 blip on a fast interval does not restart it.
const UNHEALTHY_INTERVALS = 5;

/** How long state-sync may go without a successful cycle before its /healthz fails. */
export function unhealthyAfterSeconds(syncIntervalSeconds: number, minSeconds: number): number {
  return Math.max(minSeconds, UNHEALTHY_INTERVALS * syncIntervalSeconds);
}

const PROBE_FAILURES = 3;
const PROBE_PERIOD_MAX_SECONDS = 30;
const PROBE_TIMEOUT_MAX_SECONDS = 5;

/**
 * The liveness probe's timing for a threshold: three failures 30 s apart at the default
 * threshold (300 s); a lower threshold shortens the period with it (a tenth of it, at least
 * 1 s), so the restart follows a short threshold by seconds rather than by a minute or more.
 */
export function livenessProbeTiming(thresholdSeconds: number): { periodSeconds: number; timeoutSeconds: number; failureThreshold: number } {
  const periodSeconds = Math.min(PROBE_PERIOD_MAX_SECONDS, Math.max(1, Math.ceil(thresholdSeconds / 10)));
  return { periodSeconds, timeoutSeconds: Math.min(PROBE_TIMEOUT_MAX_SECONDS, periodSeconds), failureThreshold: PROBE_FAILURES };
}
