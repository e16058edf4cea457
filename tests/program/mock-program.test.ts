// tools/mock-program.ts's own behaviour: what a mocked run changes in the SDK while it runs, and
// that it puts everything back.
import { strict as assert } from "node:assert";
import { createRequire } from "node:module";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { runProgram } from "../../tools/mock-program";

const sdk = createRequire(createRequire(__filename).resolve("@pulumi/pulumi"));
const debuggable = sdk("./runtime/debuggable") as { debuggablePromise: unknown };
const resource = pulumi.Resource as unknown as { callsites: unknown };

/** Counts the debug properties the SDK gives its promises while `body` runs. */
async function debugPropertiesDuring(body: () => Promise<unknown>): Promise<number> {
  const define = Object.defineProperty;
  let n = 0;
  Object.defineProperty = function <T>(o: T, key: PropertyKey, d: PropertyDescriptor): T {
    if (o instanceof Promise && key === "_debugStackTrace") n++;
    return define(o, key, d);
  } as typeof Object.defineProperty;
  try {
    await body();
  } finally {
    Object.defineProperty = define;
  }
  return n;
}

const things = (n: number) => () => {
  for (let i = 0; i < n; i++) new aws.iot.Thing(`t${i}`, { name: `t${i}` });
  return {};
};

describe("tools/mock-program.ts: the SDK during a mocked run", () => {
  it("gives the SDK's promises no debug stack traces (a tenth of a 10,000-thing build's CPU), unless PULUMI_DEBUG_PROMISE_LEAKS asks", async () => {
    const lean = await debugPropertiesDuring(() => runProgram("dev", { program: things(20) }));
    // The first call is the SDK's own: it schedules the SDK's leak report at exit.
    assert.ok(lean <= 1, `${lean} promises got a debug stack trace`);
    process.env.PULUMI_DEBUG_PROMISE_LEAKS = "1";
    try {
      const own = await debugPropertiesDuring(() => runProgram("dev", { program: things(20) }));
      assert.ok(own > 100, `with PULUMI_DEBUG_PROMISE_LEAKS the SDK's own: ${own}`);
    } finally {
      delete process.env.PULUMI_DEBUG_PROMISE_LEAKS;
    }
  });

  it("puts the SDK's own functions back after the run", async () => {
    const ownDebuggable = debuggable.debuggablePromise;
    const ownCallsites = resource.callsites;
    const run = runProgram("dev", { program: things(3) });
    assert.notEqual(debuggable.debuggablePromise, ownDebuggable, "replaced while running");
    assert.notEqual(resource.callsites, ownCallsites, "replaced while running");
    await run;
    assert.equal(debuggable.debuggablePromise, ownDebuggable);
    assert.equal(resource.callsites, ownCallsites);
  });
});
