// Suites that need a real, small file system to fill up: a tmpfs mounted with a size limit, which
// takes root (CI runs as root). Elsewhere the suite is skipped with the reason in its title;
// REQUIRE_SMALL_DISK=1 (set by .ci/run) turns that into a failure.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const REQUIRE_SMALL_DISK = "REQUIRE_SMALL_DISK";

/** Small file systems for one suite; every one still mounted is unmounted by `cleanup`. */
export class SmallDisks {
  private readonly mounted: string[] = [];

  /** A fresh tmpfs of `sizeKiB`, mounted on a new folder; returns the folder. */
  mount(sizeKiB: number): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "small-disk-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0755`, "tmpfs", dir]);
    this.mounted.push(dir);
    return dir;
  }

  /** Gives a mounted tmpfs a new size: space returns (or goes) without touching its files. */
  resize(dir: string, sizeKiB: number): void {
    execFileSync("mount", ["-o", `remount,size=${sizeKiB}k`, dir]);
  }

  /** Writes a file that takes every free byte of the file system `dir` is on. */
  fill(dir: string): string {
    const file = path.join(dir, `filler-${process.pid}-${Date.now()}`);
    const fd = fs.openSync(file, "w");
    const block = Buffer.alloc(64 * 1024, 0x46);
    try {
      for (;;) fs.writeSync(fd, block);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
    } finally {
      fs.closeSync(fd);
    }
    // The last partial block may still leave a few bytes: take them one by one.
    const fd2 = fs.openSync(file, "a");
    try {
      for (;;) fs.writeSync(fd2, Buffer.from([0x46]));
    } catch {
      // full
    } finally {
      fs.closeSync(fd2);
    }
    return file;
  }

  cleanup(): void {
    for (const dir of this.mounted.splice(0)) {
      try {
        execFileSync("umount", ["-l", dir]);
        fs.rmdirSync(dir);
      } catch {
        // already gone
      }
    }
  }
}

/** Why no tmpfs can be mounted here, or undefined when one can. */
function cannotMount(): string | undefined {
  if (process.platform !== "linux")
    return `tmpfs mounts are Linux-only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "mounting a tmpfs needs root";
  const probe = new SmallDisks();
  try {
    probe.mount(1024);
    return undefined;
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    return `mount -t tmpfs failed: ${stderr || (e as Error).message.split("\n")[0]}`;
  } finally {
    probe.cleanup();
  }
}

/** A `describe` that runs where a small tmpfs can be mounted, and says why not elsewhere. */
export function describeWithSmallDisk(
  title: string,
  body: (this: Mocha.Suite, disks: SmallDisks) => void,
): void {
  const reason = cannotMount();
  if (reason === undefined) {
    describe(title, function () {
      const disks = new SmallDisks();
      after(() => disks.cleanup());
      body.call(this, disks);
    });
    return;
  }
  if (process.env[REQUIRE_SMALL_DISK] === "1") {
    describe(title, () => {
      it(`needs a small tmpfs, which ${REQUIRE_SMALL_DISK}=1 makes mandatory`, () => {
        throw new Error(`${reason}; ${REQUIRE_SMALL_DISK}=1 requires it`);
      });
    });
    return;
  }
  describe.skip(`${title} [SKIPPED: ${reason}; CI runs it as root]`, function () {
    body.call(this, new SmallDisks());
  });
}
