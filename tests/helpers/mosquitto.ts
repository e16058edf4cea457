// Suites that need Mosquitto (a Debian package, not an npm one): on a machine without it they are
// skipped with the reason in their title; CI sets REQUIRE_MOSQUITTO=1 (.ci/run installs the
// packages), and there a missing binary fails the run instead of skipping.
import * as fs from "node:fs";
import * as path from "node:path";

/** The environment variable that turns a missing Mosquitto from a skip into a failure. */
export const REQUIRE_MOSQUITTO = "REQUIRE_MOSQUITTO";

const INSTALL = "apt-get install mosquitto mosquitto-clients";

export interface MosquittoBinaries {
  readonly mosquitto: string;
  readonly mosquittoPub: string;
  readonly mosquittoSub: string;
}

function find(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin"]) {
    const p = path.join(dir, name);
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

/** The three binaries, or the names of those missing. */
export function findMosquitto(): MosquittoBinaries | { readonly missing: string[] } {
  const found = {
    mosquitto: find("mosquitto"),
    mosquittoPub: find("mosquitto_pub"),
    mosquittoSub: find("mosquitto_sub"),
  };
  const missing = Object.entries(found)
    .filter(([, p]) => p === undefined)
    .map(([k]) => k.replace(/([A-Z])/g, (c) => `_${c.toLowerCase()}`));
  return missing.length > 0 ? { missing } : (found as MosquittoBinaries);
}

/**
 * A `describe` whose suite runs only where Mosquitto is installed. Elsewhere the suite is skipped
 * and its title says why and how to install it, unless REQUIRE_MOSQUITTO=1, where it fails.
 */
export function describeWithMosquitto(
  title: string,
  body: (this: Mocha.Suite, bin: MosquittoBinaries) => void,
): void {
  const bin = findMosquitto();
  if (!("missing" in bin)) {
    describe(title, function () {
      body.call(this, bin);
    });
    return;
  }
  const reason = `${bin.missing.join(", ")} not installed (${INSTALL})`;
  if (process.env[REQUIRE_MOSQUITTO] === "1") {
    describe(title, () => {
      it(`needs Mosquitto, which ${REQUIRE_MOSQUITTO}=1 makes mandatory`, () => {
        throw new Error(`${reason}; ${REQUIRE_MOSQUITTO}=1 requires it`);
      });
    });
    return;
  }
  describe.skip(`${title} [SKIPPED: ${reason}; CI installs it and runs this suite]`, function () {
    body.call(this, { mosquitto: "", mosquittoPub: "", mosquittoSub: "" });
  });
}
