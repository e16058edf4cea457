// The pipeline process's memory has a ceiling whatever clients send: several clients announce
// 200-256 MiB packets and stream their bodies at it at once, and the process's peak RSS (the
// kernel's VmHWM, measured in a process of its own) stays under the documented ceiling
// (docs/reliability.md). The bound is far above normal use on purpose: this is not a timing or
// tuning assertion, it shows that such packets are refused instead of buffered.
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readCredentials } from "../../local/ca";
import { fixedHeader, publishPacket, RawClient } from "../broker/raw-mqtt";

/** The ceiling docs/reliability.md documents for the pipeline process under these attacks. */
const CEILING_MIB = 512;

function statusKiB(pid: number, field: "VmHWM" | "VmRSS"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(
    fs.readFileSync(`/proc/${pid}/status`, "utf8"),
  );
  assert.ok(m, `no ${field} for ${pid}`);
  return Number(m[1]);
}

/** Announces a packet of `size` bytes and streams its body until the broker hangs up (or it is all sent). */
async function flood(c: RawClient, header: Buffer, size: number): Promise<number> {
  await c.write(header);
  const chunk = Buffer.alloc(1024 * 1024, 0x55);
  let sent = 0;
  while (!c.isClosed && sent < size) {
    await c.write(chunk);
    sent += chunk.length;
  }
  await c.closed;
  return sent;
}

describe("pipeline memory ceiling (a process of its own, measured by the kernel)", function () {
  this.timeout(120_000);
  let dir: string;
  let child: ChildProcess | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ceiling-"));
  });
  afterEach(() => {
    child?.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`stays under ${CEILING_MIB} MiB while three clients send 200 MiB PUBLISHes and another a 256 MiB CONNECT, at once`, async () => {
    const proc = spawn(
      process.execPath,
      ["--import", "tsx", path.join(__dirname, "fixtures", "pipeline-child.ts"), "prod", dir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    child = proc;
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      proc.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /^url (\S+)$/m.exec(out);
        if (m) resolve(m[1]);
      });
      proc.once("exit", (code) => reject(new Error(`pipeline child exited ${code}`)));
    });
    const port = Number(new URL(url).port);
    const pid = proc.pid as number;
    const pkiDir = path.join(dir, "pki");
    const atStart = statusKiB(pid, "VmRSS") / 1024;

    const things = ["store-sensor-seattle1", "store-sensor-seattle2", "store-sensor-seattle3"];
    const attacks: Array<Promise<number>> = [];
    for (const thing of things) {
      const c = await RawClient.open(port, readCredentials(pkiDir, thing));
      assert.equal(await c.connect(thing), 0);
      const size = 200 * 1024 * 1024;
      attacks.push(flood(c, fixedHeader(3, 2, size), size));
    }
    const raw = await RawClient.open(port, readCredentials(pkiDir, "console"));
    attacks.push(flood(raw, fixedHeader(1, 0, 256 * 1024 * 1024 - 1), 256 * 1024 * 1024));
    const sent = await Promise.all(attacks);

    // The broker still serves a well-behaved device afterwards.
    const ok = await RawClient.open(port, readCredentials(pkiDir, things[1]));
    assert.equal(await ok.connect(things[1]), 0);
    const reading = JSON.stringify({
      thing: things[1],
      timestamp: Date.now(),
      temperature: 20,
      max_temperature: 21,
      min_temperature: 19,
    });
    await ok.write(publishPacket(`SeattleStoreTemp/${things[1]}`, Buffer.from(reading), 1, 5));
    assert.ok(await ok.next(4), "PUBACK after the attack");
    ok.end();

    const peakMiB = statusKiB(pid, "VmHWM") / 1024;
    assert.ok(
      peakMiB < CEILING_MIB,
      `peak RSS ${peakMiB.toFixed(0)} MiB (at start ${atStart.toFixed(0)} MiB) exceeds the ${CEILING_MIB} MiB ceiling; the clients got ${sent.map((n) => `${n >> 20} MiB`).join(", ")} through`,
    );
  });
});
