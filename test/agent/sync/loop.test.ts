import { describe, expect, it } from 'vitest';
import { runSyncLoop } from '../../../src/agent/sync/loop.js';
import type { CycleResult } from '../../../src/agent/sync/sync.js';
import { captureLog } from '../support/helpers.js';

const failed: CycleResult = { ok: false, uploaded: 0, uploadedBytes: 0, deleted: 0, unchanged: 0, skipped: 0, failed: 1 };
const succeeded: CycleResult = { ...failed, ok: true, failed: 0 };

interface Call {
  final: boolean;
  startedAt: number;
  abortedAt?: number;
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('sync loop shutdown', () => {
  it('on the first signal abandons the running cycle and starts the final sync at once, bounded by its budget', async () => {
    const calls: Call[] = [];
    // Every cycle hangs (a hung S3 request) until its signal aborts it.
    const cycle = (signal: AbortSignal, final: boolean) =>
      new Promise<CycleResult>((resolve) => {
        const call: Call = { final, startedAt: Date.now() };
        calls.push(call);
        const abort = () => {
          call.abortedAt = Date.now();
          resolve(failed);
        };
        if (signal.aborted) abort();
        signal.addEventListener('abort', abort);
      });
    const log = captureLog();
    const loop = runSyncLoop({
      intervalSeconds: 3600,
      finalSyncTimeoutSeconds: 1,
      log,
      cycle,
      abortNow: () => undefined,
      signals: ['SIGUSR2'],
    });
    await until(() => calls.length === 1);
    const signalled = Date.now();
    process.emit('SIGUSR2', 'SIGUSR2');
    expect(await loop).toBe(false);
    expect(calls.map((call) => call.final)).toEqual([false, true]);
    const [regular, final] = calls as [Call, Call];
    expect((regular.abortedAt ?? Infinity) - signalled).toBeLessThan(100);
    expect(final.startedAt - signalled).toBeLessThan(100);
    expect((final.abortedAt ?? 0) - signalled).toBeGreaterThanOrEqual(950);
    expect((final.abortedAt ?? Infinity) - signalled).toBeLessThan(1_500);
    expect(log.text()).toContain('final sync did not finish within FINAL_SYNC_TIMEOUT_SECONDS (1s)');
  });

  it('leaves a backoff wait at once and exits true when the final sync succeeds', async () => {
    const calls: Call[] = [];
    let finalOk = false;
    const cycle = async (_signal: AbortSignal, final: boolean) => {
      calls.push({ final, startedAt: Date.now() });
      if (final) finalOk = true;
      return final ? succeeded : failed;
    };
    const loop = runSyncLoop({
      intervalSeconds: 3600,
      finalSyncTimeoutSeconds: 5,
      log: captureLog(),
      cycle,
      abortNow: () => undefined,
      signals: ['SIGUSR2'],
    });
    await until(() => calls.length >= 2);
    const signalled = Date.now();
    process.emit('SIGUSR2', 'SIGUSR2');
    expect(await loop).toBe(true);
    expect(finalOk).toBe(true);
    expect((calls.at(-1)?.startedAt ?? Infinity) - signalled).toBeLessThan(100);
  });
});
