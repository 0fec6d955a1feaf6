import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/*
 * A restore streams hundreds of MiB through fresh Buffers (one per socket read). They die
 * at once, but V8 frees their memory only when the young generation fills or external
 * memory has grown by some 64 MiB, so a restore of ten 32 MiB files kept about 80 MiB of
 * dead buffers (measured: peak RSS 209 MiB against 150 MiB with this, same time). A minor
 * GC (a scavenge, about a millisecond) every RELEASE_EVERY bytes frees them as they go.
 * The gc function comes from V8's own flag; where it is unavailable this does nothing.
 */
const RELEASE_EVERY = 8 * 2 ** 20;

type Collect = (options: { type: 'minor' }) => void;

let collect: Collect | null | undefined;
let streamed = 0;

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

/** Counts bytes that passed through short-lived buffers; scavenges every RELEASE_EVERY. */
export function streamedThrough(bytes: number): void {
  streamed += bytes;
  if (streamed < RELEASE_EVERY) return;
  streamed = 0;
  collector()?.({ type: 'minor' });
}
