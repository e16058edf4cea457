// What `pulumi preview`/`up` refuse (core/deploy-readiness.ts), on the committed stacks as a fresh
// clone has them, while `npm run simulate` keeps reading the same stacks.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assertDeployable, deployProblems } from "../../core/deploy-readiness";
import { ConfigError } from "../../core/errors";
import { PROJECT_DIR } from "../../core/project";
import { loadStackConfig, parseStackConfig, readRawStackConfig } from "../../core/stack-config";
import { makeCsrs } from "../../tools/make-csr";

const SHA = "ab".repeat(64);
const prodWith = (values: Record<string, unknown>) =>
  parseStackConfig({ ...readRawStackConfig("prod"), ...values }, "prod");

/** A copy of the project's stack files in a temporary folder, without any CSR (a fresh clone). */
function freshClone(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "readiness-"));
  for (const f of fs.readdirSync(PROJECT_DIR).filter((f) => /^Pulumi(\..+)?\.yaml$/.test(f))) {
    fs.copyFileSync(path.join(PROJECT_DIR, f), path.join(dir, f));
  }
  return dir;
}

describe("deploy readiness: what pulumi up refuses", () => {
  it("the repository commits no CSR: they are made where the devices' keys live", () => {
    const ignored = fs.readFileSync(path.join(PROJECT_DIR, ".gitignore"), "utf8");
    assert.match(ignored, /^\/csr\/$/m);
  });

  it("prod from a fresh clone: refused for its missing CSRs, its unsubscribed alarms and its unpinned jar", () => {
    const dir = freshClone();
    const config = loadStackConfig("prod", dir);
    assert.deepEqual(deployProblems(config, { dir }), [
      "stack prod: no CSR for 3 device(s) (csr/prod/store-sensor-seattle1.csr, csr/prod/store-sensor-seattle2.csr, csr/prod/store-sensor-seattle3.csr); run `npm run csr -- --stack prod` on the machine that keeps the devices' keys, then preview again",
      "stack prod: config iot-pipeline:alarmEmail is not set, so its alarms would notify an SNS topic nobody subscribes to; run `pulumi config set iot-pipeline:alarmEmail you@example.com` (or `pulumi config set iot-pipeline:alarmEmail external` if you subscribe the topic yourself)",
      'stack prod: config iot-pipeline:flinkConnectorSha512 is not set, so the Managed Flink connector jar would be deployed unverified; pin the digest Maven Central publishes: pulumi config set iot-pipeline:flinkConnectorSha512 "$(curl -fsS https://repo1.maven.org/maven2/org/apache/flink/flink-sql-connector-kinesis/5.0.0-1.20/flink-sql-connector-kinesis-5.0.0-1.20.jar.sha512)"',
    ]);
    assert.throws(
      () => assertDeployable(config, { dir }),
      (e: unknown) =>
        e instanceof ConfigError &&
        !e.message.includes("\n") &&
        /^stack prod: no CSR for 3 device\(s\) .* \(and 2 more: see npm run check -- --stack prod\)$/.test(
          e.message,
        ),
    );
  });

  it("prod with its CSRs made, an address and a pinned digest is ready", async () => {
    const dir = freshClone();
    await makeCsrs({ stack: "prod", dir, keyDir: path.join(dir, "keys") });
    const raw = {
      ...readRawStackConfig("prod", dir),
      alarmEmail: "ops@example.com",
      flinkConnectorSha512: SHA,
    };
    assert.deepEqual(deployProblems(parseStackConfig(raw, "prod", dir), { dir }), []);
  });

  it("fleet: alarms on and no address is refused; `external` is the explicit opt-out", () => {
    const raw = { ...readRawStackConfig("fleet"), flinkConnectorSha512: SHA };
    assert.deepEqual(deployProblems(parseStackConfig(raw, "fleet")), [
      "stack fleet: config iot-pipeline:alarmEmail is not set, so its alarms would notify an SNS topic nobody subscribes to; run `pulumi config set iot-pipeline:alarmEmail you@example.com` (or `pulumi config set iot-pipeline:alarmEmail external` if you subscribe the topic yourself)",
    ]);
    const external = parseStackConfig({ ...raw, alarmEmail: "external" }, "fleet");
    assert.equal(external.monitoring.alarms.subscribedElsewhere, true);
    assert.equal(external.monitoring.alarms.email, undefined);
    assert.deepEqual(deployProblems(external), []);
  });

  it("dev needs neither an address nor a pinned digest (alarms off, jar digest logged)", () => {
    assert.deepEqual(deployProblems(loadStackConfig("dev")), []);
    const alarmed = parseStackConfig({ ...readRawStackConfig("dev"), alarms: true }, "dev");
    assert.deepEqual(deployProblems(alarmed), []);
  });

  it("which stacks are dev is an option", () => {
    const dev = loadStackConfig("dev");
    assert.equal(deployProblems(dev, { devStacks: ["sandbox"] }).length, 1);
    const prod = prodWith({ flinkConnectorSha512: SHA });
    assert.equal(
      deployProblems(prod, { devStacks: ["prod"] }).filter((p) => !p.includes("no CSR")).length,
      0,
    );
  });

  it("the simulator's reading of prod needs no CSR, address or digest", () => {
    const config = loadStackConfig("prod", freshClone());
    assert.equal(config.certificates.mode, "csr");
    assert.equal(config.certificates.missingCsrs.length, 3);
    assert.deepEqual(config.certificates.csrFiles, {});
  });

  it("a CSR that is there must still be a CSR", () => {
    assert.throws(
      () => prodWith({ csrDir: "tests/fixtures/not-a-csr" }),
      /csrDir = "tests\/fixtures\/not-a-csr" is invalid: .* is not a PEM certificate signing request/,
    );
  });

  it("flinkConnectorSha512 takes Maven Central's .sha512 file as it is, and nothing else", () => {
    const upper = prodWith({ flinkConnectorSha512: `${SHA.toUpperCase()}  x.jar` });
    assert.equal(upper.flinkConnector.sha512, SHA);
    assert.throws(
      () => prodWith({ flinkConnectorSha512: "abc" }),
      /^ConfigError: config iot-pipeline:flinkConnectorSha512 = "abc" is invalid: set the jar's SHA-512 as 128 hex digits/,
    );
    assert.throws(
      () => prodWith({ flinkConnectorUrl: "http://example.com/x.jar" }),
      /config iot-pipeline:flinkConnectorUrl = "http:\/\/example.com\/x.jar" is invalid: set an https:\/\/ URL/,
    );
  });
});
