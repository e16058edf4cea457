// Suites that need a real browser: Debian's chromium package (not an npm download; puppeteer-core
// drives it). On a machine without it they are skipped with the reason in their title; CI sets
// REQUIRE_CHROMIUM=1 (.ci/run installs the package), and there a missing browser fails the run.
import * as fs from "node:fs";

/** The environment variable that turns a missing Chromium from a skip into a failure (CI sets it). */
export const REQUIRE_CHROMIUM = "REQUIRE_CHROMIUM";

/** The environment variable naming the browser binary to use instead of searching for one. */
export const CHROMIUM_BIN = "CHROMIUM_BIN";

export const INSTALL_CHROMIUM = "apt-get install chromium";

/** Debian's chromium (or $CHROMIUM_BIN), or undefined. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const chosen = env[CHROMIUM_BIN];
  if (chosen !== undefined && chosen !== "") return fs.existsSync(chosen) ? chosen : undefined;
  return ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => fs.existsSync(p));
}

/**
 * A `describe` whose suite runs only where Chromium is installed. Elsewhere the suite is skipped
 * and its title says why and how to install it, unless REQUIRE_CHROMIUM=1, where it fails.
 */
export function describeWithChromium(
  title: string,
  body: (this: Mocha.Suite, chromium: string) => void,
): void {
  const bin = findChromium();
  if (bin !== undefined) {
    describe(title, function () {
      body.call(this, bin);
    });
    return;
  }
  const reason = `chromium not installed (${INSTALL_CHROMIUM}, or set ${CHROMIUM_BIN})`;
  if (process.env[REQUIRE_CHROMIUM] === "1") {
    describe(title, () => {
      it(`needs Chromium, which ${REQUIRE_CHROMIUM}=1 makes mandatory`, () => {
        throw new Error(`${reason}; ${REQUIRE_CHROMIUM}=1 requires it`);
      });
    });
    return;
  }
  describe.skip(`${title} [SKIPPED: ${reason}; CI installs it and runs this suite]`, function () {
    body.call(this, "");
  });
}
