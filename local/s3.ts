// The local stand-in for S3: one folder per bucket under <stateDir>/s3, objects written
// atomically (temp file, fsync, rename, fsync of the folder) so a crash never leaves half an object,
// and a failed write (a full disk) leaves no temp file behind.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { PROJECT } from "../core/project";
import { type StackConfig } from "../core/stack-config";
import { nodeFiles, writeAll, type FileLayer } from "./file-layer";

/** The bucket a stack delivers to locally: its configured name, else `iot-pipeline-<stack>-local`. */
export function localBucketName(config: Pick<StackConfig, "stack" | "delivery">): string {
  return config.delivery.bucketName ?? `${PROJECT}-${config.stack}-local`.toLowerCase();
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
    const file = path.join(this.dir, ...key.split("/"));
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
