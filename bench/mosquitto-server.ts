// Figure 3's second baseline in a helper process: Mosquitto 2 started with a generated mutual-TLS
// config (persistence on) in the run's state dir, driven over IPC like bench/pipeline-server.ts.
// Mosquitto is a child of this helper, so a figure that is killed takes Mosquitto with it.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensurePki } from "../local/identity/ca";
import { freePort, mosquittoConf } from "../tools/mosquitto";
import { peakRssMiB } from "./stats";

/** What bench/pipeline.ts sends: the binary, where state goes and the things to issue for. */
export interface MosquittoRequest {
  readonly bin: string;
  readonly stateDir: string;
  readonly things: readonly string[];
}

export type MosquittoReply =
  | { type: "listening"; url: string; pkiDir: string; pid: number; version: string; conf: string }
  | {
      type: "stopped";
      /** Mosquitto's own peak RSS (VmHWM), read just before it was stopped. */
      peakRssMiB: number;
      /** Size of mosquitto.db after Mosquitto saved it on exit; 0 when it wrote none. */
      dbBytes: number;
    };

/** How much of Mosquitto's log is kept to explain a failure. */
const LOG_TAIL = 16 * 1024;

interface Running {
  readonly child: ChildProcess;
  readonly version: string;
  readonly log: () => string;
}

/** Starts Mosquitto and resolves once it logs that it runs; rejects with its log if it exits. */
function launch(bin: string, conf: string): Promise<Running> {
  const child = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`mosquitto did not say it was running within 15 s:\n${log}`));
    }, 15_000);
    child.stderr?.on("data", (d: Buffer) => {
      log = (log + d.toString()).slice(-LOG_TAIL);
      const m = /mosquitto version (\S+) running/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve({ child, version: m[1], log: () => log });
      }
    });
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${bin}: ${e.message}`));
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`mosquitto exited (${signal ?? `exit ${code}`}) while starting:\n${log}`));
    });
  });
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2]) as MosquittoRequest;
  const send = (m: MosquittoReply): Promise<void> =>
    new Promise((resolve) => process.send?.(m, () => resolve()));
  const pkiDir = path.join(req.stateDir, "pki");
  const dbDir = path.join(req.stateDir, "db");
  const conf = path.join(req.stateDir, "mosquitto.conf");
  await ensurePki(pkiDir, req.things);
  fs.mkdirSync(dbDir, { recursive: true });
  let running: Running | undefined;
  let port = 0;
  // The free port is found before Mosquitto binds it; another process may take it in between.
  for (let attempt = 1; running === undefined; attempt++) {
    port = await freePort();
    fs.writeFileSync(conf, mosquittoConf({ port, pkiDir, persistenceDir: dbDir }));
    try {
      running = await launch(req.bin, conf);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (attempt >= 3 || !/Address already in use/.test(message)) throw e;
    }
  }
  const { child } = running;
  const pid = child.pid as number;
  process.on("exit", () => child.kill("SIGKILL"));
  // The parent going away must not leave a broker behind.
  process.on("disconnect", () => process.exit(0));
  process.on("message", (m: unknown) => {
    if (m !== "stop") return;
    void (async () => {
      const peak = peakRssMiB(pid);
      const exited = new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
        }, 10_000);
        child.once("exit", (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
      // SIGTERM: Mosquitto saves its in-memory database (persistence on) and exits.
      child.kill("SIGTERM");
      const code = await exited;
      if (code !== 0) {
        throw new Error(`mosquitto exited ${code} when stopped:\n${running.log()}`);
      }
      const db = path.join(dbDir, "mosquitto.db");
      await send({
        type: "stopped",
        peakRssMiB: peak,
        dbBytes: fs.existsSync(db) ? fs.statSync(db).size : 0,
      });
      process.exit(0);
    })().catch((e: unknown) => {
      process.stderr.write(`mosquitto-server: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    });
  });
  await send({
    type: "listening",
    url: `mqtts://127.0.0.1:${port}`,
    pkiDir,
    pid,
    version: running.version,
    conf: fs.readFileSync(conf, "utf8"),
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`mosquitto-server: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
