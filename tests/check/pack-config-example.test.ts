// The pack config example in docs/policy-pack.md does what its text says: every policy mandatory
// outside the dev stacks, `sandbox` a dev stack too, and the tutorial's shortcuts advisory there.
// The example is read from the page itself, so the page cannot drift from what the pack does.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";
import { runProgram } from "../../tools/mock-program";
import { resolvePackConfig, runPolicies } from "../../tools/policy-engine";

function documentedExample(): unknown {
  const page = fs.readFileSync(path.join(PROJECT_DIR, "docs", "policy-pack.md"), "utf8");
  const after = page.split("**Pack config**")[1] ?? "";
  const block = /```json\n([\s\S]*?)```/.exec(after);
  assert.ok(block, "docs/policy-pack.md has a JSON pack config example after **Pack config**");
  return JSON.parse(block[1]);
}

async function levels(stack: string, runAs: string, config: unknown, overrides = {}) {
  const run = await runProgram(stack, { overrides });
  const resources = run.resources.map((r) => ({ ...r, dependencies: r.options.dependencies }));
  const vs = await runPolicies(resources, { stack: runAs, settings: resolvePackConfig(config) });
  return vs.map((v) => `${v.level} ${v.policy}`);
}

describe("the pack config example of docs/policy-pack.md", function () {
  this.timeout(60000);
  const example = documentedExample();

  it("keeps the tutorial policy advisory in the dev stack", async () => {
    assert.deepEqual(await levels("dev", "dev", example), [
      "advisory iot-policy-no-allow-all-in-dev",
    ]);
  });

  it("treats sandbox as a dev stack", async () => {
    assert.deepEqual(await levels("dev", "sandbox", example), [
      "advisory iot-policy-no-allow-all-in-dev",
    ]);
  });

  it("makes the tutorial policy and generated certificates block prod as the text says", async () => {
    assert.deepEqual(
      await levels("prod", "prod", example, {
        policyMode: "tutorial",
        certificateMode: "generated",
        alarmEmail: "ops@example.com",
      }),
      [
        "mandatory iot-policy-no-allow-all",
        "advisory iot-certificate-from-csr",
        "advisory iot-certificate-from-csr",
        "advisory iot-certificate-from-csr",
      ],
    );
  });

  it("needs its -in-dev lines: without them, all: mandatory would block dev", async () => {
    const withoutDevHalves = Object.fromEntries(
      Object.entries(example as Record<string, unknown>).filter(([k]) => !k.endsWith("-in-dev")),
    );
    assert.deepEqual(await levels("dev", "dev", withoutDevHalves), [
      "mandatory iot-policy-no-allow-all-in-dev",
    ]);
  });
});
