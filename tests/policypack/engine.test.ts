// The pack's shape and the engine's rules that `npm run check` reproduces: enforcement levels
// (pack config, then "all", then the policy, then the pack), disabled policies, config schemas.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Policies } from "@pulumi/policy";
import { tutorialPolicy } from "../../core/iot-policy/policy";
import { PACK_NAME, policies } from "../../policypack/policies";
import { PackConfigError, resolvePackConfig, runPolicies } from "../../tools/policy-engine";
import { res } from "./helpers";

const tutorial = () =>
  res("aws:iot/policy:Policy", "p", { name: "p", policy: JSON.stringify(tutorialPolicy()) });
const kda = () => res("aws:kinesis/analyticsApplication:AnalyticsApplication", "k", { name: "k" });

async function levels(config: unknown, stack = "prod"): Promise<string[]> {
  const vs = await runPolicies([tutorial(), kda()], { stack, settings: resolvePackConfig(config) });
  return vs.map((v) => `${v.level} ${v.policy}`);
}

describe("the policy pack", () => {
  it("has twenty-six uniquely named kebab-case policies, each starting with its service", () => {
    const names = policies.map((p) => p.name);
    assert.equal(new Set(names).size, names.length);
    assert.equal(names.length, 26);
    for (const n of names)
      assert.match(n, /^(iot|s3|firehose|iam|kinesis|cloudwatch|sns|lambda)-[a-z0-9-]+$/);
  });

  it("gives every policy a description and a level, and devStacks to the stack-aware ones", () => {
    for (const p of policies) {
      assert.ok(p.description.length > 20, p.name);
      assert.ok(p.enforcementLevel, p.name);
    }
    const aware = policies.filter((p) => p.configSchema?.properties.devStacks).map((p) => p.name);
    assert.deepEqual(aware.sort(), [
      "cloudwatch-pipeline-alarms",
      "firehose-delivery-stream-error-logging",
      "iot-certificate-from-csr",
      "iot-logging-enabled",
      "iot-policy-no-allow-all",
      "iot-policy-no-allow-all-in-dev",
      "iot-policy-overly-permissive",
      "iot-policy-overly-permissive-in-dev",
      "iot-policy-shadow-own-thing-only",
      "iot-topic-rule-sql-and-error-action",
      "s3-bucket-lifecycle",
      "sns-alarm-topic-subscribed",
    ]);
  });

  it("has an entry file that only constructs the pack, and a package.json with a version", () => {
    const dir = path.join(__dirname, "..", "..", "policypack");
    const entry = fs.readFileSync(path.join(dir, "index.ts"), "utf8");
    assert.match(
      entry,
      /new PolicyPack\(PACK_NAME, \{ policies, enforcementLevel: PACK_ENFORCEMENT_LEVEL \}\)/,
    );
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
    assert.equal(pkg.dependencies["@pulumi/policy"], "1.21.0");
    assert.equal(pkg.dependencies["@pulumi/pulumi"], "3.270.0");
    assert.match(
      fs.readFileSync(path.join(dir, "PulumiPolicy.yaml"), "utf8"),
      /^runtime: nodejs$/m,
    );
    assert.match(PACK_NAME, /^[a-zA-Z0-9-_.]{1,100}$/);
  });
});

describe("enforcement levels and pack config, as the engine resolves them", () => {
  it("uses each policy's own level without config", async () => {
    assert.deepEqual(await levels({}), [
      "mandatory iot-policy-no-allow-all",
      "mandatory kinesis-analytics-sql-application-retired",
    ]);
  });

  it("lets the pack config set a policy's level, as a string or an object", async () => {
    assert.deepEqual(await levels({ "iot-policy-no-allow-all": "advisory" }), [
      "advisory iot-policy-no-allow-all",
      "mandatory kinesis-analytics-sql-application-retired",
    ]);
    assert.deepEqual(
      await levels({
        "kinesis-analytics-sql-application-retired": { enforcementLevel: "advisory" },
      }),
      ["mandatory iot-policy-no-allow-all", "advisory kinesis-analytics-sql-application-retired"],
    );
  });

  it('applies "all" below a policy\'s own entry', async () => {
    assert.deepEqual(await levels({ all: "advisory", "iot-policy-no-allow-all": "mandatory" }), [
      "mandatory iot-policy-no-allow-all",
      "advisory kinesis-analytics-sql-application-retired",
    ]);
  });

  it("skips disabled policies and reports remediate as mandatory", async () => {
    assert.deepEqual(await levels({ all: "disabled", "iot-policy-no-allow-all": "remediate" }), [
      "mandatory iot-policy-no-allow-all",
    ]);
  });

  it("fills in schema defaults and validates options", () => {
    const s = resolvePackConfig({});
    assert.deepEqual(s.get("iot-policy-no-allow-all")?.config, { devStacks: ["dev"] });
    assert.throws(
      () => resolvePackConfig({ "iot-policy-no-allow-all": { devStacks: "dev" } }),
      (e: Error) =>
        e instanceof PackConfigError &&
        e.message ===
          "policy pack config iot-policy-no-allow-all.devStacks is invalid: must be array",
    );
  });

  it("refuses unknown policies, unknown levels and non-objects in one line", () => {
    const cases: [unknown, RegExp][] = [
      [
        { "no-such-policy": "advisory" },
        /^policy pack config names unknown policy "no-such-policy"; known policies: all, iot-policy-no-allow-all, /,
      ],
      [
        { "iot-policy-no-allow-all": "loud" },
        /^policy pack config iot-policy-no-allow-all = "loud" is invalid: use one of advisory, mandatory, remediate, disabled$/,
      ],
      [{ all: 3 }, /^policy pack config "all" = 3 is invalid/],
      [[1, 2], /^policy pack config must be a JSON object/],
    ];
    for (const [config, message] of cases) {
      assert.throws(
        () => resolvePackConfig(config),
        (e: Error) =>
          e instanceof PackConfigError && message.test(e.message) && !e.message.includes("\n"),
      );
    }
  });
});

describe("what each policy is handed, as the engine hands it", () => {
  const parent = res("iot-pipeline:index:TelemetryPipeline", "pipe", {});
  const bucket = {
    ...res("aws:s3/bucket:Bucket", "b", { bucket: "b", tags: { team: "iot" } }),
    parent: parent.urn,
    dependencies: [parent.urn],
    propertyDependencies: { bucket: [parent.urn] },
  };

  it("gives each stack policy and each resource validation a copy of its own", async () => {
    const seen: unknown[] = [];
    const mutating = (name: string): Policies[number] => ({
      name,
      description: name,
      enforcementLevel: "advisory",
      validateStack: (args) => {
        const b = args.resources.find((r) => r.type === "aws:s3/bucket:Bucket");
        seen.push({ ...(b?.props.tags as object) });
        (b?.props.tags as Record<string, string>).team = "changed";
      },
    });
    const mutatingResource: Policies[number] = {
      name: "mutating-resource",
      description: "mutating-resource",
      enforcementLevel: "advisory",
      validateResource: (args) => {
        if (args.type !== bucket.type) return;
        seen.push({ ...(args.props.tags as object) });
        (args.props.tags as Record<string, string>).team = "changed";
      },
    };
    const policies = [mutating("one"), mutatingResource, mutating("two")];
    await runPolicies([parent, bucket], {
      stack: "prod",
      policies,
      settings: resolvePackConfig({}, policies),
    });
    assert.deepEqual(seen, [{ team: "iot" }, { team: "iot" }, { team: "iot" }]);
    assert.deepEqual(bucket.props.tags, { team: "iot" }, "the registered resource is untouched");
  });

  it("links parents, dependencies and property dependencies to the same policy's resources", async () => {
    let checked = false;
    const policies: Policies = [
      {
        name: "links",
        description: "links",
        enforcementLevel: "advisory",
        validateStack: (args) => {
          const [p, b] = args.resources;
          assert.equal(b.parent, p);
          assert.deepEqual(b.dependencies, [p]);
          assert.deepEqual(b.propertyDependencies, { bucket: [p] });
          assert.equal(b.opts.parent, parent.urn);
          assert.equal(p.parent, undefined);
          assert.deepEqual([b.type, b.name, b.urn], [bucket.type, "b", bucket.urn]);
          assert.equal(b.props.bucket, "b");
          checked = true;
        },
      },
    ];
    await runPolicies([parent, bucket], {
      stack: "prod",
      policies,
      settings: resolvePackConfig({}, policies),
    });
    assert.ok(checked, "the stack policy ran");
  });
});
