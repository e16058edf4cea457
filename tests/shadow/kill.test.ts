// Durability of the Device Shadow service: a pipeline process is killed with SIGKILL while a device
// updates its shadows, and the next start holds every update the device was told was accepted
// (/update/accepted, published only once the change is fdatasync'd: local/shadow/service.ts).
import * as assert from "node:assert/strict";
import * as path from "node:path";
import mqtt from "mqtt";
import { loadStackConfig } from "../../core/stack-config";
import { readCredentials } from "../../local/identity/ca";
import { startLocalPipeline } from "../../local/pipeline/pipeline";
import { startPipelineChild } from "../helpers/pipeline-child";
import { tempDir } from "../helpers/temp";

/** Named shadows the updates are spread over, and updates in flight at once (AWS allows 10). */
const SHADOWS = 8;
const WINDOW = 8;
const KILL_AFTER = 300;

describe("Device Shadow service: kill -9 loses no accepted update", function () {
  this.timeout(120_000);

  it("every update acknowledged on /update/accepted is in the shadows after a SIGKILL and restart", async () => {
    const dir = tempDir("shadow-kill");
    const config = loadStackConfig("dev");
    const thing = config.things[0].name;
    const { child, url } = await startPipelineChild(["dev", dir, "json-lines"]);
    const device = await mqtt.connectAsync(url, {
      ...readCredentials(path.join(dir, "pki"), thing),
      clientId: thing,
      reconnectPeriod: 0,
    });
    device.on("error", () => undefined);
    const prefix = (i: number) => `$aws/things/${thing}/shadow/name/s${i % SHADOWS}`;
    await device.subscribeAsync(
      [
        `$aws/things/${thing}/shadow/name/+/update/accepted`,
        `$aws/things/${thing}/shadow/name/+/update/rejected`,
      ],
      { qos: 1 },
    );
    const accepted = new Set<number>();
    const rejected: string[] = [];
    let next = 0;
    let inFlight = 0;
    await new Promise<void>((resolve) => {
      const send = () => {
        while (inFlight < WINDOW && child.exitCode === null) {
          const i = next++;
          inFlight++;
          device.publish(
            `${prefix(i)}/update`,
            JSON.stringify({ state: { reported: { [`k${i}`]: i } }, clientToken: String(i) }),
            { qos: 1 },
          );
        }
      };
      device.on("message", (topic, payload) => {
        const body = JSON.parse(payload.toString()) as { clientToken?: string; code?: number };
        inFlight--;
        if (topic.endsWith("/rejected")) rejected.push(`${body.code}`);
        else accepted.add(Number(body.clientToken));
        if (accepted.size >= KILL_AFTER) {
          if (child.exitCode === null) child.kill("SIGKILL");
          resolve();
          return;
        }
        send();
      });
      send();
    });
    await new Promise((r) => child.once("close", r));
    device.end(true);
    assert.deepEqual(rejected, [], "no update was rejected");

    const p = await startLocalPipeline(config, { stateDir: dir });
    try {
      const lost = [...accepted].filter((i) => {
        const doc = p.shadows.read(thing, `s${i % SHADOWS}`);
        const reported = (doc?.state as { reported?: Record<string, number> } | undefined)
          ?.reported;
        return reported?.[`k${i}`] !== i;
      });
      assert.deepEqual(lost, [], `${lost.length} of ${accepted.size} accepted update(s) lost`);
      // Versions count every accepted update of each shadow, and none twice.
      let versions = 0;
      for (let s = 0; s < SHADOWS; s++) versions += Number(p.shadows.read(thing, `s${s}`)?.version);
      assert.ok(versions >= accepted.size, `${versions} versions for ${accepted.size} accepted`);
    } finally {
      await p.stop();
    }
  });
});
