// Waiting in tests on a condition rather than on the clock.
import { withTimeout } from "../../core/timeout";

/** Polls a condition on the event loop (no wall-clock assertion); fails after `limitMs`. */
export async function until(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Bounds a promise a client (AWS's device SDK) might leave pending: a test fails rather than hangs. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(p, ms, `timed out: ${what}`);
}
