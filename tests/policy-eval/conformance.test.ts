// The authorisation table (tests/policy-eval/cases.ts) against the one evaluator: every row's
// decision, or its refusal when the stack loads, as the AWS page it cites says. Prints the number
// of rows per feature.
import { strict as assert } from "node:assert";
import {
  createEvaluator,
  describeEvaluation,
  type PolicyEvaluator,
} from "../../core/iot-policy/policy-eval";
import { PolicyDocumentError } from "../../core/iot-policy/policy";
import {
  ACCOUNT_ARN,
  ALL_EXAMPLES,
  CASES,
  DEFAULT_TIME,
  USED_EXAMPLES,
  type Feature,
  type PolicyCase,
} from "./cases";

function resourceOf(c: PolicyCase): string {
  return c.resource.startsWith("arn:") || c.resource === "*"
    ? c.resource
    : `${ACCOUNT_ARN}:${c.resource}`;
}

function totals(): Map<Feature, number> {
  const byFeature = new Map<Feature, number>();
  for (const c of CASES) byFeature.set(c.feature, (byFeature.get(c.feature) ?? 0) + 1);
  return byFeature;
}

describe("IoT policy conformance table (AWS pages → decisions)", () => {
  after(() => {
    const lines = [...totals()].map(([f, n]) => `    ${f.padEnd(24)} ${String(n).padStart(4)}`);
    console.log(
      `\n  authorisation cases per feature:\n${lines.join("\n")}\n    ${"total".padEnd(24)} ${String(CASES.length).padStart(4)}\n`,
    );
  });

  it("has at least 150 cases, each citing an AWS page, covering every feature", () => {
    assert.ok(CASES.length >= 150, `${CASES.length} cases`);
    for (const c of CASES) {
      assert.match(c.source, /^https:\/\/docs\.aws\.amazon\.com\/(iot|IAM)\//, c.name);
    }
    for (const [feature, n] of totals()) assert.ok(n >= 2, `${feature}: ${n} cases`);
    assert.deepEqual(
      ALL_EXAMPLES.filter((e) => !USED_EXAMPLES.has(e)),
      [],
      "every policy document of the example pages is in the table",
    );
    const names = CASES.map((c) => `${c.feature}: ${c.name}`);
    assert.equal(new Set(names).size, names.length, "case names are unique");
  });

  const evaluators = new Map<readonly unknown[], PolicyEvaluator | Error>();
  const evaluatorFor = (docs: readonly unknown[]) => {
    let e = evaluators.get(docs);
    if (e === undefined) {
      try {
        e = createEvaluator(docs);
      } catch (err) {
        e = err as Error;
      }
      evaluators.set(docs, e);
    }
    return e;
  };

  for (const c of CASES) {
    const want = typeof c.want === "string" ? c.want : `refused (${c.want.refused.source})`;
    it(`[${c.feature}] ${c.name} → ${want}`, () => {
      const evaluator = evaluatorFor(c.docs);
      if (typeof c.want !== "string") {
        assert.ok(evaluator instanceof PolicyDocumentError, "the document must be refused");
        assert.match(evaluator.message, c.want.refused);
        assert.ok(!evaluator.message.includes("\n"), "one line");
        return;
      }
      assert.ok(!(evaluator instanceof Error), `refused: ${(evaluator as Error).message}`);
      const got = evaluator({
        action: c.action,
        resource: resourceOf(c),
        context: c.context,
        time: new Date(c.time ?? DEFAULT_TIME),
      });
      assert.equal(
        got.decision,
        c.want,
        `${c.action} on ${resourceOf(c)}: ${describeEvaluation(got)} (${c.source})`,
      );
    });
  }
});
