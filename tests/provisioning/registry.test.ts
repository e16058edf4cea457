// The local registry's journal under faults (local/registry/registry.ts): the delivery journal's recovery rules
// (local/delivery/) hold here too. A write the disk cut short is cut off before the next one is
// appended, a torn last line is cut off at start, and an acknowledged registration is never lost.
// Faults come from the project's fault-injecting file layer, and where a small tmpfs can be
// mounted, from a real full disk.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  LocalRegistry,
  type RegisteredCertificate,
  type RegisteredThing,
} from "../../local/registry/registry";
import { FaultyFiles } from "../local/fixtures/faulty-files";
import { describeWithSmallDisk } from "../helpers/small-disk";
import { tempDir } from "../helpers/temp";

function thing(serial: number): RegisteredThing {
  return {
    name: `store-sensor-seattle${serial}`,
    typeName: "StoreSensor",
    groups: ["Seattle"],
    attributes: { serialNumber: String(serial), pad: "p".repeat(200) },
  };
}

function cert(serial: number): RegisteredCertificate {
  return {
    certificateId: serial.toString(16).padStart(64, "0"),
    status: "ACTIVE",
    thingName: thing(serial).name,
    policyNames: ["sensor-policy"],
  };
}

const register = (r: LocalRegistry, serial: number) => r.register(thing(serial), cert(serial));

describe("local registry: recovery after a failed or torn write", () => {
  it("a write the disk cut short is cut off: the next acknowledged registration survives a restart", async () => {
    const dir = tempDir("registry-enospc");
    const files = new FaultyFiles();
    const log: string[] = [];
    const registry = LocalRegistry.open(dir, "fleet", (l) => log.push(l), files);
    for (let s = 101; s <= 112; s++) await register(registry, s);
    // The disk has room for part of a line only: serial 113's first write is torn (ENOSPC).
    files.space = 100;
    await assert.rejects(register(registry, 113), /ENOSPC/);
    assert.ok(files.counts.enospc > 0 && files.counts.short > 0, "the write was cut short");
    assert.equal(
      registry.thing(thing(113).name),
      undefined,
      "a refused registration is not visible",
    );
    // Space comes back; the device retries and is acknowledged.
    files.space = Infinity;
    await register(registry, 113);
    await register(registry, 114);

    const log2: string[] = [];
    const again = LocalRegistry.open(dir, "fleet", (l) => log2.push(l));
    for (let s = 101; s <= 114; s++) {
      assert.deepEqual(again.certificate(cert(s).certificateId), cert(s), `serial ${s} kept`);
    }
    assert.equal(again.counts.unreadable, 0, `no unreadable line; log: ${log2.join(" | ")}`);
    assert.ok(
      log.some((l) => /could not write 1 registration/.test(l)),
      log.join(" | "),
    );
  });

  it("a torn last line (a crash mid-write) is cut off at start, before anything is appended", async () => {
    const dir = tempDir("registry-torn");
    const first = LocalRegistry.open(dir, "fleet");
    await register(first, 1);
    const file = path.join(dir, "fleet.jsonl");
    // The process died while writing serial 2's line: never acknowledged.
    fs.appendFileSync(file, JSON.stringify({ thing: thing(2), certificate: cert(2) }).slice(0, 57));
    const log: string[] = [];
    const second = LocalRegistry.open(dir, "fleet", (l) => log.push(l));
    assert.equal(second.counts.tornTailsCut, 1);
    assert.ok(
      log.some((l) => /cut off an unfinished last write/.test(l)),
      log.join(" | "),
    );
    await register(second, 3);
    const third = LocalRegistry.open(dir, "fleet");
    assert.ok(third.thing(thing(1).name) && third.thing(thing(3).name), "1 and 3 are kept");
    assert.equal(third.thing(thing(2).name), undefined, "the torn write was never acknowledged");
    assert.equal(third.counts.unreadable, 0);
    assert.ok(fs.readFileSync(file, "utf8").endsWith("\n"));
  });

  it("a registry whose torn write was never cut back gives back the acknowledged line behind the torn bytes", () => {
    const dir = tempDir("registry-salvage");
    const line = (s: number) => JSON.stringify({ thing: thing(s), certificate: cert(s) });
    // A torn write followed by an append without cutting it back: serial 112's torn bytes, then
    // serial 113's whole line.
    fs.writeFileSync(
      path.join(dir, "fleet.jsonl"),
      `${line(111)}\n${line(112).slice(0, 80)}${line(113)}\n${line(114)}\n`,
    );
    const log: string[] = [];
    const registry = LocalRegistry.open(dir, "fleet", (l) => log.push(l));
    assert.deepEqual(registry.certificate(cert(113).certificateId), cert(113));
    assert.equal(registry.counts.salvaged, 1);
    assert.equal(registry.counts.unreadable, 0);
    assert.equal(registry.thing(thing(112).name), undefined);
    assert.ok(
      log.some((l) => /recovered thing store-sensor-seattle113/.test(l)),
      log.join(" | "),
    );
  });
});

describeWithSmallDisk("local registry on a full tmpfs", (disks) => {
  it("ENOSPC on a real file system, then space comes back: every acknowledged serial survives", async function () {
    this.timeout(20_000);
    const dir = disks.mount(64);
    const registry = LocalRegistry.open(path.join(dir, "registry"), "fleet");
    await register(registry, 1);
    const filler = disks.fill(dir);
    // tmpfs allocates pages: the file's last page takes a few more lines before ENOSPC.
    const acknowledged = [1];
    let refused = 0;
    for (let s = 2; s <= 60 && refused === 0; s++) {
      await register(registry, s).then(
        () => acknowledged.push(s),
        () => refused++,
      );
    }
    assert.ok(refused > 0, "the full disk refused a registration");
    fs.rmSync(filler);
    await register(registry, 113);
    const again = LocalRegistry.open(path.join(dir, "registry"), "fleet");
    for (const s of [...acknowledged, 113])
      assert.ok(again.thing(thing(s).name), `serial ${s} kept`);
    assert.equal(again.counts.unreadable, 0);
  });
});
