// ESLint flat config: typescript-eslint's recommended rules over every TypeScript file.
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "node_modules/**",
      "policypack/node_modules/**",
      "bin/**",
      ".local/**",
      "**/*.generated.*",
      "analytics/flink/**",
    ],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
    },
  },
  {
    // Plain CommonJS run by Node before any TypeScript exists (tools/ts-hook.cjs): require() is
    // how it loads.
    files: ["**/*.cjs"],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
