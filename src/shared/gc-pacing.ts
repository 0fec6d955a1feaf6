import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/*
 * A restore streams hundreds of MiB through fresh Buffers (one per socket read) and makes
 * a few objects per request. They die at once, but V8 frees them only when a generation
 * fills or external memory has grown by some 64 MiB, and buffers still being written when
 * a scavenge runs are promoted and then wait for a full GC. A full GC at most every
 * MIN_INTERVAL_MS while data streams lowers a crashed pod's restore's peak RSS below what
 * a minor GC every few MiB streamed gave (docs/BENCHMARKS.md). The interval grows with
 * the time a collection takes, so a large heap spends at most 1/TIME_SHARE of the restore
 * collecting.
 * The gc function comes from V8's own flag; where it is unavailable this does nothing.
 */
const MIN_INTERVAL_MS = 250;
const TIME_SHARE = 10;

type Collect = (options: { type: 'major' }) => void;

let collect: Collect | null | undefined;
let next = 0;

function collector(): Collect | null {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  return collect;
}

/** Called as restored bytes pass through short-lived buffers; collects when it is time. */
export function streamedThrough(): void {
  const now = performance.now();
  if (now < next) return;
  const gc = collector();
  if (gc === null) return;
  gc({ type: 'major' });
  const took = performance.now() - now;
  next = now + took + Math.max(MIN_INTERVAL_MS, took * TIME_SHARE);
}
