// Runs the conformance table (conformance-cases.ts) against the local engine, one test per case,
// grouped by the developer-guide page each case comes from, and prints the per-page totals.
import { strict as assert } from "node:assert";
import { Decimal } from "decimal.js";
import {
  compileRule,
  parseRuleSql,
  RuleEvaluationError,
  RuleSqlError,
  type RuleResult,
} from "../../core/rule-sql";
import { CASES, PAGES, UNDEFINED, type Case, type Page } from "./conformance-cases";

/** JSON with every number replaced by its exact decimal value, so 1e309 equals 1E+309. */
function canonical(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown, ctx?: { source?: string }) =>
    typeof v === "number" ? { number: new Decimal(ctx?.source ?? String(v)).toString() } : v,
  );
}

function run(c: Case): RuleResult {
  const payload =
    c.rawPayload !== undefined
      ? Buffer.from(c.rawPayload)
      : Buffer.from(JSON.stringify(c.payload ?? {}));
  return compileRule(parseRuleSql(c.sql)).evaluate({
    payload,
    topic: c.topic ?? "topic/subtopic",
    clientId: c.clientId,
    timestamp: c.timestamp ?? 1481825251155,
    newuuid: () => "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    principal: c.principal,
    traceId: c.traceId,
    ruleName: c.ruleName,
    random: c.random === undefined ? undefined : () => c.random as number,
  });
}

function check(c: Case): void {
  const want = c.want;
  if (want !== UNDEFINED && "parseError" in want) {
    assert.throws(
      () => parseRuleSql(c.sql),
      (e: unknown) => e instanceof RuleSqlError && want.parseError.test(e.message),
    );
    return;
  }
  if (want !== UNDEFINED && "parses" in want) {
    parseRuleSql(c.sql);
    return;
  }
  if (want !== UNDEFINED && "evalError" in want) {
    assert.throws(
      () => run(c),
      (e: unknown) => e instanceof RuleEvaluationError && want.evalError.test(e.message),
    );
    return;
  }
  const got = run(c);
  if (want !== UNDEFINED && "noMatch" in want) {
    assert.deepEqual(got, { matched: false, reason: want.noMatch });
    return;
  }
  assert.ok(got.matched, `expected a match, got ${JSON.stringify(got)}`);
  const text = got.record.toString("utf8");
  if (want === UNDEFINED) {
    assert.equal(got.output, undefined);
    assert.equal(text, "", "Undefined serialises as an empty string");
  } else if ("raw" in want) {
    assert.ok(got.record.equals(Buffer.from(want.raw)), `record ${JSON.stringify(text)}`);
  } else if ("matches" in want) {
    assert.match(JSON.parse(text) as string, want.matches);
  } else if ("json" in want) {
    assert.deepEqual(canonical(text), canonical(want.json), `record ${text}`);
  } else {
    assert.deepEqual(canonical(text), canonical(JSON.stringify(want.output)), `record ${text}`);
  }
}

describe("IoT SQL conformance with the AWS IoT developer guide", () => {
  const totals = new Map<Page, { cases: number; passed: number }>();
  const byPage = new Map<Page, Case[]>();
  for (const c of CASES) byPage.set(c.page, [...(byPage.get(c.page) ?? []), c]);

  for (const [page, cases] of byPage) {
    describe(PAGES[page], () => {
      for (const c of cases) {
        it(`${c.example}: ${c.sql}`, () => {
          const t = totals.get(page) ?? { cases: 0, passed: 0 };
          totals.set(page, t);
          t.cases++;
          check(c);
          t.passed++;
        });
      }
    });
  }

  it("has at least 250 cases, each citing its page and example", () => {
    assert.ok(CASES.length >= 250, `only ${CASES.length} cases`);
    for (const c of CASES) assert.ok(c.example.length > 0 && PAGES[c.page] !== undefined);
  });

  after(() => {
    const lines = [...totals].map(
      ([page, t]) => `  ${PAGES[page].padEnd(78)} ${String(t.passed).padStart(3)}/${t.cases}`,
    );
    const all = [...totals.values()].reduce((a, t) => a + t.cases, 0);
    const passed = [...totals.values()].reduce((a, t) => a + t.passed, 0);
    process.stdout.write(
      `\n  conformance cases by page (passed/run):\n${lines.join("\n")}\n  ${"total".padEnd(78)} ${String(passed).padStart(3)}/${all}\n`,
    );
  });
});
