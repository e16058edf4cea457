// Suites that need Mosquitto (a Debian package, not an npm one): on a machine without it they are
// skipped with the reason in their title; CI sets REQUIRE_MOSQUITTO=1 (.ci/run installs the
// packages), and there a missing binary fails the run instead of skipping.
import {
  findMosquitto,
  INSTALL_MOSQUITTO,
  REQUIRE_MOSQUITTO,
  type MosquittoBinaries,
} from "../../tools/mosquitto";

export { findMosquitto, REQUIRE_MOSQUITTO, type MosquittoBinaries };

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
  const reason = `${bin.missing.join(", ")} not installed (${INSTALL_MOSQUITTO})`;
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

/**
 * A mosquitto_pub / mosquitto_sub connection over mutual TLS: the broker's address, the CA to
 * trust, the client's certificate and key files, and its client id.
 */
export function mosquittoTlsArgs(
  port: number,
  files: { readonly ca: string; readonly cert: string; readonly key: string },
  clientId: string,
  host = "127.0.0.1",
): string[] {
  return [
    ...["-h", host, "-p", String(port)],
    ...["--cafile", files.ca, "--cert", files.cert, "--key", files.key],
    ...["-i", clientId],
  ];
}
