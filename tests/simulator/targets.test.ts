// The non-default targets and the probe: a deployed stack's outputs, certificate files for an
// endpoint (the embedded broker stands in for it), and the prod policy denying the probe.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensurePki } from "../../local/identity/ca";
import { LocalBroker } from "../../local/broker/broker";
import { parseSimulateArgs } from "../../simulator/cli";
import { simulate } from "../../simulator/simulate";
import { fileCredentials, parseAwsOutputs } from "../../simulator/targets";
import { tempDir } from "../helpers/temp";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

function collect() {
  const lines: string[] = [];
  return { lines, out: { line: (l: string) => void lines.push(l), progress: () => undefined } };
}

describe("simulate targets", function () {
  this.timeout(30_000);

  describe("--aws: the stack outputs", () => {
    const things = ["store-sensor-seattle1"];
    it("reads the endpoint, certificate and key (generated mode); the CA is the system's", () => {
      const json = JSON.stringify({
        endpoint: "abc-ats.iot.us-east-1.amazonaws.com",
        certificatePems: { "store-sensor-seattle1": PEM },
        privateKeys: { "store-sensor-seattle1": KEY },
      });
      const o = parseAwsOutputs(json, "dev", things, undefined);
      assert.equal(o.endpoint, "abc-ats.iot.us-east-1.amazonaws.com");
      assert.deepEqual(o.credentials.get("store-sensor-seattle1"), { cert: PEM, key: KEY });
    });

    it("takes keys from --key-dir in csr mode, and says so when it is missing", () => {
      const json = JSON.stringify({
        endpoint: "e",
        certificatePems: { "store-sensor-seattle1": PEM },
      });
      assert.throws(
        () => parseAwsOutputs(json, "prod", things, undefined),
        /holds no private key for store-sensor-seattle1 .*pass --key-dir DIR holding store-sensor-seattle1.key/,
      );
      const dir = tempDir("keys");
      fs.writeFileSync(path.join(dir, "store-sensor-seattle1.key"), KEY);
      assert.equal(parseAwsOutputs(json, "prod", things, dir).credentials.get(things[0])?.key, KEY);
    });

    it("names what is missing when the stack is not deployed", () => {
      assert.throws(
        () => parseAwsOutputs("{}", "dev", things, undefined),
        /stack dev has no endpoint output; run pulumi up/,
      );
      assert.throws(
        () => parseAwsOutputs(JSON.stringify({ endpoint: "e" }), "dev", things, undefined),
        /no certificate for store-sensor-seattle1 in its certificatePems output/,
      );
    });
  });

  describe("--endpoint: certificate files", () => {
    it("needs {thing} in the paths for more than one device", () => {
      assert.throws(
        () => fileCredentials(["a", "b"], "c.crt", "k.key", undefined),
        /--cert and --key name one device's files but 2 devices would publish/,
      );
      assert.throws(
        () => fileCredentials(["a"], "/nope/{thing}.crt", "k", undefined),
        /cannot read --cert \/nope\/a.crt: ENOENT/,
      );
    });

    it("publishes to a broker given by host, port and files", async () => {
      const pki = await ensurePki(path.join(tempDir("ep"), "pki"), ["store-sensor-seattle1"]);
      const broker = await LocalBroker.start({
        ca: pki.caPem,
        key: pki.server.key,
        cert: pki.server.cert,
      });
      try {
        const p = pki.paths("store-sensor-seattle1");
        const opts = parseSimulateArgs([
          ...["--endpoint", "localhost", "--port", String(broker.port)],
          ...[
            "--cert",
            p.cert.replace("store-sensor-seattle1", "{thing}"),
            "--key",
            p.key,
            "--ca",
            p.ca,
          ],
          ...["--count", "3", "--rate", "20"],
        ]);
        assert.ok(opts !== "help");
        const { lines, out } = collect();
        assert.equal(await simulate(opts, out), 0, lines.join("\n"));
        assert.equal(broker.stats.publishes, 3);
        assert.match(lines.join("\n"), /^  acknowledged \(PUBACK\)\s+3$/m);
        assert.doesNotMatch(lines.join("\n"), /probe:/, "the probe is for the embedded pipeline");
      } finally {
        await broker.stop();
      }
    });
  });

  // The probe's answer depends on the protocol (mqtt.html, "MQTT reason codes"): MQTT 3.1.1 is
  // disconnected, MQTT 5 (the default) gets PUBACK 0x87 and keeps its connection.
  const denied: Array<[string, RegExp]> = [
    ["3.1.1", /DENIED, the broker disconnected the device/],
    ["5", /DENIED with PUBACK 0x87 Not authorized, the device stays connected/],
  ];
  for (const [protocol, answer] of denied) {
    it(`prod over MQTT ${protocol}: every device publishes on its own topic, and the least-privilege policy denies the probe`, async () => {
      const opts = parseSimulateArgs([
        "--stack",
        "prod",
        "--protocol",
        protocol,
        "--count",
        "2",
        "--rate",
        "20",
        "--fast",
        "--state-dir",
        tempDir("prod"),
      ]);
      assert.ok(opts !== "help");
      const { lines, out } = collect();
      assert.equal(await simulate(opts, out), 0, lines.join("\n"));
      const text = lines.join("\n");
      assert.match(
        text,
        /publishing: 3 device\(s\) × 20 msg\/s, 2 message\(s\) each, QoS 1, synthetic data, to SeattleStoreTemp\/\{thing\}/,
      );
      assert.match(text, /^  acknowledged \(PUBACK\)\s+6$/m);
      assert.match(
        text,
        /probe: store-sensor-seattle1 published one valid message outside its own topic, to SeattleStoreTemp\/probe-outside: /,
      );
      assert.match(text, answer);
    });
  }
});
