// Making a fleet's per-thing resources a chunk at a time. A resource's registration holds a few
// dozen kilobytes of the SDK's promises and outputs until it completes; made all at once, a
// 10,000-thing stack held 60,000 of them (about 4 GiB under mocks), and the garbage collector's
// passes over that heap made the build grow faster than the fleet.
//
// The chunk is small enough that a chunk's registrations in flight (about 300 resources, their
// promises and outputs) fit in the young generation with room to spare, so most of them die there
// instead of being copied out by each scavenge: at 250 things a chunk (1,500 resources) a 10,000
// thing build spent 18-19 s of CPU, at 100 about 15 s, at 50 about 12 s, at 25 no less (issue 28,
// measured under `npm run check`'s --max-semi-space-size=64; docs/benchmarks.md, figure 4).

/** Things per chunk: about 300 resources in flight at a time. */
export const FLEET_CHUNK = 50;

/**
 * Calls `make` for each item, letting the event loop turn (one `setImmediate`) after every `size`
 * items, so that the registrations made so far can complete before the next chunk is made: under
 * mocks (`npm run check`, the tests, the bench) they do, and memory stays bounded; under the
 * engine it only changes when the later registrations are sent. The first chunk is made before
 * this returns, synchronously, so a fleet of up to `size` things is made in one pass, without a
 * turn of the event loop in between.
 * Settles once every item is made; rejects with the first error `make` throws.
 */
export async function inChunks<T>(
  items: readonly T[],
  make: (item: T) => void,
  size: number = FLEET_CHUNK,
): Promise<void> {
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && i % size === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    make(items[i]);
  }
}
