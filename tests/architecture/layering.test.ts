// The layering, as a test: every import points down and no modules import each other in a circle.
//
//   simulator/            tools/, bench/ (may use everything below)
//   device/   local/      program.ts, index.ts → components/      policypack/   functions/
//   core/  (the Pulumi-free ground floor that all of them share)
//
// Imports are read with TypeScript's own pre-processor, so static, type-only, dynamic (`import()`)
// and re-exports all count.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import { PROJECT_DIR } from "../../core/project";

/** Top-level folders (or root files) of the product's code, and what each may import. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  core: ["core"],
  device: ["device", "core"],
  local: ["local", "core"],
  simulator: ["simulator", "device", "local", "core"],
  components: ["components", "core"],
  // The Lambda functions' code (bundled by components/, never imported by it).
  functions: ["functions", "core"],
  policypack: ["policypack", "core"],
  program: ["program", "components", "core"],
  tools: ["tools", "program", "components", "policypack", "core"],
  bench: ["bench", "tools", "program", "simulator", "device", "local", "components", "core"],
};

/** Packages that some layers must not load at all. */
const FORBIDDEN_PACKAGES: Record<string, RegExp> = {
  // The ground floor runs in the program, the pack and the local pipeline alike.
  core: /^(@pulumi\/|aedes|mqtt)/,
  // A device client knows nothing of a broker, and nothing of Pulumi.
  device: /^(@pulumi\/|aedes)/,
  local: /^@pulumi\//,
  // Code that runs in AWS Lambda carries nothing of the program, the broker or a device client.
  functions: /^(@pulumi\/|aedes|mqtt)/,
};

const LAYER_DIRS = Object.keys(MAY_IMPORT).filter((l) => l !== "program");

function layerOf(file: string): string | undefined {
  const rel = path.relative(PROJECT_DIR, file);
  const top = rel.split(path.sep)[0];
  if (LAYER_DIRS.includes(top)) return top;
  if (!rel.includes(path.sep) && rel.endsWith(".ts")) return "program";
  return undefined;
}

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.name === "node_modules" || e.name.startsWith(".")) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(p);
    }
  };
  for (const d of LAYER_DIRS) walk(path.join(PROJECT_DIR, d));
  for (const f of fs.readdirSync(PROJECT_DIR)) {
    if (f.endsWith(".ts")) out.push(path.join(PROJECT_DIR, f));
  }
  return out;
}

/** A relative specifier resolved to a file of the repository, as Node would. */
function resolveRelative(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base, `${base}.ts`, path.join(base, "index.ts")]) {
    if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  }
  return undefined;
}

interface Edge {
  readonly from: string;
  readonly to?: string;
  readonly spec: string;
}

function imports(file: string): Edge[] {
  const info = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true);
  return info.importedFiles.map(({ fileName: spec }) => ({
    from: file,
    spec,
    to: spec.startsWith(".") ? resolveRelative(file, spec) : undefined,
  }));
}

describe("layering: every import points down, and there are no circles", () => {
  const files = sources();
  const edges = files.flatMap(imports);
  const rel = (f: string) => path.relative(PROJECT_DIR, f);

  it("reads the whole product (sanity: every layer has files, every relative import resolves)", () => {
    for (const l of LAYER_DIRS) {
      assert.ok(
        files.some((f) => layerOf(f) === l),
        `no TypeScript file found under ${l}/`,
      );
    }
    const unresolved = edges.filter((e) => e.spec.startsWith(".") && e.to === undefined);
    assert.deepEqual(
      unresolved.map((e) => `${rel(e.from)} → ${e.spec}`),
      [],
      "imports that resolve to no file",
    );
  });

  it("no module imports a layer above its own", () => {
    const upward = edges
      .filter((e) => e.to !== undefined)
      .filter((e) => {
        const a = layerOf(e.from);
        const b = layerOf(e.to as string);
        return a !== undefined && b !== undefined && !MAY_IMPORT[a].includes(b);
      })
      .map(
        (e) =>
          `${rel(e.from)} (${layerOf(e.from)}) → ${rel(e.to as string)} (${layerOf(e.to as string)})`,
      );
    assert.deepEqual(upward, []);
  });

  it("core loads no Pulumi, broker or MQTT package; device no broker; local no Pulumi", () => {
    const bad = edges
      .filter((e) => !e.spec.startsWith(".") && !e.spec.startsWith("node:"))
      .filter((e) => {
        const rule = FORBIDDEN_PACKAGES[layerOf(e.from) ?? ""];
        return rule !== undefined && rule.test(e.spec);
      })
      .map((e) => `${rel(e.from)} → ${e.spec}`);
    assert.deepEqual(bad, []);
  });

  it("nothing imports the policy pack's entry point, which starts a server", () => {
    const entry = path.join(PROJECT_DIR, "policypack", "index.ts");
    assert.deepEqual(
      edges.filter((e) => e.to === entry).map((e) => rel(e.from)),
      [],
    );
  });

  it("no two modules import each other, directly or through others", () => {
    const graph = new Map<string, string[]>(files.map((f) => [f, []]));
    for (const e of edges) if (e.to !== undefined && graph.has(e.to)) graph.get(e.from)?.push(e.to);
    // Tarjan's strongly connected components: any with more than one module is a circle.
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const circles: string[][] = [];
    const visit = (v: string) => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
        } else if (onStack.has(w)) {
          low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
        }
      }
      if (low.get(v) === idx.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop() as string;
          onStack.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) circles.push(scc.map(rel).sort());
      }
    };
    for (const f of files) if (!idx.has(f)) visit(f);
    assert.deepEqual(circles, []);
  });
});
