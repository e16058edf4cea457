// The open-files check: the arithmetic and the reading of /proc/self/limits as pure functions, then
// `npm run simulate`'s own entry under a lowered limit (bash's ulimit, as a user would set it): a
// fleet one descriptor too large is refused with one line and exit 2 before anything starts, and
// the same fleet under a limit exactly its need runs.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../../core/errors";
import { PROJECT_DIR, TS_NODE_FLAGS } from "../../core/project";
import { loadStackConfig } from "../../core/stack-config";
import {
  FD_MARGIN,
  OpenFilesLimitError,
  checkOpenFilesLimit,
  descriptorsNeeded,
  devicesWithin,
  openFilesShortfall,
  parseOpenFilesLimit,
  readOpenFilesLimit,
} from "../../simulator/fd-limit";
import { tempDir } from "../helpers/temp";
import { outcomeOf, type Outcome } from "../helpers/process";

/** /proc/self/limits as Linux writes it (util-linux's column layout). */
function procLimits(soft: string, hard: string): string {
  return [
    "Limit                     Soft Limit           Hard Limit           Units     ",
    "Max cpu time              unlimited            unlimited            seconds   ",
    "Max processes             94448                94448                processes ",
    `Max open files            ${soft.padEnd(21)}${hard.padEnd(21)}files     `,
    "Max locked memory         8388608              8388608              bytes     ",
    "",
  ].join("\n");
}

describe("open-files limit: the arithmetic", () => {
  it("needs one descriptor per device, two with the embedded broker, plus the margin", () => {
    assert.equal(descriptorsNeeded(1, false), 1 + FD_MARGIN);
    assert.equal(descriptorsNeeded(10_000, false), 10_000 + FD_MARGIN);
    assert.equal(descriptorsNeeded(10_000, true), 20_000 + FD_MARGIN);
    assert.equal(devicesWithin(20_000, true), Math.floor((20_000 - FD_MARGIN) / 2));
    assert.equal(devicesWithin(20_000, false), 20_000 - FD_MARGIN);
    assert.equal(devicesWithin(FD_MARGIN - 1, false), 0);
  });

  it("reads the soft and hard limits of Max open files, unlimited as Infinity", () => {
    assert.deepEqual(parseOpenFilesLimit(procLimits("1024", "524288")), {
      soft: 1024,
      hard: 524288,
    });
    assert.deepEqual(parseOpenFilesLimit(procLimits("unlimited", "unlimited")), {
      soft: Infinity,
      hard: Infinity,
    });
    assert.equal(parseOpenFilesLimit("Max processes 10 10 processes\n"), undefined);
    assert.equal(parseOpenFilesLimit(procLimits("lots", "4096")), undefined);
  });

  it("skips the check where there is no /proc (macOS, Windows) or it cannot be read", () => {
    assert.equal(
      readOpenFilesLimit("darwin", () => procLimits("256", "256")),
      undefined,
    );
    assert.equal(
      readOpenFilesLimit("linux", () => {
        throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
      }),
      undefined,
    );
    assert.deepEqual(
      readOpenFilesLimit("linux", () => procLimits("64", "128")),
      {
        soft: 64,
        hard: 128,
      },
    );
    assert.doesNotThrow(() => checkOpenFilesLimit(1_000_000, true, () => undefined));
  });

  it("a fleet that fits, to the descriptor, passes", () => {
    const need = descriptorsNeeded(300, true);
    assert.equal(openFilesShortfall(300, true, { soft: need, hard: need }), undefined);
    assert.equal(openFilesShortfall(300, true, { soft: Infinity, hard: Infinity }), undefined);
  });

  it("one descriptor short: one line naming the devices, the need, the limit and what to do", () => {
    const need = descriptorsNeeded(300, true);
    const line = openFilesShortfall(300, true, { soft: need - 1, hard: need - 1 });
    assert.equal(
      line,
      `300 device(s) need ${need} open files (a connection per device and its other end at the embedded broker, plus ${FD_MARGIN} for Node, the journal and logs) ` +
        `but this process may open only ${need - 1} (ulimit -Hn: Node raises its soft limit to the hard one); ` +
        `raise the hard limit to ${need} (ulimit -n ${need} as root; nofile in /etc/security/limits.conf, LimitNOFILE= for a service, docker run --ulimit nofile=${need}) and run again, ` +
        `or use --devices ${devicesWithin(need - 1, true)} or fewer`,
    );
    assert.equal(devicesWithin(need - 1, true), 299);
  });

  it("says ulimit -n alone where the hard limit allows it, and no --devices when none fit", () => {
    const line = openFilesShortfall(2000, false, { soft: 1024, hard: 4096 }) ?? "";
    assert.match(line, /^2000 device\(s\) need 2128 open files \(a connection per device, /);
    assert.match(line, /may open only 1024 \(ulimit -n\); run ulimit -n 2128 and run again, /);
    assert.match(line, /or use --devices 896 or fewer$/);
    const none = openFilesShortfall(5, true, { soft: 64, hard: 64 }) ?? "";
    assert.match(none, /and run again$/, "no --devices advice when not one device fits");
    const bench = openFilesShortfall(10_000, false, { soft: 1024, hard: 1024 }, false) ?? "";
    assert.doesNotMatch(bench, /--devices/);
  });

  it("throws it as a UserError (exit 2)", () => {
    assert.throws(
      () => checkOpenFilesLimit(1000, true, () => ({ soft: 1024, hard: 1024 })),
      (e: unknown) =>
        e instanceof OpenFilesLimitError && e instanceof UserError && e.exitCode === 2,
    );
  });
});

/** `npm run simulate`'s entry (simulator/cli.ts) in a bash whose open-files limit is `limit`. */
function simulateUnderLimit(limit: number, args: readonly string[]): Promise<Outcome> {
  const cmd = [
    `ulimit -n ${limit}`,
    `exec "${process.execPath}" ${TS_NODE_FLAGS.map((a) => `"${a}"`).join(" ")} simulator/cli.ts simulate ${args.join(" ")}`,
  ].join(" && ");
  const child = spawn("bash", ["-c", cmd], {
    cwd: PROJECT_DIR,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return outcomeOf(child);
}

describe("open-files limit: npm run simulate under a lowered ulimit -n", function () {
  this.timeout(120_000);
  before(function () {
    if (process.platform !== "linux") this.skip(); // the check reads /proc/self/limits
  });

  // The prod stack: three devices, each a connection and the embedded broker's end of it.
  const devices = loadStackConfig("prod").things.length;
  const need = descriptorsNeeded(devices, true);

  it(`refuses ${devices} devices one descriptor short, in one line, exit 2, with nothing started or written`, async () => {
    const state = path.join(tempDir("fd-limit"), "state");
    const o = await simulateUnderLimit(need - 1, [
      "--stack prod --fast --duration 1 --no-probe --state-dir",
      state,
    ]);
    assert.equal(o.code, 2, `exit ${o.code}; stderr:\n${o.stderr}`);
    const lines = o.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line, got:\n${o.stderr}`);
    assert.match(
      lines[0],
      new RegExp(
        `^simulate: ${devices} device\\(s\\) need ${need} open files .* may open only ${need - 1} .*ulimit -n ${need} .*or use --devices ${devices - 1} or fewer$`,
      ),
    );
    assert.doesNotMatch(o.stderr, /\n\s+at /, "no stack trace");
    assert.equal(o.stdout, "", "no pipeline started, nothing published");
    assert.equal(
      fs.existsSync(state),
      false,
      "nothing written: no certificates, journal or run file",
    );
  });

  it(`runs the same ${devices} devices under a limit of exactly what they need`, async () => {
    const state = path.join(tempDir("fd-limit-ok"), "state");
    const o = await simulateUnderLimit(need, [
      "--stack prod --fast --duration 1 --no-probe --state-dir",
      state,
    ]);
    assert.equal(o.code, 0, `exit ${o.code}; stderr:\n${o.stderr}`);
    assert.match(o.stdout, new RegExp(`summary: stack prod, ${devices} device\\(s\\)`));
    assert.doesNotMatch(o.stdout + o.stderr, /EMFILE|too many open files/i);
  });
});
