// Arrays whose length a device or a user chooses are never spread into a call's arguments: past
// about 125,000 elements (fewer under a deep stack) V8 throws "Maximum call stack size exceeded".
// The delivery path's own cases are in tests/local/lake-writer.test.ts and lake-delivery.test.ts.
import { strict as assert } from "node:assert";
import { FUNCTIONS } from "../../core/rule-sql";
import { formatTable } from "../../simulator/query";

describe("no spread of unbounded arrays into a call", () => {
  it("the rule's concat() joins arrays of 200,000 elements", () => {
    const big = Array.from({ length: 200_000 }, (_, i) => i);
    const out = FUNCTIONS.concat.impl([big, big], {} as never);
    assert.ok(Array.isArray(out));
    assert.equal(out.length, 400_000);
    assert.equal(out[399_999], 199_999);
  });

  it("npm run query's table of 200,000 rows (--max-rows allows 1,000,000)", () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => [i, "x"]);
    const lines = formatTable(["n", "s"], rows);
    assert.equal(lines.length, 200_002);
    assert.equal(lines[1], "------  -", "widths of the widest cell: 199999 and x");
  });
});
