// Waiting in tests on a condition rather than on the clock.

/** Polls a condition on the event loop (no wall-clock assertion); fails after `limitMs`. */
export async function until(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
