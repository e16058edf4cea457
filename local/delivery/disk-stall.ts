// Waiting out a journal that cannot be written (a full disk): the episode is logged and counted
// once, records wait unacknowledged, and every waiter tries again after retryMs or when the
// stream closes.

export class DiskStall {
  /** When the journal stopped being writable (undefined while it is). */
  private since: number | undefined;
  private readonly stallWaiters: Array<() => void> = [];
  /** Sleepers waiting to retry; wakeAll() (at close) wakes them. */
  private readonly retryWakers = new Set<() => void>();

  constructor(
    readonly retryMs: number,
    private readonly log: (line: string) => void,
    /** Counts an episode (the stream's journalStalls). */
    private readonly counted: () => void,
  ) {}

  /** Whether the journal cannot be written right now. */
  get now(): boolean {
    return this.since !== undefined;
  }

  /** Notes (once per episode) that the journal cannot be written; records wait meanwhile. */
  stalled(reason: string, where: string): void {
    if (this.since !== undefined) return;
    this.since = Date.now();
    for (const wake of this.stallWaiters.splice(0)) wake();
    this.counted();
    this.log(
      `delivery: ${reason} writing the journal in ${where}: publishes are not acknowledged until it can be written again (retrying every ${this.retryMs} ms)`,
    );
  }

  recovered(): void {
    if (this.since === undefined) return;
    const seconds = (Date.now() - this.since) / 1000;
    this.since = undefined;
    this.log(
      `delivery: the journal is writable again after ${seconds.toFixed(1)} s; acknowledging resumes`,
    );
  }

  /** Resolves once the journal cannot be written (now, or when that next happens). */
  whenStalled(): Promise<void> {
    if (this.since !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.stallWaiters.push(resolve));
  }

  /** Sleeps retryMs, or until wakeAll(). */
  waitToRetry(): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.retryWakers.delete(wake);
        resolve();
      };
      // Unlike the flush timer this one keeps the process alive: records wait on it.
      const timer = setTimeout(wake, this.retryMs);
      this.retryWakers.add(wake);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.retryWakers]) wake();
  }
}
