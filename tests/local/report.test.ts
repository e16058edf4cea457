// The local pipeline's report (local/pipeline/report.ts): how it shows the objects a run wrote.
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { shownPath } from "../../core/display";
import { shownObject } from "../../local/pipeline/report";

describe("local pipeline report: object paths (local/pipeline/report.ts)", () => {
  it("shows a path inside the working folder relative to it, as shownPath does", () => {
    const p = path.join(process.cwd(), ".local", "s3", "bucket", "telemetry", "a.gz");
    assert.equal(shownObject(p), path.join(".local", "s3", "bucket", "telemetry", "a.gz"));
    assert.equal(shownObject(p), shownPath(p));
  });

  it("shows a path outside the working folder in full", () => {
    const outside = path.join(path.dirname(process.cwd()), "elsewhere", "a.gz");
    assert.equal(shownObject(outside), outside);
  });

  it("shows the working folder itself as the empty path, where shownPath shows it in full", () => {
    assert.equal(shownObject(process.cwd()), "");
    assert.equal(shownPath(process.cwd()), process.cwd());
  });
});
