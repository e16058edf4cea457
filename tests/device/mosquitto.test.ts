// Interoperability with software nobody here wrote: the publisher against a Mosquitto broker set up
// for mutual TLS by this test, and mosquitto_pub/mosquitto_sub against the embedded broker with the
// fleet's certificates. Without Mosquitto the suite is skipped and says so; CI (.ci/run) installs
// it and sets REQUIRE_MOSQUITTO=1, so there it always runs.
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Pki } from "../../local/identity/ca";
import type { LocalBroker } from "../../local/broker/broker";
import { Publisher } from "../../device/publisher";
import { startBroker, testPki } from "../helpers/broker";
import { reading } from "../helpers/telemetry";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";
import { describeWithMosquitto, mosquittoTlsArgs } from "../helpers/mosquitto";
import { freePort, mosquittoConf } from "../../tools/mosquitto";

/** Collects a child's output and resolves when `pattern` appears in it. */
function watch(child: ChildProcess) {
  let text = "";
  const waiters: Array<[RegExp, () => void]> = [];
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of waiters.splice(0)) {
      if (w[0].test(text)) w[1]();
      else waiters.push(w);
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  return {
    get text() {
      return text;
    },
    waitFor(pattern: RegExp, what: string): Promise<void> {
      if (pattern.test(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        waiters.push([pattern, resolve]);
        child.once("exit", (code) => {
          if (!pattern.test(text)) reject(new Error(`${what}: exited ${code} first:\n${text}`));
        });
      });
    },
  };
}

/** Every child this file starts, so a failing test leaves none behind. */
const children = new Set<ChildProcess>();

function start(bin: string, args: string[]): ChildProcess {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/**
 * Runs a tool to completion without blocking the event loop (the embedded broker lives in this
 * process: spawnSync would deadlock it). Killed after `limitMs` so a hang fails instead of waiting.
 */
async function runTool(bin: string, args: string[], limitMs = 10_000) {
  const child = start(bin, args);
  const out = watch(child);
  const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const code = await exited(child);
  clearTimeout(timer);
  return { code, output: out.text };
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

describeWithMosquitto("interoperability with Mosquitto (mutual TLS)", function (bin) {
  this.timeout(30_000);
  afterEach(() => {
    for (const c of children) c.kill("SIGKILL");
  });
  let pki: Pki;
  const { mosquitto, mosquittoPub, mosquittoSub } = bin;

  before(async () => {
    pki = await testPki();
  });

  function clientArgs(identity: string, port: number, clientId = identity): string[] {
    return mosquittoTlsArgs(port, pki.paths(identity), clientId);
  }

  describe("the publisher against a Mosquitto broker", () => {
    let broker: ChildProcess;
    let port: number;
    let log: ReturnType<typeof watch>;

    before(async () => {
      port = await freePort();
      const dir = tempDir("mosquitto");
      const conf = path.join(dir, "mosquitto.conf");
      // Memory only, and every packet logged: the tests wait for the broker's log lines.
      fs.writeFileSync(conf, mosquittoConf({ port, pkiDir: pki.dir, logAll: true }));
      // Not through start(): it serves every test of this block and is stopped in after().
      broker = spawn(mosquitto, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
      log = watch(broker);
      await log.waitFor(/mosquitto version .* running/, "mosquitto start");
    });
    after(async () => {
      broker.kill("SIGTERM");
      await exited(broker);
    });

    it("publishes N messages that a mosquitto_sub subscriber receives exactly once", async () => {
      const N = 50;
      const sub = start(mosquittoSub, [
        ...clientArgs("console", port),
        ...["-t", "SeattleStoreTemp/#", "-q", "1", "-C", String(N), "-v"],
      ]);
      const subOut = watch(sub);
      // mosquitto_sub's stdout is block-buffered in a pipe; the broker's log says when it subscribed.
      await log.waitFor(/Sending SUBACK to console/, "mosquitto_sub subscribing");
      const p = new Publisher({
        url: `mqtts://127.0.0.1:${port}`,
        clientId: "sensor-a",
        ...pki.credentialsFor("sensor-a"),
      });
      p.start();
      const outcomes = await Promise.all(
        Array.from({ length: N }, (_, i) => p.send("SeattleStoreTemp/1", reading("sensor-a", i))),
      );
      await p.stop();
      assert.deepEqual(new Set(outcomes.map((o) => o.status)), new Set(["acked"]));
      assert.equal(await exited(sub), 0, subOut.text);
      const lines = subOut.text.split("\n").filter((l) => l.startsWith("SeattleStoreTemp/1 "));
      const stamps = lines.map(
        (l) => (JSON.parse(l.slice(l.indexOf(" ") + 1)) as { timestamp: number }).timestamp,
      );
      assert.equal(new Set(stamps).size, N);
      assert.equal(stamps.length, N, "duplicates arrived");
      assert.match(log.text, /New client connected .* as sensor-a .*u'sensor-a'/);
    });

    it("cannot connect to Mosquitto without trusting its CA (TLS verification is on)", async () => {
      const other = await testPki(); // a different CA
      const reports: string[] = [];
      const q = new Publisher({
        url: `mqtts://127.0.0.1:${port}`,
        clientId: "sensor-a",
        ...pki.credentialsFor("sensor-a"),
        ca: other.caPem,
        report: (l) => reports.push(l),
      });
      q.start();
      await until(() => reports.length > 0, "a connection error report");
      assert.match(
        reports[0],
        /sensor-a: connection error: .*(self-signed|unable to verify|certificate)/,
      );
      assert.equal(q.connected, false);
      await q.stop(0);
    });
  });

  describe("mosquitto_pub and mosquitto_sub against the embedded broker", () => {
    let broker: LocalBroker;
    before(async () => {
      broker = await startBroker(pki);
    });
    after(async () => {
      await broker.stop();
    });

    it("carries a message from mosquitto_pub (a fleet certificate) to mosquitto_sub (console)", async () => {
      const subscribedNow = new Promise<void>((resolve) =>
        broker.aedes.once("subscribe", () => resolve()),
      );
      const sub = start(mosquittoSub, [
        ...clientArgs("console", broker.port),
        ...["-t", "SeattleStoreTemp/#", "-q", "1", "-C", "1", "-v"],
      ]);
      const subOut = watch(sub);
      await subscribedNow;
      const msg = JSON.stringify(reading("sensor-b", 1));
      const pub = await runTool(mosquittoPub, [
        ...clientArgs("sensor-b", broker.port),
        ...["-t", "SeattleStoreTemp/1", "-q", "1", "-m", msg],
      ]);
      assert.equal(pub.code, 0, pub.output);
      assert.equal(await exited(sub), 0, subOut.text);
      assert.equal(subOut.text.trim(), `SeattleStoreTemp/1 ${msg}`);
    });

    it("MQTT 5 (-V 5): mosquitto_pub reaches an MQTT 5 mosquitto_sub and an MQTT 3.1.1 one", async () => {
      // mqtt.html: "An MQTT 3 publisher can send an MQTT 3 message to an MQTT 5 subscriber … and
      // vice versa"; both subscribers on the embedded broker, the publisher speaking MQTT 5.
      let subscriptions = 0;
      const bothSubscribed = new Promise<void>((resolve) => {
        const on = () => {
          if (++subscriptions === 2) {
            broker.aedes.off("subscribe", on);
            resolve();
          }
        };
        broker.aedes.on("subscribe", on);
      });
      const subs = (["5", "311"] as const).map((v) =>
        start(mosquittoSub, [
          ...clientArgs("console", broker.port, `console-v${v}`),
          ...["-V", v, "-t", "SeattleStoreTemp/#", "-q", "1", "-C", "1", "-v"],
        ]),
      );
      const outs = subs.map((sub) => watch(sub));
      await bothSubscribed;
      const msg = JSON.stringify(reading("sensor-b", 5));
      const pub = await runTool(mosquittoPub, [
        ...clientArgs("sensor-b", broker.port),
        ...["-V", "5", "-t", "SeattleStoreTemp/5", "-q", "1", "-m", msg],
        ...["-D", "publish", "user-property", "k", "v"],
      ]);
      assert.equal(pub.code, 0, pub.output);
      for (const [i, sub] of subs.entries()) {
        assert.equal(await exited(sub), 0, outs[i].text);
        assert.equal(outs[i].text.trim(), `SeattleStoreTemp/5 ${msg}`);
      }
    });

    it("with requireThingClientId, refuses mosquitto_pub whose client id is not its certificate's thing", async () => {
      // Off by default (issue 24: AWS leaves the client id to the policy); a broker with it on.
      const strict = await startBroker(pki, undefined, 0, { requireThingClientId: true });
      const pub = await runTool(mosquittoPub, [
        ...clientArgs("sensor-b", strict.port, "sensor-c"),
        ...["-t", "t", "-q", "1", "-m", "x"],
      ]).finally(() => strict.stop());
      assert.notEqual(pub.code, 0);
      assert.match(pub.output, /identifier rejected/i);
    });

    it("by default, lets mosquitto_pub connect with a client id other than its thing (no policy here)", async () => {
      const pub = await runTool(mosquittoPub, [
        ...clientArgs("sensor-b", broker.port, "sensor-c"),
        ...["-t", "t", "-q", "1", "-m", "x"],
      ]);
      assert.equal(pub.code, 0, pub.output);
    });

    it("refuses mosquitto_pub without a client certificate", async () => {
      const p = pki.paths("sensor-b");
      const refusals = broker.stats.tlsRefusals;
      const pub = await runTool(mosquittoPub, [
        ...["-h", "127.0.0.1", "-p", String(broker.port), "--cafile", p.ca],
        ...["-i", "sensor-b", "-t", "t", "-m", "x"],
      ]);
      assert.notEqual(pub.code, 0, pub.output);
      await until(() => broker.stats.tlsRefusals === refusals + 1, "the broker's TLS refusal");
    });
  });
});
