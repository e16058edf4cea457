// The run-time loader (tools/ts-hook.cjs): every npm script that runs TypeScript goes through it,
// and it runs the project's code as tsx did — without tsx's `__name` wrapper on every closure,
// which cost the local pipeline about 4 % of its CPU per message (docs/benchmarks.md, issue 28).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { nodeFlagsOf } from "../../bench/program";
import { PROJECT_DIR, TS_NODE_FLAGS } from "../../core/project";

const PROBE = path.join(__dirname, "fixtures", "loader-probe.ts");

interface Probe {
  readonly outer: string;
  readonly dirname: string;
  readonly dynamic: number;
  readonly json: boolean;
  readonly classField: boolean;
  readonly stack: string;
}

function probe(flags: readonly string[]): Probe {
  const r = spawnSync(process.execPath, [...flags, PROBE], {
    cwd: PROJECT_DIR,
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Probe;
}

describe("run-time loader: tools/ts-hook.cjs", () => {
  it("every npm script that runs a .ts file runs it through the hook, none through tsx", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    const tsScripts = Object.entries(pkg.scripts).filter(([, s]) => /\.ts\b/.test(s));
    assert.ok(
      tsScripts.length >= 7,
      `scripts running .ts: ${tsScripts.map(([n]) => n).join(", ")}`,
    );
    for (const [name, script] of tsScripts) {
      if (name === "test:unit") continue; // mocha's own loader (.mocharc.json)
      assert.doesNotThrow(() => nodeFlagsOf(script), `npm run ${name}: ${script}`);
    }
    assert.equal(path.resolve(PROJECT_DIR, "tools/ts-hook.cjs"), TS_NODE_FLAGS[1]);
  });

  it("refuses a Node older than 22.12 in one line (it require()s aedes, an ES module)", () => {
    const hook = TS_NODE_FLAGS[1];
    const asIf = (version: string) =>
      spawnSync(
        process.execPath,
        [
          "-e",
          `Object.defineProperty(process.versions, "node", { value: ${JSON.stringify(version)} }); require(${JSON.stringify(hook)})`,
        ],
        { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } },
      );
    const old = asIf("22.11.0");
    assert.equal(old.status, 1);
    assert.equal(
      old.stderr,
      "error: Node.js 22.11.0 is too old for this project; install Node.js 22.12 or later (README, Quickstart)\n",
    );
    assert.equal(asIf("22.12.0").status, 0);
    assert.equal(asIf("24.1.0").status, 0);
  });

  it("compiles closures without tsx's __name wrapper", () => {
    const p = probe(TS_NODE_FLAGS);
    assert.match(p.outer, /const inner = \(\) => 1/);
    assert.doesNotMatch(p.outer, /__name/);
  });

  it("keeps what the project relies on: import() of a .ts file, JSON, __dirname, class fields, source lines", () => {
    const p = probe(TS_NODE_FLAGS);
    assert.equal(p.dynamic, 42);
    assert.equal(p.json, true);
    assert.equal(p.dirname, path.join("tests", "architecture", "fixtures"));
    assert.equal(
      p.classField,
      true,
      "class fields are [[Define]]d, as tsconfig's ES2022 target says",
    );
    assert.match(
      p.stack,
      /loader-probe\.ts:16:\d+\)$/,
      "stack traces point at the TypeScript line",
    );
  });
});
