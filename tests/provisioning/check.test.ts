// `npm run check -- --stack fleet`: the guardrails pass the fleet-provisioning stack (exit 0); the
// advisories left are the claim certificate's AWS-made key in the state, which is true, and the
// alarm topic with no subscription (committed fleet has no alarmEmail; pulumi up refuses that).
import { strict as assert } from "node:assert";
import { main } from "../../tools/check";

describe("npm run check on the fleet stack", function () {
  this.timeout(120_000);

  it("exits 0 with no mandatory violation; the claim certificate's key and the unsubscribed alarm topic are the advisories", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      ["--stack", "fleet"],
      (l) => out.push(l),
      (l) => err.push(l),
    );
    const report = out.join("\n");
    assert.equal(code, 0, report + err.join("\n"));
    assert.match(report, /26 of 26 policies enabled/);
    assert.match(report, /^2 violations: 0 mandatory, 2 advisory\.$/m);
    assert.match(
      report,
      /\[advisory\] aws:iot\/certificate:Certificate iot-pipeline-provisioning-claim/,
    );
    assert.match(report, /\[advisory\] aws:sns\/topic:Topic iot-pipeline-alarms-topic/);
  });

  it("without a pre-provisioning hook (any serial, re-provisioning allowed): one more advisory, still exit 0", async () => {
    const out: string[] = [];
    const code = await main(
      [
        "--stack",
        "fleet",
        "-c",
        'provisioning={"templateName":"sensor-fleet","claimPolicyName":"c","createKeys":false,"allowedSerials":null,"allowReprovisioning":true}',
      ],
      (l) => out.push(l),
      () => undefined,
    );
    assert.equal(code, 0, out.join("\n"));
    assert.match(out.join("\n"), /iot-provisioning-template-hook \(advisory\)/);
  });
});
