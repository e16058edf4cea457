// index.ts, the entry point the Pulumi CLI runs, reads its config through pulumi.Config (values as
// the CLI's text, objects as JSON) and exports the same outputs buildPipeline returns.
import { strict as assert } from "node:assert";
import { runProgram } from "../../tools/mock-program";

describe("program: index.ts, the entry point", () => {
  it("builds prod from the CLI's config text and exports every output", async () => {
    // What a prod deployment must name besides the committed file (core/deploy-readiness.ts).
    const overrides = { alarmEmail: "ops@example.com" };
    const direct = await runProgram("prod", { overrides });
    const viaIndex = await runProgram("prod", { viaIndex: true, overrides });
    assert.deepEqual(Object.keys(viaIndex.outputs).sort(), Object.keys(direct.outputs).sort());
    assert.deepEqual(
      viaIndex.resources.map((r) => `${r.type} ${r.name}`).sort(),
      direct.resources.map((r) => `${r.type} ${r.name}`).sort(),
    );
    assert.equal(viaIndex.outputs.ruleName, "sensor_rule");
    assert.deepEqual(viaIndex.outputs.thingNames, [
      "store-sensor-seattle1",
      "store-sensor-seattle2",
      "store-sensor-seattle3",
    ]);
  });
});
