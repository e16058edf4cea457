// `npm run simulate -- --provision` against the embedded pipeline of the fleet stack: the first
// run provisions four devices and reports the fifth's refusal, the second reuses their identities;
// the options and the AWS outputs a provisioned run reads.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseSimulateArgs } from "../../simulator/cli";
import { identityDirFor } from "../../simulator/provision";
import { simulate } from "../../simulator/simulate";
import { parseAwsProvisioningOutputs } from "../../simulator/targets";
import { tempDir } from "../helpers/temp";

function capture() {
  const lines: string[] = [];
  return { lines, out: { line: (l: string) => lines.push(l), progress: () => undefined } };
}

describe("npm run simulate -- --provision (fleet stack, embedded pipeline)", function () {
  this.timeout(90_000);
  const state = tempDir("simulate-provision");

  it("provisions serials 1-4, reports serial 5 refused by the hook, and publishes from the four", async () => {
    const opts = parseSimulateArgs([
      ...["--stack", "fleet", "--provision", "--count", "2", "--rate", "20", "--no-probe"],
      ...["--state-dir", state],
    ]);
    assert.ok(opts !== "help");
    const { lines, out } = capture();
    assert.equal(await simulate(opts, out), 0, lines.join("\n"));
    const text = lines.join("\n");
    assert.match(
      text,
      /^provisioning: 4 provisioned, 0 reused from earlier runs, 1 refused, 0 failed/m,
    );
    assert.match(
      text,
      /serial 5 refused: RegisterThing rejected: 403 ACCESS_DENIED: the pre-provisioning hook refused/,
    );
    assert.match(text, /^ {2}acknowledged \(PUBACK\)\s+8$/m);
    const dir = identityDirFor(state, "local", "fleet");
    assert.deepEqual(fs.readdirSync(dir).sort(), ["1", "2", "3", "4"]);
    for (const serial of ["1", "2", "3", "4"]) {
      assert.equal(fs.statSync(path.join(dir, serial, "device.key")).mode & 0o777, 0o600);
    }
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  });

  it("a second run reuses the four identities and provisions none", async () => {
    const opts = parseSimulateArgs([
      ...["--stack", "fleet", "--provision", "--count", "1", "--no-probe", "--state-dir", state],
    ]);
    assert.ok(opts !== "help");
    const { lines, out } = capture();
    assert.equal(await simulate(opts, out), 0, lines.join("\n"));
    assert.match(
      lines.join("\n"),
      /^provisioning: 0 provisioned, 4 reused from earlier runs, 1 refused, 0 failed/m,
    );
  });

  it("refuses --provision on a stack that registers its devices, and a fleet stack without it", async () => {
    const { out } = capture();
    const dev = parseSimulateArgs(["--provision", "--state-dir", tempDir("p-dev")]);
    assert.ok(dev !== "help");
    await assert.rejects(
      simulate(dev, out),
      /^UsageError: --provision: stack dev is in certificateMode generated/,
    );
    const fleet = parseSimulateArgs(["--stack", "fleet", "--state-dir", tempDir("p-fleet")]);
    assert.ok(fleet !== "help");
    await assert.rejects(
      simulate(fleet, out),
      /fleet-provisioning: its devices have no certificate until they provision themselves; add --provision/,
    );
  });

  it("parses --provision and --provision-keys, and refuses them with --endpoint", () => {
    const csr = parseSimulateArgs(["--provision"]);
    const keys = parseSimulateArgs(["--provision-keys"]);
    assert.ok(csr !== "help" && keys !== "help");
    assert.equal(csr.provision, "csr");
    assert.equal(keys.provision, "keys");
    assert.throws(
      () => parseSimulateArgs(["--provision", "--endpoint", "h", "--cert", "c", "--key", "k"]),
      /--provision needs the claim certificate and template of a stack/,
    );
  });

  it("reads a deployed fleet stack's outputs, and says what is missing", () => {
    const ok = parseAwsProvisioningOutputs(
      JSON.stringify({
        endpoint: "abc-ats.iot.us-east-1.amazonaws.com",
        provisioning: {
          templateName: "sensor-fleet",
          claimCertificatePem: "PEM",
          claimPolicyName: "c",
        },
        claimPrivateKey: "KEY",
      }),
      "fleet",
    );
    assert.deepEqual(ok, {
      endpoint: "abc-ats.iot.us-east-1.amazonaws.com",
      templateName: "sensor-fleet",
      claim: { cert: "PEM", key: "KEY" },
    });
    assert.throws(
      () => parseAwsProvisioningOutputs(JSON.stringify({ endpoint: "e" }), "prod"),
      /stack prod has no endpoint and provisioning outputs; deploy it in certificateMode fleet-provisioning/,
    );
    assert.throws(
      () =>
        parseAwsProvisioningOutputs(
          JSON.stringify({
            endpoint: "e",
            provisioning: { templateName: "t", claimCertificatePem: "P" },
          }),
          "fleet",
        ),
      /shows no claimPrivateKey; the outputs must be read with --show-secrets/,
    );
  });
});
