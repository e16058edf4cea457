// The run-time loader of the project's TypeScript: `node --require ./tools/ts-hook.cjs file.ts`.
// npm run simulate, subscribe, query, check, bench and csr, and the processes they fork, run
// through it. It compiles each .ts file as Node requires it, with esbuild (a dependency), to
// CommonJS in place: __dirname and __filename stay the source's, as under tsc's output.
//
// Why not tsx, which the test runner still uses: tsx compiles with esbuild's `keepNames`, which
// wraps every function and closure in a `__name(fn, "name")` call that runs each time the closure
// is made — about 4 % of the local pipeline's CPU per message in a V8 profile (docs/benchmarks.md,
// issue 28). Names need no keeping here: nothing is minified, so a function's own name stands.
// Type checking is `npm run typecheck`'s job, as with tsx.
"use strict";
// The compiled CommonJS require()s aedes, an ES module: Node loads one that way from 22.12 on.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `error: Node.js ${process.versions.node} is too old for this project; install Node.js 22.12 or later (README, Quickstart)\n`,
  );
  process.exit(1);
}
const fs = require("node:fs");
const path = require("node:path");
const Module = require("node:module");
const { transformSync } = require("esbuild");

const PROJECT_DIR = path.resolve(__dirname, "..");
const tsconfig = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "tsconfig.json"), "utf8"));
// What of tsconfig.json changes emitted code (the ES2022 target makes class fields [[Define]]d).
const tsconfigRaw = {
  compilerOptions: {
    target: tsconfig.compilerOptions.target,
    esModuleInterop: tsconfig.compilerOptions.esModuleInterop,
    useDefineForClassFields: tsconfig.compilerOptions.useDefineForClassFields,
    experimentalDecorators: tsconfig.compilerOptions.experimentalDecorators,
  },
};

function compile(source, filename) {
  return transformSync(source, {
    loader: "ts",
    format: "cjs",
    target: `node${process.versions.node}`,
    // `import()` of a project file must resolve as require() does (extensionless .ts);
    // Node's ESM resolver would not find it.
    supported: { "dynamic-import": false },
    sourcemap: "inline",
    sourcefile: filename,
    tsconfigRaw,
  }).code;
}

Module._extensions[".ts"] = function loadTypeScript(module, filename) {
  module._compile(compile(fs.readFileSync(filename, "utf8"), filename), filename);
};
// Stack traces point at the TypeScript source, as they do under tsx.
process.setSourceMapsEnabled(true);
