// The shadows' journal: replay, a torn last write cut off, the rewrite when it grows, a failed
// write refused (never acknowledged), and the service's answer to it: AWS's 500 on /rejected and no
// PUBACK (the request's promise rejects), so that the device sends it again.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ShadowStore } from "../../local/shadow/store";
import { LocalShadowService } from "../../local/shadow/service";
import type { FileLayer } from "../../local/private/file-layer";
import type { ClientIdentity } from "../../local/broker/broker";
import { tempDir } from "../helpers/temp";

const doc = (version: number, n: number) => ({
  state: { reported: { n } },
  metadata: { reported: { n: { timestamp: 1 } } },
  version,
});

const device: ClientIdentity = { clientId: "sensor-a", thingName: "sensor-a", kind: "thing" };

describe("the shadow store (local/shadow/store.ts)", () => {
  it("replays what was written, last line wins", async () => {
    const dir = tempDir("shadow-store");
    const a = ShadowStore.open(dir, "dev");
    await a.put("t", undefined, doc(1, 1));
    await a.put("t", undefined, doc(2, 2));
    await a.put("t", "cfg", doc(1, 9));
    const b = ShadowStore.open(dir, "dev");
    assert.deepEqual(b.get("t")?.state, { reported: { n: 2 } });
    assert.equal(b.get("t", "cfg")?.version, 1);
    assert.equal(b.namedCount("t"), 1);
  });

  it("cuts off a torn last write at start (it was never acknowledged) and keeps the rest", async () => {
    const dir = tempDir("shadow-store");
    const a = ShadowStore.open(dir, "dev");
    await a.put("t", undefined, doc(1, 1));
    fs.appendFileSync(a.file, '{"t":"t","s":null,"d":{"sta');
    const lines: string[] = [];
    const b = ShadowStore.open(dir, "dev", (l) => lines.push(l));
    assert.equal(b.counts.tornTailsCut, 1);
    assert.equal(b.get("t")?.version, 1);
    assert.match(lines[0], /cut off an unfinished last write/);
    await b.put("t", undefined, doc(2, 2));
    assert.equal(ShadowStore.open(dir, "dev").get("t")?.version, 2);
  });

  it("rewrites the journal once it is mostly superseded lines, and loses nothing", async () => {
    const dir = tempDir("shadow-store");
    const a = ShadowStore.open(dir, "dev", undefined, { compactBytes: 2000, compactRatio: 4 });
    for (let i = 1; i <= 200; i++) await a.put("t", `s${i % 3}`, doc(i, i));
    assert.ok(a.counts.compactions > 0, "rewritten");
    assert.ok(fs.statSync(a.file).size < 2000 + 500, `journal ${fs.statSync(a.file).size} bytes`);
    const b = ShadowStore.open(dir, "dev");
    assert.equal(b.get("t", "s2")?.version, 200);
    assert.equal(b.get("t", "s1")?.version, 199);
    assert.equal(b.get("t", "s0")?.version, 198);
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.endsWith(".tmp")),
      [],
      "no temporary file left",
    );
  });

  it("a failed write is refused, counted and logged; the shadow is unchanged", async () => {
    const dir = tempDir("shadow-store");
    const full: FileLayer = {
      open: () =>
        Promise.reject(Object.assign(new Error("ENOSPC: no space left"), { code: "ENOSPC" })),
    };
    const lines: string[] = [];
    const s = ShadowStore.open(dir, "dev", (l) => lines.push(l), {}, full);
    await assert.rejects(s.put("t", undefined, doc(1, 1)), /ENOSPC/);
    assert.equal(s.get("t"), undefined);
    assert.equal(s.counts.failedWrites, 1);
    assert.match(lines.join("\n"), /could not write 1 change\(s\).*not acknowledged/);
  });
});

describe("the shadow service when the state folder cannot be written", () => {
  it("publishes 500 'Internal service failure' on /update/rejected and fails the request (no PUBACK)", async () => {
    const dir = tempDir("shadow-svc");
    const sent: Array<[string, Record<string, unknown>]> = [];
    const svc = new LocalShadowService({
      stack: "dev",
      stateDir: dir,
      publish: (topic, payload) => {
        sent.push([topic, JSON.parse(payload.toString()) as Record<string, unknown>]);
        return Promise.resolve();
      },
    });
    // The journal's folder becomes a file: every write fails as a full or broken disk would.
    fs.rmSync(path.join(dir, "shadows"), { recursive: true });
    fs.writeFileSync(path.join(dir, "shadows"), "");
    const topic = "$aws/things/sensor-a/shadow/update";
    await assert.rejects(
      svc.onPublish(device, topic, Buffer.from('{"state":{"reported":{"a":1}},"clientToken":"c"}')),
    );
    assert.equal(sent.length, 1);
    assert.equal(sent[0][0], `${topic}/rejected`);
    assert.equal(sent[0][1].code, 500);
    assert.equal(sent[0][1].message, "Internal service failure");
    assert.equal(sent[0][1].clientToken, "c");
    assert.equal(svc.read("sensor-a"), undefined);
    assert.equal(svc.stats.storeFailures, 1);
    assert.ok(
      svc.summary().some((r) => /failed writes/.test(r.label) && /^1 \//.test(String(r.value))),
    );
  });

  it("answers the 11th in-flight request of one connection with 429 (device-shadow-error-messages.html)", async () => {
    const dir = tempDir("shadow-svc");
    const sent: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const svc = new LocalShadowService({
      stack: "dev",
      stateDir: dir,
      // Responses wait: the first requests stay in flight.
      publish: async (topic, payload) => {
        sent.push(`${topic} ${String((JSON.parse(payload.toString()) as { code?: number }).code)}`);
        await gate;
      },
    });
    const topic = "$aws/things/sensor-a/shadow/update";
    const body = Buffer.from('{"state":{"reported":{"a":1}}}');
    const first = Array.from({ length: 10 }, () => svc.onPublish(device, topic, body));
    const eleventh = svc.onPublish(device, topic, body);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(sent.includes(`${topic}/rejected 429`), sent.join("\n"));
    release();
    await Promise.all([...first, eleventh]);
    assert.equal(svc.stats.updates, 10);
  });
});
