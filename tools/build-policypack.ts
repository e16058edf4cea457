// `npm run policypack:build [-- --out DIR]`: the policy pack as `pulumi policy publish` must upload
// it, self-contained. In the repository the pack imports the shared core (`../core/...`: the one
// IoT policy reading, the IAM audit, the IoT SQL parser with peggy); a published pack is the pack
// folder alone, so this bundles that code into one `index.js` beside a package.json that declares
// only what stays outside the bundle (@pulumi/policy and @pulumi/pulumi, which the pack's host
// loads from the pack's own node_modules).
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { build, type Metafile, type Plugin } from "esbuild";
import { UserError } from "../core/errors";
import { PROJECT_DIR } from "../core/project";
import { GRAMMAR_FILE, grammarText } from "../core/rule-sql/grammar";
import { runCommand } from "../core/command";

export const PACK_DIR = path.join(PROJECT_DIR, "policypack");
export const DEFAULT_OUT = path.join(PROJECT_DIR, "dist", "policypack");

/** Packages a published pack may load from its node_modules: the ones it declares. */
export function declaredPackDependencies(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(PACK_DIR, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  return Object.keys(pkg.dependencies ?? {});
}

/** The IoT SQL grammar is read from its file at run time in the repository; the bundle carries it. */
const inlineGrammar: Plugin = {
  name: "inline-iot-sql-grammar",
  setup(b) {
    b.onLoad({ filter: /[\\/]core[\\/]rule-sql[\\/]grammar\.ts$/ }, () => ({
      loader: "ts",
      contents: [
        `export const GRAMMAR_FILE = ${JSON.stringify(path.basename(GRAMMAR_FILE))};`,
        `export function grammarText(): string { return ${JSON.stringify(grammarText())}; }`,
      ].join("\n"),
    }));
  },
};

/** The imports a bundle leaves to `require` at run time (packages and Node built-ins). */
export function externalImports(metafile: Metafile): string[] {
  const out = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const imp of output.imports) if (imp.external) out.add(imp.path);
  }
  return [...out].sort();
}

export interface BuiltPack {
  readonly dir: string;
  /** What the bundle requires at run time. */
  readonly externals: string[];
}

/** Builds the publishable pack into `outDir` (replacing what is there). */
export async function buildPolicyPack(outDir: string = DEFAULT_OUT): Promise<BuiltPack> {
  const deps = declaredPackDependencies();
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: [path.join(PACK_DIR, "index.ts")],
    outfile: path.join(outDir, "index.js"),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node22",
    // The host's own SDK and the policy SDK must be the pack's installed copies, never bundled ones.
    external: deps.flatMap((d) => [d, `${d}/*`]),
    plugins: [inlineGrammar],
    metafile: true,
    legalComments: "inline",
    logLevel: "silent",
  });
  const externals = externalImports(result.metafile);
  const undeclared = externals.filter(
    (e) => !e.startsWith("node:") && !deps.some((d) => e === d || e.startsWith(`${d}/`)),
  );
  if (undeclared.length > 0) {
    throw new Error(
      `the bundled pack requires ${undeclared.join(", ")}, which policypack/package.json does not declare`,
    );
  }
  const own = JSON.parse(fs.readFileSync(path.join(PACK_DIR, "package.json"), "utf8")) as Record<
    string,
    unknown
  >;
  const published = {
    name: own.name,
    version: own.version,
    description: own.description,
    license: own.license,
    main: "index.js",
    files: ["index.js", "PulumiPolicy.yaml"],
    // Only what the bundle loads at run time; TypeScript is for the unbundled pack's ts-node.
    dependencies: Object.fromEntries(
      Object.entries(own.dependencies as Record<string, string>).filter(([d]) =>
        externals.some((e) => e === d || e.startsWith(`${d}/`)),
      ),
    ),
  };
  fs.writeFileSync(path.join(outDir, "package.json"), `${JSON.stringify(published, null, 2)}\n`);
  fs.copyFileSync(path.join(PACK_DIR, "PulumiPolicy.yaml"), path.join(outDir, "PulumiPolicy.yaml"));
  return { dir: outDir, externals };
}

async function main(argv: string[]): Promise<number> {
  let out: string;
  try {
    const { values } = parseArgs({ args: argv, options: { out: { type: "string" } } });
    out = path.resolve(values.out ?? DEFAULT_OUT);
  } catch (e) {
    throw new UserError(
      `${(e as Error).message.split("\n")[0]}; usage: npm run policypack:build [-- --out DIR]`,
    );
  }
  const built = await buildPolicyPack(out);
  process.stdout.write(
    `policy pack built in ${path.relative(process.cwd(), built.dir) || "."}: index.js (requires ${built.externals.join(", ")}), package.json, PulumiPolicy.yaml\n` +
      `publish it with: cd ${path.relative(process.cwd(), built.dir)} && npm install && pulumi policy publish [org]\n`,
  );
  return 0;
}

if (require.main === module) runCommand("policypack:build", () => main(process.argv.slice(2)));
