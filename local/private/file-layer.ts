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

/**
 * A file of whole lines that only grows, each append fdatasync'd before it resolves. On failure,
 * whatever part of the append reached the file is cut off (as the delivery journal does), so that
 * the next append starts a line of its own; if even the cut fails, the next append makes it first
 * or is refused. The file is open only while an append runs.
 */
export class LineAppender {
  /** Bytes of whole, fdatasync'd lines: where the next append goes, what a failure cuts back to. */
  private end = 0;
  /** A failed append could not be cut off: the next one cuts it off first. */
  private dirty = false;

  constructor(
    readonly file: string,
    private readonly files: FileLayer,
  ) {}

  /** The length of the file's whole lines. */
  get bytes(): number {
    return this.end;
  }

  /**
   * The file holds `bytes` of whole lines from here on: once a torn tail was cut off at open, or
   * once the file was rewritten whole (compaction).
   */
  startAt(bytes: number): void {
    this.end = bytes;
    this.dirty = false;
  }

  async append(text: Buffer): Promise<void> {
    const fh = await this.files.open(this.file, "a", 0o600);
    try {
      if (this.dirty) {
        await fh.truncate(this.end);
        this.dirty = false;
      }
      try {
        const n = await writeAll(fh, [text]);
        await fh.datasync();
        this.end += n;
      } catch (e) {
        await fh.truncate(this.end).catch(() => {
          this.dirty = true;
        });
        throw e;
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }
}
