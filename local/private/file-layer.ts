// The few file operations the delivery journal and the local bucket write through. Production uses
// node:fs; tests put a layer in between that fills the disk or writes short, so that every test run
// goes down the paths a full disk takes. `writeAll` is the one place a short write is completed.
import * as fs from "node:fs/promises";

/** An open file that is written at its end (journal segments) or from its start (objects). */
export interface WritableFile {
  /**
   * Writes what it can of `buffers` after what was written before; resolves with the number of
   * bytes written, which may be fewer than asked (a short write), or rejects (ENOSPC, EIO...).
   */
  writev(buffers: readonly Buffer[]): Promise<number>;
  /** fdatasync: the data (and the size) are on disk. */
  datasync(): Promise<void>;
  /** fsync: data and metadata are on disk. */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface FileLayer {
  /** "a": append, creating if needed; "w": create or truncate. */
  open(path: string, flags: "a" | "w", mode: number): Promise<WritableFile>;
}

/** The real file system. */
export const nodeFiles: FileLayer = {
  async open(path, flags, mode) {
    const fh = await fs.open(path, flags, mode);
    return {
      writev: async (buffers) => (await fh.writev([...buffers])).bytesWritten,
      datasync: () => fh.datasync(),
      sync: () => fh.sync(),
      truncate: (length) => fh.truncate(length),
      close: () => fh.close(),
    };
  },
};

/**
 * Writes every byte of `buffers`, going on after short writes (a disk that is nearly full, a
 * signal); a write that makes no progress at all is an error. Resolves with the byte count.
 */
export async function writeAll(file: WritableFile, buffers: readonly Buffer[]): Promise<number> {
  let rest = buffers.filter((b) => b.length > 0);
  let total = 0;
  while (rest.length > 0) {
    const n = await file.writev(rest);
    if (!(n > 0)) {
      throw Object.assign(new Error("write made no progress (0 bytes written)"), { code: "EIO" });
    }
    total += n;
    rest = skipBytes(rest, n);
  }
  return total;
}

/** The buffers that remain after the first `n` bytes. */
function skipBytes(buffers: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
