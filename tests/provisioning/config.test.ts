// certificateMode fleet-provisioning in the stack config: what the fleet stack reads, and the one
// line each bad value gets.
import { strict as assert } from "node:assert";
import { ConfigError } from "../../core/errors";
import { loadStackConfig, parseStackConfig, readRawStackConfig } from "../../core/stack-config";

function rejects(overrides: Record<string, unknown>, message: RegExp) {
  const raw = { ...readRawStackConfig("fleet"), ...overrides };
  assert.throws(
    () => parseStackConfig(raw, "fleet"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"), "one line");
      return true;
    },
  );
}

const PROVISIONING = {
  templateName: "sensor-fleet",
  claimPolicyName: "sensor-fleet-claim",
  createKeys: false,
  allowedSerials: ["1"],
};

describe("stack config: certificateMode fleet-provisioning", () => {
  it("reads the fleet stack: template, claim policy, group, prefix and the hook's serials", () => {
    const c = loadStackConfig("fleet");
    assert.equal(c.certificates.mode, "fleet-provisioning");
    assert.deepEqual(c.provisioning, {
      templateName: "sensor-fleet",
      claimPolicyName: "sensor-fleet-claim",
      group: "Seattle",
      thingPrefix: "store-sensor-seattle",
      createKeys: false,
      allowedSerials: ["1", "2", "3", "4"],
      allowReprovisioning: false,
    });
    assert.equal(c.things.length, 5);
  });

  it("the other modes have no provisioning config", () => {
    assert.equal(loadStackConfig("dev").provisioning, undefined);
    assert.equal(loadStackConfig("prod").provisioning, undefined);
  });

  it("allowReprovisioning is off unless set to true; anything but a boolean is refused", () => {
    const raw = readRawStackConfig("fleet");
    const on = parseStackConfig(
      { ...raw, provisioning: { ...PROVISIONING, allowReprovisioning: true } },
      "fleet",
    );
    assert.equal(on.provisioning?.allowReprovisioning, true);
    assert.equal(loadStackConfig("fleet").provisioning?.allowReprovisioning, false);
    rejects(
      { provisioning: { ...PROVISIONING, allowReprovisioning: "yes" } },
      /provisioning\.allowReprovisioning = "yes" is invalid: must be true .* or false \(the pre-provisioning hook refuses it\)/,
    );
  });

  it("null allowedSerials means any serial; numbers are read as serials", () => {
    const raw = readRawStackConfig("fleet");
    const none = parseStackConfig(
      { ...raw, provisioning: { ...PROVISIONING, allowedSerials: null } },
      "fleet",
    );
    assert.equal(none.provisioning?.allowedSerials, undefined);
    const nums = parseStackConfig(
      { ...raw, provisioning: { ...PROVISIONING, allowedSerials: [7, 8] } },
      "fleet",
    );
    assert.deepEqual(nums.provisioning?.allowedSerials, ["7", "8"]);
  });

  it("refuses a template name AWS would refuse", () => {
    rejects(
      { provisioning: { ...PROVISIONING, templateName: "a b" } },
      /provisioning\.templateName = "a b" is invalid: use 1-36 letters, digits/,
    );
    rejects(
      { provisioning: { ...PROVISIONING, templateName: "x".repeat(37) } },
      /provisioning\.templateName/,
    );
  });

  it("refuses two groups, and a group of named things (no prefix to name provisioned things)", () => {
    rejects(
      {
        fleet: [
          { group: "A", thingPrefix: "a-", count: 1 },
          { group: "B", thingPrefix: "b-", count: 1 },
        ],
      },
      /fleet = \["A","B"\] is invalid: certificateMode fleet-provisioning provisions into one group/,
    );
    rejects({ fleet: [{ group: "A", things: ["x"] }] }, /provisions into one group/);
  });

  it("refuses a prefix in the claim client ids' namespace", () => {
    rejects(
      { fleet: [{ group: "A", thingPrefix: "claim-", count: 1 }] },
      /fleet\[0\]\.thingPrefix = "claim-" is invalid: must not start with claim-/,
    );
  });

  it("refuses bad serials and an empty list", () => {
    rejects(
      { provisioning: { ...PROVISIONING, allowedSerials: ["a b"] } },
      /provisioning\.allowedSerials\[0\] = "a b" is invalid: serials are 1-64/,
    );
    rejects(
      { provisioning: { ...PROVISIONING, allowedSerials: [] } },
      /provisioning\.allowedSerials = \[\] is invalid: must be a list of 1-10000 serials, or null/,
    );
    rejects({ provisioning: { ...PROVISIONING, createKeys: "yes" } }, /provisioning\.createKeys/);
    rejects({ provisioning: "nope" }, /provisioning = "nope" is invalid/);
  });
});
