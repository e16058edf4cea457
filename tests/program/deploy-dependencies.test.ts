// What the Pulumi CLI's loaders need at deploy time must be a production dependency: the SDK's
// ts-node compiles the program and the pack with `typescript` and the `@types` packages their
// tsconfig.json names, so `npm ci --omit=dev` (a lean deploy image) must still install them.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";

const readJson = (file: string) =>
  JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, file), "utf8")) as Record<string, never>;

for (const [what, dir] of [
  ["the program (pulumi up)", "."],
  ["the policy pack (pulumi preview --policy-pack policypack)", "policypack"],
] as const) {
  describe(`deploy-time dependencies of ${what}`, () => {
    const pkg = readJson(path.join(dir, "package.json")) as {
      dependencies?: Record<string, string>;
    };
    const tsconfig = readJson(path.join(dir, "tsconfig.json")) as {
      compilerOptions?: { types?: string[] };
    };
    const deps = Object.keys(pkg.dependencies ?? {});

    it("has typescript (ts-node's compiler) as a dependency, pinned below 7", () => {
      assert.ok(deps.includes("typescript"), `${dir}/package.json dependencies lack typescript`);
      assert.match(pkg.dependencies?.typescript ?? "", /^5\./);
    });

    it("has every @types package its tsconfig.json names as a dependency", () => {
      const types = tsconfig.compilerOptions?.types ?? [];
      assert.ok(types.length > 0, `${dir}/tsconfig.json names its types explicitly`);
      for (const t of types) {
        assert.ok(
          deps.includes(`@types/${t}`),
          `${dir}/package.json dependencies lack @types/${t}`,
        );
      }
    });
  });
}
