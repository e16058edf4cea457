// The plans of the stacks in this repository (core/plan.ts), as golden files that read as each
// stack's specification: every name, prefix, column and rule both back ends build from.
// UPDATE_GOLDEN=1 rewrites them.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError } from "../../core/errors";
import { planPipeline, suffixedRoleName, type PipelinePlan } from "../../core/plan";
import { PROJECT_DIR } from "../../core/project";
import { loadStackConfig, parseStackConfig, readRawStackConfig } from "../../core/stack-config";

const GOLDEN = path.join(__dirname, "golden");

/**
 * The plan as JSON: the parsed statement's tree is left out (the SQL text is there), paths are
 * relative to the project, and CSRs, which exist only where `npm run csr` ran, are not shown.
 */
function specification(plan: PipelinePlan): string {
  const json = JSON.stringify(
    plan,
    (key, value: unknown) => {
      if (key === "statement") return undefined;
      if (key === "csrPems" || key === "csrFiles" || key === "missingCsrs") return undefined;
      if (typeof value === "string" && value.startsWith(PROJECT_DIR + path.sep)) {
        return path.relative(PROJECT_DIR, value);
      }
      return value;
    },
    2,
  );
  return `${json}\n`;
}

function golden(stack: string) {
  const file = path.join(GOLDEN, `plan-${stack}.json`);
  const actual = specification(planPipeline(loadStackConfig(stack)));
  if (process.env.UPDATE_GOLDEN === "1") fs.writeFileSync(file, actual);
  assert.equal(
    actual,
    fs.readFileSync(file, "utf8"),
    `the ${stack} plan differs from ${file}; run with UPDATE_GOLDEN=1 to rewrite it`,
  );
}

const plan = (overrides: Record<string, unknown>) =>
  planPipeline(parseStackConfig({ ...readRawStackConfig("dev"), ...overrides }, "dev"));

describe("the pipeline plan of each stack (golden)", () => {
  for (const stack of ["dev", "prod", "fleet"]) {
    it(`${stack}: tests/core/golden/plan-${stack}.json`, () => golden(stack));
  }
});

describe("the pipeline plan", () => {
  it("parses the rule once: the lake's columns come from the same statement the plan holds", () => {
    const p = plan({ ruleSql: "SELECT temperature AS t, timestamp() AS at FROM 'a/b'" });
    assert.equal(p.rule.statement.select.kind, "items");
    assert.deepEqual(p.lake.columns, [
      { name: "t", type: "double" },
      { name: "at", type: "bigint" },
    ]);
  });

  it("names the rule's roles after ruleRoleName with their suffixes", () => {
    assert.deepEqual(plan({ ruleRoleName: "r" }).roles, {
      rule: "r",
      errors: "r-errors",
      kinesis: "r-kinesis",
      logging: "r-logging",
    });
  });

  it("checks a role name's length where its suffix is added (IAM: 64 characters)", () => {
    // https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html (RoleName ≤ 64)
    assert.equal(suffixedRoleName("r".repeat(57), "-errors").length, 64);
    assert.throws(
      () => suffixedRoleName("r".repeat(57), "-logging"),
      (e: unknown) =>
        e instanceof ConfigError && /ruleRoleName = "r{57}" is invalid: use 1-56/.test(e.message),
    );
  });

  it("gives the bucket's lifecycle rules and forceDestroy one place", () => {
    const p = plan({ forceDestroy: true, expirationDays: 30 });
    assert.equal(p.storage.forceDestroy, true);
    assert.deepEqual(
      p.storage.lifecycleRules.map((r) => r.filter.prefix),
      ["analytics/", "errors/", "telemetry/", "athena-results/"],
    );
  });

  it("carries the rule's description (ruleDescription) only when one is set", () => {
    assert.equal(plan({}).rule.description, undefined);
    assert.equal(plan({ ruleDescription: "" }).rule.description, undefined);
    assert.equal(
      plan({ ruleDescription: "Store temperatures into the lake" }).rule.description,
      "Store temperatures into the lake",
    );
  });

  it("refuses a ruleDescription of two lines or over 1000 characters, in one line", () => {
    for (const bad of ["a\nb", "x".repeat(1001)]) {
      assert.throws(
        () => plan({ ruleDescription: bad }),
        (e: unknown) =>
          e instanceof ConfigError &&
          /ruleDescription = .* is invalid: use one line of at most 1000 characters/.test(
            e.message,
          ) &&
          !e.message.includes("\n"),
      );
    }
  });
});
