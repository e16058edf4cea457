// The publish rate limit (AWS IoT: about 100 publishes per second per connection), on a fake clock.
import * as assert from "node:assert/strict";
import { PUBLISHER_DEFAULTS, RateLimiter } from "../../device/publisher";

/** How many publishes the limiter lets through in `ms` of fake time, polling every millisecond. */
function admitted(limiter: RateLimiter, clock: { t: number }, ms: number): number {
  let n = 0;
  const end = clock.t + ms;
  while (clock.t < end) {
    if (limiter.take() === 0) n++;
    else clock.t += 1;
  }
  return n;
}

describe("publish rate limit", () => {
  it("by default admits AWS IoT's 100 publishes per second per connection, over many seconds", () => {
    // https://docs.aws.amazon.com/general/latest/gr/iot-core.html: "Publish requests per second
    // per connection: 100". The publisher's default, exercised on a fake clock.
    const clock = { t: 0 };
    const limiter = new RateLimiter(PUBLISHER_DEFAULTS.rateLimit, () => clock.t);
    admitted(limiter, clock, 1000); // past the first second's burst
    assert.equal(admitted(limiter, clock, 60_000), 100 * 60);
  });

  it("admits at most rate + burst in any second, and keeps the rate over many seconds", () => {
    const clock = { t: 0 };
    const limiter = new RateLimiter(100, () => clock.t);
    assert.equal(limiter.capacity, 5);
    const first = admitted(limiter, clock, 1000);
    assert.ok(first <= 105 && first >= 100, `first second: ${first}`);
    const next10 = admitted(limiter, clock, 10_000);
    assert.ok(Math.abs(next10 - 1000) <= 5, `10 s: ${next10}`);
  });

  it("says how long to wait when the bucket is empty", () => {
    const clock = { t: 0 };
    const limiter = new RateLimiter(10, () => clock.t);
    assert.equal(limiter.take(), 0); // the burst of 1
    assert.equal(limiter.take(), 100);
    clock.t += 100;
    assert.equal(limiter.take(), 0);
  });

  it("is off at rate 0 (the benchmark's unlimited mode)", () => {
    const clock = { t: 0 };
    const limiter = new RateLimiter(0, () => clock.t);
    for (let i = 0; i < 10_000; i++) assert.equal(limiter.take(), 0);
  });
});
