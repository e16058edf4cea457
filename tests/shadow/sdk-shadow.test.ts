// AWS's own device SDK (aws-iot-device-sdk-v2 1.28) as the Device Shadow client of the embedded
// pipeline over real mutual TLS: IotShadowClientv2 (the request-response client) over MQTT 5 and
// MQTT 3.1.1, and the older IotShadowClient over MQTT 3.1.1, under dev (tutorial policy) and prod
// (least privilege with deviceShadows: each device its own shadow only). What AWS IoT does is from
// device-shadow-mqtt.html, device-shadow-document.html and device-shadow-data-flow.html.
import * as assert from "node:assert/strict";
import * as path from "node:path";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import { iot, iotshadow, mqtt as mqtt3, mqtt5 } from "aws-iot-device-sdk-v2";
import { loadStackConfig, type StackConfig } from "../../core/stack-config";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { tempDir } from "../helpers/temp";
import { until, within } from "../helpers/wait";

/** The name on the local CA's server certificate (local/identity/ca.ts: DNS localhost). */
const SERVER_NAME = "localhost";

type DeltaStream = ReturnType<iotshadow.IotShadowClientv2["createShadowDeltaUpdatedStream"]>;

/**
 * aws-crt 1.33's streaming operation (source/mqtt_request_response.c) holds two napi threadsafe
 * functions that keep node's event loop alive until its binding's count reaches zero: once on the
 * native termination after close(), once when the JS wrapper's native handle is garbage-collected.
 * The JS callbacks those functions hold capture the wrapper (dist/native/mqtt_request_response.js,
 * StreamingOperationBase.new), so the handle stays reachable and is never collected: after the last
 * test mocha waited forever (over MQTT 5), or node reached its teardown and the finalizer released
 * the functions only then, inside FreeEnvironment: a fatal signal, rc 255 (over MQTT 3.1.1). So
 * after close() the test drops the wrapper's handle and collects, which releases the two functions
 * while node still runs.
 */
function releaseStream(stream: DeltaStream): void {
  stream.close();
  const inner = (stream as unknown as { operation?: { _handle?: unknown } }).operation;
  if (inner) inner._handle = undefined;
}

/** V8's collector without --expose-gc on mocha's command line (only for the finalizers above). */
function collectGarbage(): void {
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
}

const OPTIONS = {
  maxRequestResponseSubscriptions: 4,
  maxStreamingSubscriptions: 2,
  operationTimeoutInSeconds: 5,
};

describe("AWS IoT Device SDK v2 shadow clients against the embedded pipeline", function () {
  this.timeout(90_000);
  const open5: mqtt5.Mqtt5Client[] = [];
  const open3: mqtt3.MqttClientConnection[] = [];
  const shadowClients: iotshadow.IotShadowClientv2[] = [];
  const streams: DeltaStream[] = [];

  async function closeClients(): Promise<void> {
    // Streams first (even when an assertion left one open), then the request-response clients,
    // then the MQTT clients they run on.
    for (const s of streams.splice(0)) releaseStream(s);
    for (const s of shadowClients.splice(0)) s.close();
    for (const c of open5.splice(0)) {
      const stopped = new Promise<void>((resolve) => c.once("stopped", () => resolve()));
      c.stop();
      await within(stopped, 5000, "the SDK client's stop").catch(() => undefined);
      c.close();
    }
    // A 3.1.1 connection closes its native side itself once disconnected (aws-crt's mqtt.ts).
    for (const c of open3.splice(0))
      await within(c.disconnect(), 5000, "disconnect").catch(() => undefined);
    collectGarbage();
  }

  async function connect5(p: LocalPipeline, identity: string): Promise<mqtt5.Mqtt5Client> {
    const dir = path.join(p.stateDir, "pki");
    const b = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
      SERVER_NAME,
      path.join(dir, "identities", `${identity}.crt`),
      path.join(dir, "identities", `${identity}.key`),
    );
    b.withCertificateAuthorityFromPath(undefined, path.join(dir, "ca.crt"));
    b.withPort(p.port);
    b.withConnectProperties({ clientId: identity, keepAliveIntervalSeconds: 30 });
    const client = new mqtt5.Mqtt5Client(b.build());
    open5.push(client);
    const connected = new Promise<void>((resolve, reject) => {
      client.once("connectionSuccess", () => resolve());
      client.once("connectionFailure", (e) => reject(e.error));
    });
    client.start();
    await within(connected, 10_000, `${identity} connecting`);
    return client;
  }

  async function connect3(p: LocalPipeline, identity: string) {
    const creds = identity === "console" ? p.consoleCredentials() : p.credentialsFor(identity);
    const b = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder(creds.cert, creds.key);
    b.with_certificate_authority(p.ca);
    b.with_endpoint(SERVER_NAME);
    b.with_port(p.port);
    b.with_client_id(identity);
    b.with_clean_session(true);
    const c = new mqtt3.MqttClient().new_connection(b.build());
    c.on("error", () => undefined);
    open3.push(c);
    await within(c.connect(), 10_000, `${identity} connecting over MQTT 3.1.1`);
    return c;
  }

  async function shadowClient(p: LocalPipeline, protocol: "5" | "3.1.1", identity: string) {
    const s =
      protocol === "5"
        ? iotshadow.IotShadowClientv2.newFromMqtt5(await connect5(p, identity), OPTIONS)
        : iotshadow.IotShadowClientv2.newFromMqtt311(await connect3(p, identity), OPTIONS);
    shadowClients.push(s);
    return s;
  }

  /** The page's flow with the SDK: desired set, the delta streamed, reported, get, delete. */
  async function flow(p: LocalPipeline, protocol: "5" | "3.1.1", thing: string, app: string) {
    const device = await shadowClient(p, protocol, thing);
    const operator = await shadowClient(p, protocol, app);
    // A fresh shadow: a delete first may answer 404 (no shadow), which is fine.
    await device.deleteShadow({ thingName: thing }).catch(() => undefined);
    const deltas: iotshadow.model.ShadowDeltaUpdatedEvent[] = [];
    const stream = device.createShadowDeltaUpdatedStream({ thingName: thing });
    streams.push(stream);
    const subscribed = new Promise<void>((resolve) =>
      stream.on("subscriptionStatus", (e) => {
        if (e.type === 0) resolve(); // SubscriptionEstablished
      }),
    );
    stream.on("incomingPublish", (e) => deltas.push(e.message));
    stream.open();
    await within(subscribed, 10_000, "the delta stream's subscription");

    const set = await operator.updateShadow({
      thingName: thing,
      state: { desired: { interval: 7, color: "red" } },
    });
    assert.deepEqual(set.state?.desired, { interval: 7, color: "red" });
    await until(() => deltas.length >= 1, "the delta on the device's stream");
    assert.deepEqual(deltas[0].state, { interval: 7, color: "red" });

    const reported = await device.updateShadow({
      thingName: thing,
      state: { reported: { interval: 7, color: "red" } },
    });
    assert.equal(reported.version, (set.version ?? 0) + 1);

    const got = await device.getShadow({ thingName: thing });
    assert.deepEqual(got.state?.desired, { interval: 7, color: "red" });
    assert.deepEqual(got.state?.reported, { interval: 7, color: "red" });
    assert.equal(got.state?.delta, undefined, "desired and reported agree: no delta");
    assert.equal(got.version, reported.version);

    // Optimistic locking through the SDK: a stale version is rejected with 409.
    await assert.rejects(
      device.updateShadow({ thingName: thing, state: { reported: { interval: 8 } }, version: 1 }),
      (e: unknown) => /409|Version conflict/.test(JSON.stringify(e) + String(e)),
    );

    const named = await device.updateNamedShadow({
      thingName: thing,
      shadowName: "config",
      state: { reported: { mode: "eco" } },
    });
    assert.ok((named.version ?? 0) >= 1);
    const gotNamed = await device.getNamedShadow({ thingName: thing, shadowName: "config" });
    assert.deepEqual(gotNamed.state?.reported, { mode: "eco" });

    const deleted = await device.deleteShadow({ thingName: thing });
    assert.equal(deleted.version, reported.version);
    await assert.rejects(device.getShadow({ thingName: thing }), (e: unknown) =>
      /404|No shadow exists/.test(JSON.stringify(e) + String(e)),
    );
  }

  for (const stack of ["dev", "prod"] as const) {
    describe(`${stack} stack`, () => {
      let p: LocalPipeline;
      let config: StackConfig;
      before(async () => {
        const loaded = loadStackConfig(stack);
        // prod says its devices use shadows: least privilege then grants each its own.
        config =
          stack === "prod"
            ? { ...loaded, policy: { ...loaded.policy, deviceShadows: true } }
            : loaded;
        p = await startLocalPipeline(config, { stateDir: tempDir(`sdk-shadow-${stack}`) });
      });
      afterEach(closeClients);
      after(async () => {
        await closeClients();
        await p?.stop();
      });

      for (const protocol of ["5", "3.1.1"] as const) {
        it(`IotShadowClientv2 over MQTT ${protocol}: update desired, receive the delta, report, get, version conflict, named shadow, delete`, async () => {
          const thing = config.things[0].name;
          // The operator is the console (IAM, not the policy); a second connection with the
          // thing's client id would take the device's over, as AWS IoT does.
          await flow(p, protocol, thing, "console");
        });
      }

      if (stack === "prod") {
        it("a device cannot read another thing's shadow: the SDK's request fails, the policy denied it", async () => {
          const [a, b] = config.things;
          const device = await shadowClient(p, "5", a.name);
          const before =
            p.authorizer.denials["iot:Subscribe"] + p.authorizer.denials["iot:Publish"];
          await assert.rejects(device.getShadow({ thingName: b.name }));
          const after = p.authorizer.denials["iot:Subscribe"] + p.authorizer.denials["iot:Publish"];
          assert.ok(after > before, "a Subscribe or Publish was denied by the policy");
        });
      }

      it("the older IotShadowClient over MQTT 3.1.1: publishUpdateShadow and the delta event", async () => {
        const thing = config.things[0].name;
        const conn = await connect3(p, thing);
        const client = new iotshadow.IotShadowClient(conn);
        const deltas: iotshadow.model.ShadowDeltaUpdatedEvent[] = [];
        const accepted: iotshadow.model.UpdateShadowResponse[] = [];
        await client.subscribeToShadowDeltaUpdatedEvents(
          { thingName: thing },
          mqtt3.QoS.AtLeastOnce,
          (_e, r) => r && deltas.push(r),
        );
        await client.subscribeToUpdateShadowAccepted(
          { thingName: thing },
          mqtt3.QoS.AtLeastOnce,
          (_e, r) => r && accepted.push(r),
        );
        await client.publishUpdateShadow(
          { thingName: thing, state: { desired: { interval: 3 } }, clientToken: "v1" },
          mqtt3.QoS.AtLeastOnce,
        );
        await until(() => deltas.length === 1 && accepted.length === 1, "delta and accepted");
        assert.deepEqual(deltas[0].state, { interval: 3 });
        assert.equal(accepted[0].clientToken, "v1");
      });
    });
  }
});
