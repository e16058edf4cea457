// The journal's segments on disk: the current segment takes each group-committed batch as one
// write and one fdatasync; a buffer's hand-over closes its segment and starts the next, and the
// closed segment is removed once its records' objects are durable.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { syncDir } from "../storage/s3";
import { writeAll, type FileLayer, type WritableFile } from "../private/file-layer";
import { segmentFileName } from "./replay";

/** A segment that has been handed over with its buffer. */
export interface ClosedSegment {
  readonly path: string;
}

export class JournalSegments {
  private no = 0;
  private file: WritableFile | undefined;
  private filePath = "";
  /** Bytes of whole, fsync'd frames in the current segment. */
  private bytes = 0;
  /** A failed write could not be cut off: the segment must be handed over before the next write. */
  private dirtyFlag = false;

  constructor(
    readonly dir: string,
    private readonly files: FileLayer,
  ) {}

  /** Whether the current segment holds bytes after its last good frame. */
  get dirty(): boolean {
    return this.dirtyFlag;
  }

  /** Opens the first segment, numbered after `lastNo`, the highest already in the folder. */
  async start(lastNo: number): Promise<void> {
    this.no = lastNo;
    const next = await this.create();
    this.file = next.file;
    this.filePath = next.path;
    this.bytes = 0;
  }

  /**
   * Writes a batch whole and fdatasyncs it. On failure, what part of it reached the file is cut
   * off, so that the next batch follows the last acknowledged frame; if even that fails, the
   * segment is marked dirty and must be handed over before the next write. Rethrows the failure.
   */
  async append(block: Buffer): Promise<void> {
    const handle = this.file;
    try {
      if (!handle) throw new Error("no journal segment is open");
      const written = await writeAll(handle, [block]);
      await handle.datasync();
      this.bytes += written;
    } catch (e) {
      await handle?.truncate(this.bytes).catch(() => {
        this.dirtyFlag = true;
      });
      throw e;
    }
  }

  /**
   * Starts the next segment (none when `last`) and returns the current one, which now belongs to
   * the buffer handed over with it. Throws, changing nothing, when the next cannot be created.
   */
  async rotate(last: boolean): Promise<ClosedSegment> {
    const next = last ? undefined : await this.create();
    const old = this.file;
    const closed = { path: this.filePath };
    this.file = next?.file;
    this.filePath = next?.path ?? "";
    this.bytes = 0;
    this.dirtyFlag = false;
    await old?.close().catch(() => undefined);
    return closed;
  }

  /** Closes and removes the current segment, which holds no acknowledged record. */
  async closeEmpty(): Promise<void> {
    if (!this.file) return;
    await this.file.close().catch(() => undefined);
    this.file = undefined;
    await fs.rm(this.filePath, { force: true }).catch(() => undefined);
  }

  /** Creates the next segment and makes its name durable. */
  private async create(): Promise<{ file: WritableFile; path: string }> {
    this.no++;
    const p = path.join(this.dir, segmentFileName(this.no));
    const file = await this.files.open(p, "a", 0o600);
    try {
      await syncDir(this.dir);
    } catch (e) {
      await file.close().catch(() => undefined);
      await fs.rm(p, { force: true }).catch(() => undefined);
      throw e;
    }
    return { file, path: p };
  }
}
