// The shadows on disk: every accepted change is one journal line (the shadow as it now is), appended
// and fdatasync'd before the service acknowledges it (group commit, as the registry and the delivery
// journal do); at start the journal is replayed, last line wins. When the journal has grown well past
// what it holds, it is rewritten whole (temporary file, fsync, rename, directory fsync), so that a
// crash at any point leaves either the old journal or the new one, never less than was acknowledged.
import * as fs from "node:fs";
import * as path from "node:path";
import { temporaryPathFor } from "../../core/atomic-write";
import { LineAppender, nodeFiles, writeAll, type FileLayer } from "../private/file-layer";
import { syncDir } from "../storage/s3";
import { DELETED_VERSION_KEPT_MS, isObject, type StoredShadow } from "./document";

/** One journal line: whose shadow (`s` null: the classic shadow) and what it now is. */
interface Line {
  readonly t: string;
  readonly s: string | null;
  readonly d: StoredShadow;
}

/** A line holds one shadow: 8 KB of state, its metadata, names; generous, and bounded. */
const MAX_LINE_BYTES = 256 * 1024;

export interface ShadowStoreLimits {
  /** Shadows (live or deleted within 48 hours) the store keeps; past it new shadows are refused. */
  readonly maxShadows: number;
  /** The journal is rewritten once it is larger than this and than `compactRatio` × its live lines. */
  readonly compactBytes: number;
  readonly compactRatio: number;
}

export const DEFAULT_SHADOW_STORE_LIMITS: ShadowStoreLimits = {
  maxShadows: 100_000,
  compactBytes: 4 * 1024 * 1024,
  compactRatio: 4,
};

export interface ShadowStoreCounts {
  /** Torn last writes cut off at start (never acknowledged). */
  tornTailsCut: number;
  /** Complete lines that hold no shadow: skipped and logged. */
  unreadable: number;
  /** Writes that failed (ENOSPC, EIO...): their changes were refused, not acknowledged. */
  failedWrites: number;
  /** Journal rewrites, and those that failed (the old journal then stays, whole). */
  compactions: number;
  failedCompactions: number;
}

function keyOf(thing: string, shadow: string | undefined): string {
  return `${thing}\u0000${shadow ?? ""}`;
}

function parseLine(line: string): Line | undefined {
  if (Buffer.byteLength(line) > MAX_LINE_BYTES) return undefined;
  try {
    const l = JSON.parse(line) as Line;
    if (typeof l.t !== "string" || !(l.s === null || typeof l.s === "string")) return undefined;
    if (!isObject(l.d) || typeof l.d.version !== "number") return undefined;
    return l;
  } catch {
    return undefined;
  }
}

export class ShadowStore {
  private readonly shadows = new Map<string, Line>();
  /** Named shadows per thing (live or within their 48 hours). */
  private readonly named = new Map<string, number>();
  readonly counts: ShadowStoreCounts = {
    tornTailsCut: 0,
    unreadable: 0,
    failedWrites: 0,
    compactions: 0,
    failedCompactions: 0,
  };
  /** Whole lines appended and fdatasync'd; a failed write cut back (local/private/file-layer.ts). */
  private readonly appender: LineAppender;
  private writing = false;
  private readonly waiting: Array<{ line: Line; resolve: () => void; reject: (e: Error) => void }> =
    [];

  private constructor(
    readonly file: string,
    private readonly files: FileLayer,
    private readonly log: (line: string) => void,
    readonly limits: ShadowStoreLimits,
  ) {
    this.appender = new LineAppender(file, files);
  }

  /**
   * Opens (or creates) `<dir>/<stack>.jsonl` and replays it. A last line without its newline was
   * never acknowledged: it is cut off before anything is appended.
   */
  static open(
    dir: string,
    stack: string,
    log: (line: string) => void = () => undefined,
    limits: Partial<ShadowStoreLimits> = {},
    files: FileLayer = nodeFiles,
  ): ShadowStore {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const store = new ShadowStore(path.join(dir, `${stack}.jsonl`), files, log, {
      ...DEFAULT_SHADOW_STORE_LIMITS,
      ...limits,
    });
    let buf = Buffer.alloc(0);
    try {
      buf = fs.readFileSync(store.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      // The journal's name is made durable now, so that its first acknowledged line has a file.
      fs.closeSync(fs.openSync(store.file, "a", 0o600));
      const d = fs.openSync(dir, "r");
      try {
        fs.fsyncSync(d);
      } finally {
        fs.closeSync(d);
      }
    }
    const end = buf.lastIndexOf(0x0a) + 1;
    if (end < buf.length) {
      fs.truncateSync(store.file, end);
      store.counts.tornTailsCut++;
      log(
        `shadow: cut off an unfinished last write (${buf.length - end} bytes) of ${store.file}; it was never acknowledged`,
      );
    }
    store.appender.startAt(end);
    for (const text of buf.subarray(0, end).toString("utf8").split("\n")) {
      if (text.trim() === "") continue;
      const line = parseLine(text);
      if (line === undefined) store.counts.unreadable++;
      else store.apply(line);
    }
    if (store.counts.unreadable > 0) {
      log(`shadow: skipped ${store.counts.unreadable} unreadable line(s) of ${store.file}`);
    }
    return store;
  }

  private apply(line: Line): void {
    const key = keyOf(line.t, line.s ?? undefined);
    if (!this.shadows.has(key) && line.s !== null) {
      this.named.set(line.t, (this.named.get(line.t) ?? 0) + 1);
    }
    this.shadows.set(key, line);
  }

  get size(): number {
    return this.shadows.size;
  }

  /** The shadow (or what its DELETE left), if any. */
  get(thing: string, shadow?: string): StoredShadow | undefined {
    return this.shadows.get(keyOf(thing, shadow))?.d;
  }

  /** Named shadows this thing has (live, or deleted within 48 hours). */
  namedCount(thing: string): number {
    return this.named.get(thing) ?? 0;
  }

  /** Whether a new shadow would pass the store's bound. */
  hasRoomFor(thing: string, shadow?: string): boolean {
    return this.shadows.has(keyOf(thing, shadow)) || this.shadows.size < this.limits.maxShadows;
  }

  /**
   * Records a shadow's new state durably, then makes it visible; resolves once its line is on
   * disk. Changes that arrive during a write go together in the next one (one write, one
   * fdatasync). A failed write changes nothing and fails every change it carried.
   */
  put(thing: string, shadow: string | undefined, doc: StoredShadow): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ line: { t: thing, s: shadow ?? null, d: doc }, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.waiting.length);
      const text = Buffer.from(batch.map((b) => JSON.stringify(b.line) + "\n").join(""));
      try {
        await this.appender.append(text);
        for (const b of batch) {
          this.apply(b.line);
          b.resolve();
        }
      } catch (e) {
        this.counts.failedWrites++;
        this.log(
          `shadow: could not write ${batch.length} change(s) to ${this.file} (${(e as Error).message}); not acknowledged, the devices retry`,
        );
        for (const b of batch) b.reject(e instanceof Error ? e : new Error(String(e)));
      }
      if (this.waiting.length === 0) await this.compactIfLarge();
    }
    this.writing = false;
  }

  /**
   * Rewrites the journal with one line per shadow once it is large and mostly superseded lines;
   * deleted shadows older than 48 hours are dropped (their version no longer matters).
   */
  private async compactIfLarge(now = Date.now()): Promise<void> {
    if (this.appender.bytes < this.limits.compactBytes) return;
    const live = [...this.shadows.values()].filter(
      (l) => l.d.deletedAt === undefined || now - l.d.deletedAt < DELETED_VERSION_KEPT_MS,
    );
    const text = Buffer.from(live.map((l) => JSON.stringify(l) + "\n").join(""));
    if (text.length * this.limits.compactRatio > this.appender.bytes) return;
    const tmp = temporaryPathFor(this.file);
    try {
      const fh = await this.files.open(tmp, "w", 0o600);
      try {
        await writeAll(fh, [text]);
        await fh.sync();
      } finally {
        await fh.close().catch(() => undefined);
      }
      fs.renameSync(tmp, this.file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      this.counts.failedCompactions++;
      this.log(
        `shadow: could not rewrite ${this.file} (${(e as Error).message}); the journal stays as it is`,
      );
      return;
    }
    // The new journal is in place (it holds every acknowledged shadow): from here on it is the one.
    this.appender.startAt(text.length);
    this.counts.compactions++;
    this.shadows.clear();
    this.named.clear();
    await syncDir(path.dirname(this.file)).catch((e: unknown) => {
      this.counts.failedCompactions++;
      this.log(`shadow: could not sync the folder of ${this.file} (${(e as Error).message})`);
    });
    for (const l of live) this.apply(l);
  }
}
