/** What the sync loop asks of the change watching between its cycles. */
export interface ChangeTrigger {
  // Aborted once the changes seen are due for a cycle.
  readonly due: AbortSignal;
  // A cycle starts: the changes seen so far are its to pick up.
  cycleStarting(): void;
  cycleEnded(durationMs: number): void;
}

export interface ChangeDebounceOptions {
  quietMs: number;
  maxWaitMs: number;
  now?: () => number;
}

/**
 * When changes to the sync paths are due for a cycle: once they have settled for `quietMs`
 * (a burst of writes becomes one cycle), and never later than `maxWaitMs` after the first
 * change no cycle has picked up yet, so a writer that never pauses cannot hold the sync
 * off. After a cycle, the next one waits at least as long as that cycle took: a tree whose
 * walk takes seconds, changed every few seconds, keeps the sidecar busy half the time at
 * most rather than all of it.
 */
export class ChangeDebounce implements ChangeTrigger {
  private firstPending: number | undefined;
  private lastChange = 0;
  private restUntil = 0;
  // While a cycle runs nothing falls due: its length, the next rest, is not known yet.
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private dueController = new AbortController();
  private readonly now: () => number;

  constructor(private readonly options: ChangeDebounceOptions) {
    this.now = options.now ?? Date.now;
  }

  get due(): AbortSignal {
    return this.dueController.signal;
  }

  changed(): void {
    const now = this.now();
    this.firstPending ??= now;
    this.lastChange = now;
    // One timer at a time: when it fires early (more changes came), it is set again for
    // the rest, so a burst of events costs no timer each.
    if (!this.running && this.timer === undefined && !this.due.aborted) this.arm(now);
  }

  cycleStarting(): void {
    this.firstPending = undefined;
    this.running = true;
    this.stopTimer();
    if (this.due.aborted) this.dueController = new AbortController();
  }

  cycleEnded(durationMs: number): void {
    const now = this.now();
    this.running = false;
    this.restUntil = now + durationMs;
    if (!this.due.aborted) this.arm(now);
  }

  /** When the pending changes are due, or undefined when there are none. */
  dueAt(): number | undefined {
    if (this.firstPending === undefined) return undefined;
    const settled = Math.min(this.lastChange + this.options.quietMs, this.firstPending + this.options.maxWaitMs);
    return Math.max(settled, this.restUntil);
  }

  close(): void {
    this.stopTimer();
  }

  private arm(now: number): void {
    const at = this.dueAt();
    if (at === undefined) return;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - now));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.now();
    const at = this.dueAt();
    if (at === undefined) return;
    if (now < at) this.arm(now);
    else this.dueController.abort();
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
