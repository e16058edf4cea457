// `npm run simulate -- --basic-ingest`: the devices publish to $aws/rules/<rule>/<topic>, which
// reaches the stack's rule with the prefix stripped and no subscriber
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html), under the
// tutorial policy (dev) and the least-privilege one (prod), which then grants that topic only.
import * as assert from "node:assert/strict";
import { parseSimulateArgs } from "../../simulator/cli";
import { simulate } from "../../simulator/simulate";
import { tempDir } from "../helpers/temp";

describe("simulate --basic-ingest (iot-basic-ingest.html)", function () {
  this.timeout(120_000);

  const cases: ReadonlyArray<readonly [string, number, readonly string[]]> = [
    ["dev", 1, []],
    ["prod", 3, []],
    // Fleet provisioning: the devices provision themselves by claim, then publish.
    ["fleet", 4, ["--provision"]],
  ];
  for (const [stack, devices, extra] of cases) {
    it(`${stack}: every record published by Basic Ingest is delivered`, async () => {
      const opts = parseSimulateArgs([
        ...[
          "--stack",
          stack,
          "--basic-ingest",
          "--count",
          "4",
          "--rate",
          "20",
          "--fast",
          "--no-probe",
        ],
        ...extra,
        ...["--state-dir", tempDir(`basic-ingest-${stack}`)],
      ]);
      assert.ok(opts !== "help");
      assert.equal(opts.basicIngest, true);
      const lines: string[] = [];
      const code = await simulate(opts, { line: (l) => void lines.push(l), progress: () => {} });
      const text = lines.join("\n");
      assert.equal(code, 0, text);
      assert.match(text, /publishing: .* to \$aws\/rules\/sensor_rule\/SeattleStoreTemp\//);
      const n = 4 * devices;
      assert.match(text, new RegExp(`^  acknowledged \\(PUBACK\\)\\s+${n}$`, "m"));
      assert.match(text, new RegExp(`^  matched by rule sensor_rule\\s+${n}\\b`, "m"));
      assert.match(text, new RegExp(`^  records delivered\\s+${n}$`, "m"));
    });
  }

  it("--basic-ingest is a flag: without it the stack's basicIngest decides", () => {
    const opts = parseSimulateArgs(["--stack", "prod"]);
    assert.ok(opts !== "help");
    assert.equal(opts.basicIngest, undefined);
  });
});
