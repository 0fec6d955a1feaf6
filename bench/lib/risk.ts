/*
 * Data at risk: how long each write of an append-only file stayed only on the node. The
 * writer records when each append finished and the file's length after it; a poller
 * records the length S3 answers for the object. A write is safe from the first answer at
 * least as long as the file was after it (the object is the whole file: its bytes are in
 * S3 from then on).
 */

export interface Write {
  // ms, when the append returned.
  at: number;
  // The file's length after it.
  length: number;
}

export interface Observation {
  // ms, when S3's answer arrived.
  at: number;
  // The object's length then (0 while it does not exist).
  length: number;
}

/** Seconds each write waited for S3 (in order); Infinity for one no observation covered. */
export function secondsAtRisk(writes: readonly Write[], observations: readonly Observation[]): number[] {
  const seen = [...observations].sort((a, b) => a.at - b.at);
  return writes.map((write) => {
    const safe = seen.find((observation) => observation.at >= write.at && observation.length >= write.length);
    return safe === undefined ? Infinity : (safe.at - write.at) / 1000;
  });
}

/** Per hour, from what a window of `seconds` measured. */
export function perHour(value: number, seconds: number): number {
  return (value * 3600) / seconds;
}
