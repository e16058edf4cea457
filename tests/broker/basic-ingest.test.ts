// Basic Ingest at the embedded pipeline with AWS's device SDK over MQTT 5: "Your devices and rules
// can't subscribe to Basic Ingest reserved topics", and a Basic Ingest message reaches its rule
// and no subscriber, even one whose filter ($aws/#) would match it
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html). The refusal is
// SUBACK 0x87 Not authorized for an MQTT 5 client (mqtt.html, "MQTT reason codes").
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { iot, mqtt5 } from "aws-iot-device-sdk-v2";
import { loadStackConfig } from "../../core/stack-config";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { tempDir } from "../helpers/temp";
import { until, within } from "../helpers/wait";

describe("Basic Ingest with the SDK's MQTT 5 client (iot-basic-ingest.html)", function () {
  this.timeout(60_000);
  let p: LocalPipeline;
  const open: mqtt5.Mqtt5Client[] = [];
  before(async () => {
    p = await startLocalPipeline(loadStackConfig("dev"), { stateDir: tempDir("basic-ingest") });
  });
  after(async () => {
    for (const c of open.splice(0)) {
      const stopped = new Promise<void>((resolve) => c.once("stopped", () => resolve()));
      c.stop();
      await within(stopped, 5000, "stop").catch(() => undefined);
      c.close();
    }
    await p?.stop();
  });

  async function connect(identity: string, clientId: string) {
    const dir = path.join(p.stateDir, "pki");
    const b = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
      "localhost",
      path.join(dir, "identities", `${identity}.crt`),
      path.join(dir, "identities", `${identity}.key`),
    );
    b.withCertificateAuthorityFromPath(undefined, path.join(dir, "ca.crt"));
    b.withPort(p.port);
    b.withConnectProperties({ clientId, keepAliveIntervalSeconds: 30 });
    const c = Object.assign(new mqtt5.Mqtt5Client(b.build()), { topics: [] as string[] });
    open.push(c);
    c.on("messageReceived", (e) => c.topics.push(e.message.topicName));
    const connected = new Promise<void>((resolve, reject) => {
      c.once("connectionSuccess", () => resolve());
      c.once("connectionFailure", (e) => reject(e.error));
    });
    c.start();
    await within(connected, 10_000, `${clientId} connecting`);
    return c;
  }

  it("refuses $aws/rules/ filters with 0x87, grants $aws/#, and delivers the Basic Ingest message to the rule only", async () => {
    const thing = "store-sensor-seattle1";
    const watcher = await connect("console", "console-watcher");
    const suback = await watcher.subscribe({
      subscriptions: [
        { topicFilter: "$aws/rules/sensor_rule/#", qos: 1 },
        { topicFilter: "$aws/#", qos: 1 },
      ],
    });
    assert.deepEqual(suback.reasonCodes, [
      mqtt5.SubackReasonCode.NotAuthorized,
      mqtt5.SubackReasonCode.GrantedQoS1,
    ]);
    const before = p.rules.stats.onTopic;
    const device = await connect(thing, thing);
    await device.publish({
      topicName: "$aws/rules/sensor_rule/SeattleStoreTemp/1",
      qos: 1,
      payload: JSON.stringify({ thing, timestamp: Date.now(), temperature: 1, humidity: 2 }),
    });
    // The rule had it, with the prefix stripped (its FROM is SeattleStoreTemp/1).
    await until(() => p.rules.stats.onTopic === before + 1, "the rule's message");
    // The watcher's $aws/# sees the device's lifecycle events, and the subscribed event of a
    // SUBSCRIBE sent after the publish, never the message.
    await device.subscribe({ subscriptions: [{ topicFilter: "later", qos: 1 }] });
    await until(
      () => watcher.topics.includes(`$aws/events/subscriptions/subscribed/${thing}`),
      "the subscribed event on $aws/#",
    );
    assert.ok(watcher.topics.includes(`$aws/events/presence/connected/${thing}`));
    assert.deepEqual(
      watcher.topics.filter((t) => t.startsWith("$aws/rules/")),
      [],
    );
  });
});
