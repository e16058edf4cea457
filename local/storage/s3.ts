// The local stand-in for S3: one folder per bucket under <stateDir>/s3, objects written
// atomically (temp file, fsync, rename, fsync of the folder) so a crash never leaves half an object,
// and a failed write (a full disk) leaves no temp file behind.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { UserError } from "../../core/errors";
import { PROJECT } from "../../core/project";
import { type StackConfig } from "../../core/stack-config";
import { nodeFiles, writeAll, type FileLayer } from "../private/file-layer";

/** The bucket a stack delivers to locally: its configured name, else `iot-pipeline-<stack>-local`. */
export function localBucketName(config: Pick<StackConfig, "stack" | "delivery">): string {
  return config.delivery.bucketName ?? `${PROJECT}-${config.stack}-local`.toLowerCase();
}

/**
 * S3's limit on an object key: "a sequence of Unicode characters encoded in UTF-8, with a maximum
 * length of 1,024 bytes" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html).
 */
export const S3_MAX_KEY_BYTES = 1024;

/** The longest name one folder entry may have on the file systems the local bucket lives on. */
export const LOCAL_MAX_SEGMENT_BYTES = 255;

/** A key the local bucket refuses to store: it would leave the bucket's folder or cannot be a path. */
export class ObjectKeyError extends UserError {}

/**
 * Why the local bucket cannot store an object under `key`, or undefined when it can. S3 itself
 * takes any UTF-8 key up to 1,024 bytes (object-keys page: `..` segments are plain characters
 * there, and control characters are only "characters to avoid"); the local bucket maps keys to
 * paths, so it also refuses what a path would turn into something else: an absolute key, empty,
 * `.` or `..` segments, NUL and other control characters, a backslash, and a segment longer than
 * a file name may be.
 */
export function localKeyProblem(key: string): string | undefined {
  if (key.length === 0) return "the key is empty";
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > S3_MAX_KEY_BYTES) {
    return `the key is ${bytes} bytes long, over S3's ${S3_MAX_KEY_BYTES}-byte limit`;
  }
  if (/[\u0000-\u001f\u007f]/.test(key))
    return "the key holds a control character (NUL, newline...)";
  if (key.includes("\\")) return "the key holds a backslash";
  if (key.startsWith("/")) return "the key starts with / (an absolute path)";
  const segments = key.split("/");
  for (const [i, s] of segments.entries()) {
    if (s === "." || s === "..") return `the key has a "${s}" segment`;
    if (s === "" && i < segments.length - 1) return "the key has an empty segment (//)";
    if (Buffer.byteLength(s, "utf8") > LOCAL_MAX_SEGMENT_BYTES) {
      return `a segment of the key is over ${LOCAL_MAX_SEGMENT_BYTES} bytes, longer than a file name may be`;
    }
  }
  if (key.endsWith("/")) return "the key ends with / (a folder, not an object)";
  return undefined;
}

export class LocalBucket {
  readonly dir: string;

  constructor(
    stateDir: string,
    readonly name: string,
    /** What objects are written through; tests inject a full disk here. */
    private readonly files: FileLayer = nodeFiles,
  ) {
    this.dir = path.join(stateDir, "s3", name);
  }

  /** Writes one object durably and returns its path on disk; on failure nothing is left behind. */
  async putObject(key: string, body: Buffer): Promise<string> {
    const file = this.pathOf(key);
    const folder = path.dirname(file);
    await fs.mkdir(folder, { recursive: true });
    const tmp = path.join(folder, `.${path.basename(file)}.${randomBytes(4).toString("hex")}.tmp`);
    try {
      const fh = await this.files.open(tmp, "w", 0o644);
      try {
        await writeAll(fh, [body]);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, file);
    } catch (e) {
      // A half-written temp file is not an object; on a full disk it is also the space to give back.
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
    await syncDir(folder);
    return file;
  }

  /**
   * The file an object's key is stored in. Throws ObjectKeyError for a key the bucket refuses
   * (localKeyProblem), and, as a second check, for any key whose path would not lie inside the
   * bucket's folder.
   */
  pathOf(key: string): string {
    const problem = localKeyProblem(key);
    const file = path.join(this.dir, ...key.split("/"));
    const rel = path.relative(this.dir, file);
    const outside = rel === "" || rel.startsWith("..") || path.isAbsolute(rel);
    if (problem !== undefined || outside) {
      const shown = JSON.stringify(key.length > 120 ? `${key.slice(0, 120)}...` : key);
      throw new ObjectKeyError(
        `the local bucket ${this.name} refuses the object key ${shown}: ${problem ?? "it resolves outside the bucket's folder"}`,
      );
    }
    return file;
  }

  /** Every object's key, sorted (temp files of interrupted writes are not objects). */
  async listKeys(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (e.isDirectory()) await walk(path.join(dir, e.name), `${prefix}${e.name}/`);
        else if (!e.name.endsWith(".tmp")) out.push(`${prefix}${e.name}`);
      }
    };
    await walk(this.dir, "");
    return out.sort();
  }
}

/** Makes a rename or unlink in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
