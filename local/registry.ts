// The local thing registry that fleet provisioning writes to: things (type, groups, attributes),
// the device certificates attached to them and their status. Each registration is appended to a
// journal and synced to disk before it is acknowledged, so a second run knows every device the
// first one provisioned.
import * as fs from "node:fs";
import * as path from "node:path";

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

export class LocalRegistry {
  private readonly things = new Map<string, RegisteredThing>();
  private readonly certificates = new Map<string, RegisteredCertificate>();

  private constructor(readonly file: string) {}

  /**
   * Opens (or creates) `<dir>/<stack>.jsonl` and replays it. A line that does not parse (a torn
   * write at a crash) is skipped and named in the log; every complete line is kept.
   */
  static open(dir: string, stack: string, log: (line: string) => void = () => undefined) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const registry = new LocalRegistry(path.join(dir, `${stack}.jsonl`));
    let text = "";
    try {
      text = fs.readFileSync(registry.file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    let bad = 0;
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      try {
        if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw new Error("line too long");
        const r = JSON.parse(line) as Registration;
        if (typeof r.thing?.name !== "string" || typeof r.certificate?.certificateId !== "string") {
          throw new Error("not a registration");
        }
        registry.apply(r);
      } catch {
        bad++;
      }
    }
    if (bad > 0) log(`registry: skipped ${bad} unreadable line(s) of ${registry.file}`);
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
      const text = batch.map((b) => JSON.stringify(b.registration) + "\n").join("");
      try {
        const fh = await fs.promises.open(this.file, "a", 0o600);
        try {
          await fh.appendFile(text);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        for (const b of batch) {
          this.apply(b.registration);
          b.resolve();
        }
      } catch (e) {
        for (const b of batch) b.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    this.writing = false;
  }
}
