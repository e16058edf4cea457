// Mosquitto's own clients drive the fleet provisioning MQTT API of the embedded broker over mutual
// TLS: mosquitto_rr (subscribe to the response topic, publish the request, on one connection, as
// the API requires) asks for keys and a certificate and registers the thing; mosquitto_pub then
// publishes telemetry with the new identity. Nothing here uses this project's device code.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseStackConfig, readRawStackConfig } from "../../core/stack-config";
import { makeCsr } from "../../device/provisioner";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { tempDir } from "../helpers/temp";
import { describeWithMosquitto } from "../helpers/mosquitto";

/** Runs a client to completion without blocking the event loop (the broker is in this process). */
function run(bin: string, args: string[], limitMs = 15_000) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  return new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
}

describeWithMosquitto(
  "fleet provisioning driven by Mosquitto's clients (mutual TLS)",
  function (bin) {
    this.timeout(60_000);
    const rr = path.join(path.dirname(bin.mosquittoPub), "mosquitto_rr");
    let p: LocalPipeline;
    let dir: string;
    let claim: string[];

    before(async () => {
      dir = tempDir("provisioning-mosquitto");
      // The fleet stack, allowing CreateKeysAndCertificate too, so both certificate calls are driven.
      const raw = readRawStackConfig("fleet");
      const config = parseStackConfig(
        { ...raw, provisioning: { ...(raw.provisioning as object), createKeys: true } },
        "fleet",
      );
      p = await startLocalPipeline(config, { stateDir: dir });
      const pki = path.join(dir, "pki");
      claim = [
        ...["-h", "127.0.0.1", "-p", String(p.port), "--cafile", path.join(pki, "ca.crt")],
        ...["--cert", path.join(pki, "identities", "provisioning-claim.crt")],
        ...["--key", path.join(pki, "identities", "provisioning-claim.key")],
      ];
    });
    after(async () => {
      await p?.stop();
    });

    /** One request and its answer on one connection (MQTT 3.1.1, as AWS IoT speaks it). */
    async function request(clientId: string, topic: string, response: string, message?: string) {
      const r = await run(rr, [
        ...claim,
        ...["-V", "311", "-q", "1", "-W", "10", "-i", clientId, "-t", topic, "-e", response],
        ...(message === undefined ? ["-n"] : ["-m", message]),
      ]);
      assert.equal(r.code, 0, `mosquitto_rr exited ${r.code}: ${r.out}`);
      return JSON.parse(r.out.trim()) as Record<string, unknown>;
    }

    it("CreateKeysAndCertificate, RegisterThing, then mosquitto_pub publishes as the new thing", async () => {
      const keys = await request(
        "claim-mq1",
        "$aws/certificates/create/json",
        "$aws/certificates/create/json/accepted",
      );
      assert.deepEqual(Object.keys(keys).sort(), [
        "certificateId",
        "certificateOwnershipToken",
        "certificatePem",
        "privateKey",
      ]);
      const reg = await request(
        "claim-mq1",
        "$aws/provisioning-templates/sensor-fleet/provision/json",
        "$aws/provisioning-templates/sensor-fleet/provision/json/accepted",
        JSON.stringify({
          certificateOwnershipToken: keys.certificateOwnershipToken,
          parameters: { SerialNumber: "1" },
        }),
      );
      assert.deepEqual(reg, {
        deviceConfiguration: { telemetryTopic: "SeattleStoreTemp/store-sensor-seattle1" },
        thingName: "store-sensor-seattle1",
      });
      fs.writeFileSync(path.join(dir, "d1.crt"), keys.certificatePem as string);
      fs.writeFileSync(path.join(dir, "d1.key"), keys.privateKey as string, { mode: 0o600 });
      const reading = JSON.stringify({
        thing: "store-sensor-seattle1",
        timestamp: Date.now(),
        temperature: 20,
        max_temperature: 21,
        min_temperature: 19,
      });
      const accepted = p.broker.stats.publishes;
      const pub = await run(bin.mosquittoPub, [
        ...["-h", "127.0.0.1", "-p", String(p.port), "--cafile", path.join(dir, "pki", "ca.crt")],
        ...["--cert", path.join(dir, "d1.crt"), "--key", path.join(dir, "d1.key")],
        ...["-V", "311", "-q", "1", "-i", "store-sensor-seattle1"],
        ...["-t", "SeattleStoreTemp/store-sensor-seattle1", "-m", reading],
      ]);
      assert.equal(pub.code, 0, pub.out);
      assert.equal(p.broker.stats.publishes, accepted + 1);
    });

    it("CreateCertificateFromCsr with a CSR, and the hook's refusal on .../rejected", async () => {
      const { csrPem } = await makeCsr("7");
      const cert = await request(
        "claim-mq7",
        "$aws/certificates/create-from-csr/json",
        "$aws/certificates/create-from-csr/json/accepted",
        JSON.stringify({ certificateSigningRequest: csrPem }),
      );
      assert.deepEqual(Object.keys(cert).sort(), [
        "certificateId",
        "certificateOwnershipToken",
        "certificatePem",
      ]);
      const refused = await request(
        "claim-mq7",
        "$aws/provisioning-templates/sensor-fleet/provision/json",
        "$aws/provisioning-templates/sensor-fleet/provision/json/rejected",
        JSON.stringify({
          certificateOwnershipToken: cert.certificateOwnershipToken,
          parameters: { SerialNumber: "7" },
        }),
      );
      assert.equal(refused.statusCode, 403);
      assert.equal(refused.errorCode, "ACCESS_DENIED");
    });
  },
);
