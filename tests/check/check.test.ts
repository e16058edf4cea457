// Whole stacks through the pack (the program built under mocks from its own stack file), and the
// check command's report, exit codes and one-line errors.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RawConfig } from "../../core/stack-config";
import { main } from "../../tools/check";
import { runProgram } from "../../tools/mock-program";
import { type Violation, runPolicies } from "../../tools/policy-engine";

const ROOT = path.join(__dirname, "..", "..");

async function stackViolations(stack: string, overrides?: RawConfig): Promise<Violation[]> {
  const run = await runProgram(stack, { overrides });
  const resources = run.resources.map((r) => ({ ...r, dependencies: r.options.dependencies }));
  return runPolicies(resources, { stack });
}

async function runMain(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (l) => out.push(l),
    (l) => err.push(l),
  );
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("whole stacks through the policy pack", function () {
  this.timeout(60000);

  it("dev (the tutorial's choices) yields advisories only: the tutorial policy", async () => {
    const vs = await stackViolations("dev");
    assert.deepEqual(
      vs.map((v) => `${v.level} ${v.policy}`),
      ["advisory iot-policy-no-allow-all-in-dev"],
    );
  });

  it("prod yields no violation once its alarms notify someone", async () => {
    assert.deepEqual(await stackViolations("prod", { alarmEmail: "ops@example.com" }), []);
  });

  it("prod as committed: its alarms' topic has no subscription (advisory)", async () => {
    const vs = await stackViolations("prod");
    assert.deepEqual(
      vs.map((v) => `${v.level} ${v.policy}`),
      ["advisory sns-alarm-topic-subscribed"],
    );
    assert.match(vs[0].message, /^SNS topic iot-pipeline-prod-alarms receives the alarms /);
  });

  it("prod with the tutorial policy yields the mandatory violation", async () => {
    const vs = await stackViolations("prod", {
      policyMode: "tutorial",
      alarmEmail: "ops@example.com",
    });
    assert.deepEqual(
      vs.map((v) => `${v.level} ${v.policy}`),
      ["mandatory iot-policy-no-allow-all"],
    );
    assert.match(
      vs[0].message,
      /statement 0 allows every IoT action on every resource \(iot:\* on \*\)/,
    );
  });

  it("prod with generated certificates and no error logging yields what each policy says", async () => {
    const vs = await stackViolations("prod", {
      certificateMode: "generated",
      errorLogging: false,
      alarmEmail: "ops@example.com",
    });
    const got = vs.map((v) => `${v.level} ${v.policy}`);
    // Both Firehose streams, the telemetry's and the analytics windows', follow errorLogging.
    assert.deepEqual(got, [
      "mandatory firehose-delivery-stream-error-logging",
      "mandatory firehose-delivery-stream-error-logging",
      "advisory iot-certificate-from-csr",
      "advisory iot-certificate-from-csr",
      "advisory iot-certificate-from-csr",
    ]);
  });
});

describe("the stack policies on the program's real resource graph", function () {
  this.timeout(60000);

  it("find the public access block, encryption and attachments by reference, and miss them when gone", async () => {
    const run = await runProgram("prod", { overrides: { alarmEmail: "ops@example.com" } });
    const all = run.resources.map((r) => ({ ...r, dependencies: r.options.dependencies }));
    const drop = (type: string) => {
      const i = all.findIndex((r) => r.type === type);
      assert.ok(i >= 0, `prod registers a ${type}`);
      return all.filter((_, j) => j !== i);
    };
    const pab = await runPolicies(drop("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"), {
      stack: "prod",
    });
    assert.deepEqual(
      pab.map((v) => v.policy),
      ["s3-bucket-private-and-encrypted"],
    );
    assert.match(pab[0].message, /has no public access block/);
    const tpa = await runPolicies(
      drop("aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment"),
      { stack: "prod" },
    );
    assert.equal(tpa.length, 2, tpa.map((v) => v.message).join("\n"));
    assert.match(tpa[0].message, /^certificate \S+ is attached to no thing; /);
    assert.match(tpa[1].message, /^thing store-sensor-seattle\d has no certificate attached; /);
  });
});

describe("npm run check", function () {
  this.timeout(60000);

  it("prints a report grouped by policy and exits 0 on advisories only", async () => {
    const { code, out, err } = await runMain(["--stack", "dev"]);
    assert.equal(err, "");
    assert.equal(code, 0);
    assert.match(
      out,
      /^Policy check of stack dev: iot-pipeline-guardrails@0\.1\.0, 26 of 26 policies enabled, \d+ resources$/m,
    );
    assert.match(
      out,
      /^iot-policy-no-allow-all-in-dev \(advisory\)\n {2}IoT policies must not allow/m,
    );
    assert.match(
      out,
      /^ {2}\[advisory\] aws:iot\/policy:Policy \S+\n {4}IoT policy sensor-policy: statement 0 allows every IoT action/m,
    );
    assert.match(out, /^1 violation: 0 mandatory, 1 advisory\.$/m);
  });

  it("exits 0 with no violation for prod once its alarms notify someone", async () => {
    const { code, out } = await runMain(["--stack", "prod", "-c", "alarmEmail=ops@example.com"]);
    assert.equal(code, 0);
    assert.match(out, /^No policy violations\.$/m);
  });

  it("says what pulumi up would refuse for prod from a fresh clone, and what it checked instead", async () => {
    const { code, out } = await runMain(["--stack", "prod"]);
    assert.equal(code, 0, "advisories only");
    assert.match(
      out,
      /^note: stack prod has no CSRs in csr\/prod: checked with CSRs of throwaway keys \(npm run csr -- --stack prod makes the real ones\)$/m,
    );
    assert.match(out, /^pulumi up would refuse: stack prod: no CSR for 3 device\(s\) /m);
    assert.match(
      out,
      /^pulumi up would refuse: stack prod: config iot-pipeline:alarmEmail is not set/m,
    );
    assert.match(
      out,
      /^pulumi up would refuse: stack prod: config iot-pipeline:flinkConnectorSha512 is not set/m,
    );
  });

  it("honours a pack config file: a disabled policy is skipped", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "check-")), "pack.json");
    fs.writeFileSync(file, JSON.stringify({ "iot-policy-no-allow-all": "disabled" }));
    const { code, out } = await runMain([
      "--stack",
      "prod",
      "-c",
      "policyMode=tutorial",
      "-c",
      "alarmEmail=ops@example.com",
      "--policy-pack-config",
      file,
    ]);
    assert.equal(code, 0);
    assert.match(out, /25 of 26 policies enabled/);
    assert.match(out, /^No policy violations\.$/m);
  });

  const errors: [string, string[], RegExp][] = [
    [
      "an unknown stack",
      ["--stack", "staging"],
      /^check: unknown stack "staging": no Pulumi\.staging\.yaml; known stacks: dev, fleet, prod$/,
    ],
    [
      "a missing pack config file",
      ["--stack", "prod", "--policy-pack-config", "/nonexistent/pack.json"],
      /^check: policy pack config \/nonexistent\/pack\.json does not exist; pass the path of a JSON file$/,
    ],
    [
      "an unknown option",
      ["--stack", "prod", "--verbose"],
      /^check: Unknown option '--verbose'; usage: npm run check -- --stack <name>/,
    ],
    ["no stack", [], /^check: --stack is required; usage: /],
    [
      "a bad config override",
      ["--stack", "prod", "-c", "bufferSizeMiB=999"],
      /^check: config iot-pipeline:bufferSizeMiB = "999" is invalid: must be a whole number of MiB from 1 to 128$/,
    ],
    [
      "a config override that is not key=value",
      ["--stack", "prod", "-c", "policyMode"],
      /^check: --config policyMode is not key=value; usage: /,
    ],
  ];
  for (const [what, argv, message] of errors) {
    it(`exits 2 with one line for ${what}`, async () => {
      const { code, out, err } = await runMain(argv);
      assert.equal(code, 2);
      assert.equal(out, "");
      assert.match(err, message);
      assert.ok(!err.includes("\n"), err);
    });
  }

  it("exits 2 with one line for a malformed pack config", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "check-")), "pack.json");
    fs.writeFileSync(file, '{"iot-policy-no-allow-all": ');
    const { code, err } = await runMain(["--stack", "prod", "--policy-pack-config", file]);
    assert.equal(code, 2);
    assert.match(err, /^check: policy pack config \S+pack\.json is not valid JSON: /);
    assert.ok(!err.includes("\n"));
  });

  it("as a real command, exits 1 for prod with the tutorial policy", () => {
    const r = spawnSync(
      "npm",
      [
        "run",
        "-s",
        "check",
        "--",
        "--stack",
        "prod",
        "--config",
        "policyMode=tutorial",
        "--config",
        "alarmEmail=ops@example.com",
      ],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /^iot-policy-no-allow-all \(mandatory\)$/m);
    assert.match(
      r.stdout,
      /^1 violation: 1 mandatory, 0 advisory\. `pulumi preview --policy-pack policypack` would fail/m,
    );
  });

  it("as a real command, exits 2 with one line on stderr for an unknown stack", () => {
    const r = spawnSync("npm", ["run", "-s", "check", "--", "--stack", "qa"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /^check: unknown stack "qa"/);
  });
});
