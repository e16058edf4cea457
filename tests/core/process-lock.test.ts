// The one process lock (core/process-lock.ts) and the one atomic write (core/atomic-write.ts):
// what the delivery journal and the certificate folder rely on.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { replaceFileAtomic, writeFileAtomic } from "../../core/atomic-write";
import { releaseLock, tryLock, withLock } from "../../core/process-lock";
import { tempDir, tmpFiles } from "../helpers/temp";

/** The pid of a process that has exited. */
async function exitedPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((r) => child.once("exit", r));
  return child.pid as number;
}

describe("process lock (core/process-lock)", () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir("lock");
  });

  it("is taken with this process's pid in it, refused while a live process holds it, released by its owner only", async () => {
    const file = path.join(dir, "owner.pid");
    assert.equal(await tryLock(file), undefined);
    assert.equal(fs.readFileSync(file, "utf8"), String(process.pid));
    await releaseLock(file);
    assert.equal(fs.existsSync(file), false);

    fs.writeFileSync(file, String(process.ppid));
    assert.deepEqual(await tryLock(file), { owner: process.ppid });
    await releaseLock(file);
    assert.equal(fs.readFileSync(file, "utf8"), String(process.ppid), "not ours: left alone");
    assert.deepEqual(tmpFiles(dir), []);
  });

  it("takes over a lock whose process no longer runs, and one that names no process", async () => {
    const file = path.join(dir, "owner.pid");
    fs.writeFileSync(file, String(await exitedPid()));
    assert.equal(await tryLock(file), undefined);
    assert.equal(fs.readFileSync(file, "utf8"), String(process.pid));
    fs.writeFileSync(file, "");
    assert.equal(await tryLock(file), undefined);
    assert.equal(fs.readFileSync(file, "utf8"), String(process.pid));
  });

  it("withLock: callers in one process take turns; another live holder is waited for, then busy", async () => {
    const file = path.join(dir, "lock.pid");
    const order: string[] = [];
    const job = (name: string) => async () => {
      order.push(`${name} in`);
      await new Promise((r) => setTimeout(r, 20));
      order.push(`${name} out`);
    };
    const wait = { timeoutMs: 1000, busy: () => new Error("busy") };
    await Promise.all([withLock(file, wait, job("a")), withLock(file, wait, job("b"))]);
    assert.deepEqual(order, ["a in", "a out", "b in", "b out"]);
    assert.equal(fs.existsSync(file), false, "released");

    fs.writeFileSync(file, String(process.ppid));
    const started = Date.now();
    await assert.rejects(
      withLock(
        file,
        { timeoutMs: 200, pollMs: 20, busy: ({ owner }) => new Error(`held by ${owner}`) },
        job("c"),
      ),
      new RegExp(`held by ${process.ppid}`),
    );
    assert.ok(Date.now() - started >= 200, "waited for the holder first");
    assert.ok(!order.includes("c in"));
  });
});

describe("atomic write (core/atomic-write)", () => {
  it("writes whole with the mode asked for, and leaves nothing when the write fails", async () => {
    const dir = tempDir("atomic");
    const file = path.join(dir, "key.pem");
    writeFileAtomic(file, "secret", 0o600);
    assert.equal(fs.readFileSync(file, "utf8"), "secret");
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.throws(() => writeFileAtomic(path.join(dir, "missing", "x"), "y"), /ENOENT/);
    await assert.rejects(
      replaceFileAtomic(file, async (tmp) => {
        fs.writeFileSync(tmp, "half");
        throw new Error("refused");
      }),
      /refused/,
    );
    assert.equal(fs.readFileSync(file, "utf8"), "secret", "the file is untouched");
    assert.deepEqual(tmpFiles(dir), []);
  });
});
