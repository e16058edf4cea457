// Writing a file whole or not at all: into a temporary name beside it, then renamed over it, so
// that a reader (or a crash, or a full disk) never leaves half a file under the real name.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";

/** `<file>.<pid>.<random>.tmp`: beside the file (a rename stays on one file system), and no other writer's name. */
export function temporaryPathFor(file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
}

/**
 * Writes `data` to `file` atomically. With `mode`, the file gets exactly that mode (the umask may
 * have narrowed it, or the temporary name may have existed). On failure nothing is left behind.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode?: number): void {
  const tmp = temporaryPathFor(file);
  try {
    fs.writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
    if (mode !== undefined) fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Replaces `file` with what `write` puts at the temporary path it is given (a download, a
 * stream), once `write` resolves; if it throws, the temporary file is removed and `file` is untouched.
 */
export async function replaceFileAtomic(
  file: string,
  write: (tmp: string) => Promise<void>,
): Promise<void> {
  const tmp = temporaryPathFor(file);
  try {
    await write(tmp);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
