import { strict as assert } from "node:assert";
import { ConfigError } from "../../core/errors";
import { planPipeline } from "../../core/plan";
import {
  listStacks,
  loadStackConfig,
  parseStackConfig,
  readRawStackConfig,
} from "../../core/stack-config";

/** The dev stack's raw config with one key replaced. */
function devWith(key: string, value: unknown) {
  return { ...readRawStackConfig("dev"), [key]: value };
}

function rejects(key: string, value: unknown, message: RegExp) {
  assert.throws(
    // Each key's syntax in parseStackConfig, the rules that need a derived value in the plan.
    () => planPipeline(parseStackConfig(devWith(key, value), "dev")),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"), "the message is one line");
      return true;
    },
  );
}

describe("stack config", () => {
  it("lists the stacks that have a Pulumi.<stack>.yaml", () => {
    assert.deepEqual(listStacks(), ["dev", "fleet", "prod"]);
  });

  it("reads dev as the seed built it: one Seattle sensor, tutorial policy, 5 MiB / 300 s", () => {
    const c = loadStackConfig("dev");
    assert.deepEqual(
      c.things.map((t) => t.name),
      ["store-sensor-seattle1"],
    );
    assert.deepEqual(c.fleet[0].attributes, { city: "Seattle" });
    assert.equal(c.policy.mode, "tutorial");
    assert.equal(c.rule.sql, "SELECT * FROM 'SeattleStoreTemp/1'");
    assert.equal(c.delivery.bufferSizeMiB, 5);
    assert.equal(c.delivery.bufferIntervalSeconds, 300);
    assert.equal(c.delivery.compression, "UNCOMPRESSED");
    assert.equal(c.delivery.errorLogging, false);
    assert.equal(c.delivery.bucketName, undefined);
  });

  it("reads prod with least privilege, a fleet of three and per-thing topics", () => {
    const c = loadStackConfig("prod");
    assert.equal(c.policy.mode, "least-privilege");
    assert.equal(c.things.length, 3);
    assert.equal(c.telemetryTopic, "SeattleStoreTemp/{thing}");
    assert.equal(c.certificates.mode, "csr");
    // The CSRs are made on the devices' machine (npm run csr), not committed: found or missing.
    const { csrFiles, missingCsrs } = c.certificates;
    assert.equal(Object.keys(csrFiles).length + missingCsrs.length, 3);
  });

  it("accepts integers and booleans as the text the Pulumi CLI hands over", () => {
    const c = parseStackConfig({ ...devWith("bufferSizeMiB", "64"), errorLogging: "true" }, "dev");
    assert.equal(c.delivery.bufferSizeMiB, 64);
    assert.equal(c.delivery.errorLogging, true);
  });

  it("rejects a buffer size outside 1-128 MiB", () => {
    rejects("bufferSizeMiB", 129, /bufferSizeMiB = 129 is invalid: .*from 1 to 128/);
    rejects("bufferSizeMiB", 0, /bufferSizeMiB = 0 is invalid/);
  });
  it("rejects a buffer interval outside 0-900 s", () => {
    rejects("bufferIntervalSeconds", 901, /bufferIntervalSeconds = 901 is invalid: .*0 to 900/);
    rejects("bufferIntervalSeconds", 1.5, /bufferIntervalSeconds = 1.5 is invalid/);
  });
  it("rejects a rule name with characters other than letters, digits and underscore", () => {
    rejects("ruleName", "sensor-rule", /ruleName = "sensor-rule" is invalid: use only letters/);
  });
  it("rejects SQL without a quoted FROM topic", () => {
    rejects("ruleSql", "SELECT * FROM SeattleStoreTemp", /ruleSql = .* must name a quoted topic/);
  });
  it("rejects an unknown policy mode", () => {
    rejects(
      "policyMode",
      "open",
      /policyMode = "open" is invalid: must be one of tutorial, least-privilege/,
    );
  });
  it("rejects an empty fleet", () => {
    rejects("fleet", [], /fleet = \[\] is invalid: must be a non-empty list/);
  });
  it("records the CSRs that do not exist (pulumi up refuses them; the simulator needs none)", () => {
    const raw = { ...devWith("certificateMode", "csr"), csrDir: "no/such/dir" };
    const c = parseStackConfig(raw, "dev");
    assert.deepEqual(c.certificates.csrFiles, {});
    assert.match(c.certificates.missingCsrs[0], /no\/such\/dir\/store-sensor-seattle1\.csr$/);
  });
  it("rejects a CSR file that is not a CSR", () => {
    const raw = { ...devWith("certificateMode", "csr"), csrDir: "tests/fixtures/not-a-csr" };
    assert.throws(() => parseStackConfig(raw, "dev"), /is not a PEM certificate signing request/);
  });
  it("rejects an unknown stack, naming the known ones", () => {
    assert.throws(
      () => loadStackConfig("staging"),
      /unknown stack "staging": .* known stacks: dev, fleet, prod/,
    );
  });
});
