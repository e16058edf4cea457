// The memory ceiling docs/reliability.md documents per stack is the one local/pipeline/memory-budget.ts
// computes from each shipped stack's config (Pulumi.<stack>.yaml): the table in the docs is held
// to the computation, so that a changed buffer size or bound cannot leave the docs behind.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadStackConfig } from "../../core/stack-config";
import { PROJECT_DIR } from "../../core/project";
import { budgetTable, ceilingMiB, memoryBudget } from "../../local/pipeline/memory-budget";

/** Every stack the project ships: one Pulumi.<stack>.yaml each. */
const STACKS = fs
  .readdirSync(PROJECT_DIR)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => s !== undefined)
  .sort();

describe("memory budget (local/pipeline/memory-budget.ts) and the ceiling docs/reliability.md documents", () => {
  it("ships dev, fleet and prod", () => {
    assert.deepEqual(STACKS, ["dev", "fleet", "prod"]);
  });

  it("budgets each stack's delivery buffers from its own bufferSizeMiB (prod: 64 MiB, three buffers)", () => {
    const prod = memoryBudget(loadStackConfig("prod"));
    const buffers = prod.parts.find((p) => p.part.startsWith("delivery buffers"));
    assert.equal(buffers?.bytes, 3 * 64 * 1024 * 1024);
    assert.ok(
      prod.parts.some((p) => p.part.startsWith("converting one buffer")),
      "prod writes Parquet: the conversion is budgeted",
    );
    const dev = memoryBudget(loadStackConfig("dev"));
    assert.ok(!dev.parts.some((p) => p.part.startsWith("converting one buffer")));
    assert.ok(ceilingMiB(prod) > ceilingMiB(dev));
  });

  it("docs/reliability.md shows the table the budget computes for every shipped stack", () => {
    const expected = budgetTable(STACKS.map((s) => memoryBudget(loadStackConfig(s))));
    const doc = fs.readFileSync(path.join(PROJECT_DIR, "docs", "reliability.md"), "utf8");
    assert.ok(
      doc.includes(expected),
      `docs/reliability.md's Memory ceiling section must show this table (local/pipeline/memory-budget.ts computes it):\n\n${expected}\n`,
    );
  });
});
