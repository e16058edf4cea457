// The local thing registry that fleet provisioning writes to: things (type, groups, attributes),
// the device certificates attached to them and their status. Each registration is appended to a
// journal and synced to disk before it is acknowledged, so a second run knows every device the
// first one provisioned. Recovery follows the delivery journal's rules (local/delivery/): a write
// that failed or was cut short is cut off before the next one is appended, a torn last line (never
// acknowledged) is cut off at start, and no acknowledged line is ever lost.
import * as fs from "node:fs";
import * as path from "node:path";
import { LineAppender, nodeFiles, type FileLayer } from "../private/file-layer";

/** A provisioned thing, as the registry holds it. */
export interface RegisteredThing {
  readonly name: string;
  readonly typeName?: string;
  readonly groups: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
}

/** An active or inactive device certificate and what is attached to it. */
export interface RegisteredCertificate {
  readonly certificateId: string;
  readonly status: "ACTIVE" | "INACTIVE";
  readonly thingName: string;
  readonly policyNames: readonly string[];
}

/** One journal line: a thing as it now is, and the certificate attached to it. */
interface Registration {
  readonly thing: RegisteredThing;
  readonly certificate: RegisteredCertificate;
}

/** Bounds: a registry line, and the registry itself (AWS's fleets are larger; this is local). */
const MAX_LINE_BYTES = 64 * 1024;
export const MAX_THINGS = 100_000;

/** How every line starts: `JSON.stringify` writes a registration's `thing` key first. */
const LINE_START = '{"thing":';

/** A line's registration, or undefined when it is not one. */
function parseLine(line: string): Registration | undefined {
  if (Buffer.byteLength(line) > MAX_LINE_BYTES) return undefined;
  try {
    const r = JSON.parse(line) as Registration;
    if (typeof r.thing?.name !== "string" || typeof r.certificate?.certificateId !== "string") {
      return undefined;
    }
    return r;
  } catch {
    return undefined;
  }
}

/**
 * The registration at the end of a damaged line: registries written before the writer cut off its
 * failed writes hold a torn write followed, on the same line, by the next acknowledged one.
 */
function salvage(line: string): Registration | undefined {
  for (let at = line.indexOf(LINE_START, 1); at > 0; at = line.indexOf(LINE_START, at + 1)) {
    const r = parseLine(line.slice(at));
    if (r !== undefined) return r;
  }
  return undefined;
}

export interface RegistryCounts {
  /** Torn last writes cut off at start (never acknowledged). */
  tornTailsCut: number;
  /** Acknowledged registrations recovered from behind a torn write on the same line. */
  salvaged: number;
  /** Complete lines that hold no registration (bit rot, an edit): skipped and logged. */
  unreadable: number;
  /** Writes that failed (ENOSPC, EIO...) and were cut off; their registrations were refused. */
  failedWrites: number;
}

export class LocalRegistry {
  private readonly things = new Map<string, RegisteredThing>();
  private readonly certificates = new Map<string, RegisteredCertificate>();
  readonly counts: RegistryCounts = {
    tornTailsCut: 0,
    salvaged: 0,
    unreadable: 0,
    failedWrites: 0,
  };
  /** Whole lines appended and fdatasync'd; a failed write cut back (local/private/file-layer.ts). */
  private readonly appender: LineAppender;

  private constructor(
    readonly file: string,
    files: FileLayer,
    private readonly log: (line: string) => void,
  ) {
    this.appender = new LineAppender(file, files);
  }

  /**
   * Opens (or creates) `<dir>/<stack>.jsonl` and replays it. A last line without its newline is a
   * write that never completed (never acknowledged): it is cut off before anything is appended. A
   * complete line that does not parse is skipped and named in the log, after recovering the
   * acknowledged registration a torn write may hide at its end; every complete line is kept.
   */
  static open(
    dir: string,
    stack: string,
    log: (line: string) => void = () => undefined,
    files: FileLayer = nodeFiles,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const registry = new LocalRegistry(path.join(dir, `${stack}.jsonl`), files, log);
    let buf = Buffer.alloc(0);
    try {
      buf = fs.readFileSync(registry.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const end = buf.lastIndexOf(0x0a) + 1;
    if (end < buf.length) {
      // Cut here, not at the next append: a registration appended after the torn bytes would
      // share their line and be unreadable at the next start.
      fs.truncateSync(registry.file, end);
      registry.counts.tornTailsCut++;
      log(
        `registry: cut off an unfinished last write (${buf.length - end} bytes) of ${registry.file}; it was never acknowledged`,
      );
    }
    registry.appender.startAt(end);
    for (const line of buf.subarray(0, end).toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      const r = parseLine(line);
      if (r !== undefined) {
        registry.apply(r);
        continue;
      }
      const saved = salvage(line);
      if (saved !== undefined) {
        registry.apply(saved);
        registry.counts.salvaged++;
        log(
          `registry: recovered thing ${saved.thing.name} from behind a torn write in ${registry.file}`,
        );
      } else {
        registry.counts.unreadable++;
      }
    }
    if (registry.counts.unreadable > 0) {
      log(`registry: skipped ${registry.counts.unreadable} unreadable line(s) of ${registry.file}`);
    }
    return registry;
  }

  private apply(r: Registration): void {
    this.things.set(r.thing.name, r.thing);
    this.certificates.set(r.certificate.certificateId, r.certificate);
  }

  get thingCount(): number {
    return this.things.size;
  }

  thing(name: string): RegisteredThing | undefined {
    return this.things.get(name);
  }

  certificate(certificateId: string): RegisteredCertificate | undefined {
    return this.certificates.get(certificateId);
  }

  /** Every thing, for the authorizer's contexts at start. */
  allThings(): RegisteredThing[] {
    return [...this.things.values()];
  }

  /**
   * Records a registration durably, then makes it visible. Registrations that arrive while a write
   * is under way are written together by the next one (one append and one fdatasync for all of
   * them: group commit); each promise resolves once its line is on disk. A failed write changes
   * nothing and fails every registration it carried.
   */
  register(thing: RegisteredThing, certificate: RegisteredCertificate): Promise<void> {
    if (!this.things.has(thing.name) && this.things.size >= MAX_THINGS) {
      return Promise.reject(
        new Error(`the local registry holds its maximum of ${MAX_THINGS} things`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ registration: { thing, certificate }, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private readonly waiting: Array<{
    registration: Registration;
    resolve: () => void;
    reject: (e: Error) => void;
  }> = [];
  private writing = false;

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.waiting.length);
      const text = Buffer.from(batch.map((b) => JSON.stringify(b.registration) + "\n").join(""));
      try {
        await this.appender.append(text);
        for (const b of batch) {
          this.apply(b.registration);
          b.resolve();
        }
      } catch (e) {
        this.counts.failedWrites++;
        this.log(
          `registry: could not write ${batch.length} registration(s) to ${this.file} (${(e as Error).message}); not acknowledged, the devices retry`,
        );
        for (const b of batch) b.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    this.writing = false;
  }
}
