// Where a benchmark process's memory goes: samples of process.memoryUsage() (V8 heap, memory
// outside it, array buffers) kept at the highest RSS, beside the kernel's own peak (VmHWM).
import { peakRssMiB, rssMiB } from "./stats";

/** One process.memoryUsage() reading, in MiB. */
export interface MemorySample {
  readonly rssMiB: number;
  readonly heapTotalMiB: number;
  readonly heapUsedMiB: number;
  /** C++ objects bound to JS objects (Node's TLS and stream wrappers count their buffers here). */
  readonly externalMiB: number;
  /** ArrayBuffers and Buffers, a part of `external`. */
  readonly arrayBuffersMiB: number;
}

const MiB = 2 ** 20;

export function memorySample(): MemorySample {
  const m = process.memoryUsage();
  return {
    rssMiB: m.rss / MiB,
    heapTotalMiB: m.heapTotal / MiB,
    heapUsedMiB: m.heapUsed / MiB,
    externalMiB: m.external / MiB,
    arrayBuffersMiB: m.arrayBuffers / MiB,
  };
}

/** Samples memory every `everyMs` between start() and stop(), keeping the sample of highest RSS. */
export class MemoryTracker {
  private timer?: NodeJS.Timeout;
  private best?: MemorySample;

  constructor(private readonly everyMs = 500) {}

  rssMiB(): number {
    return rssMiB();
  }

  peakRssMiB(): number {
    return peakRssMiB();
  }

  start(): void {
    this.sample();
    this.timer ??= setInterval(() => this.sample(), this.everyMs);
  }

  /** Takes a last sample and stops; a second stop() takes none. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  /** The sample of highest RSS so far (one taken now if none was). */
  atPeak(): MemorySample {
    return this.best ?? memorySample();
  }

  private sample(): void {
    const s = memorySample();
    if (!this.best || s.rssMiB > this.best.rssMiB) this.best = s;
  }
}
