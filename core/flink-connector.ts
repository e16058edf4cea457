// The Managed Flink connector jar: which release, where it comes from, and getting it onto this
// machine verified. The program zips the jar into the application's code; a jar is accepted only
// when its SHA-512 equals the stack's pinned digest, and it is kept in a cache folder so that
// `pulumi preview` and `pulumi up` fetch it once, not at every run.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { replaceFileAtomic } from "./atomic-write";
import { optionalStr, type RawConfig } from "./config-values";
import { invalidConfig as fail, UserError } from "./errors";
import { PROJECT, PROJECT_DIR } from "./project";

/**
 * The Kinesis SQL connector, pinned to the release AWS lists for Flink 1.20. It is the shaded
 * ("sql") jar, so this one file is every dependency the PyFlink job needs; version 5 reads with
 * the new KinesisStreamsSource (`'connector' = 'kinesis'` with `stream.arn`).
 */
export const KINESIS_CONNECTOR = {
  groupId: "org.apache.flink",
  artifactId: "flink-sql-connector-kinesis",
  version: "5.0.0-1.20",
} as const;
export const CONNECTOR_JAR = `${KINESIS_CONNECTOR.artifactId}-${KINESIS_CONNECTOR.version}.jar`;
/** The jar on Maven Central; the digest is published beside it (`<url>.sha512`). */
export const CONNECTOR_URL = `https://repo1.maven.org/maven2/${KINESIS_CONNECTOR.groupId.replace(/\./g, "/")}/${KINESIS_CONNECTOR.artifactId}/${KINESIS_CONNECTOR.version}/${CONNECTOR_JAR}`;

/** Where downloaded jars are kept: under the repository's (git-ignored) `.local/`. */
export const CONNECTOR_CACHE_DIR = path.join(PROJECT_DIR, ".local", "cache", "flink");

/** The largest jar accepted (the shaded connector is tens of MiB); a bigger answer is refused. */
export const MAX_CONNECTOR_BYTES = 256 * 1024 * 1024;
/** How long the download may take in all. */
export const CONNECTOR_DOWNLOAD_TIMEOUT_MS = 10 * 60 * 1000;

/** The shell command that pins the digest published beside `url` in a stack. */
export function pinCommand(url: string = CONNECTOR_URL): string {
  return `pulumi config set ${PROJECT}:flinkConnectorSha512 "$(curl -fsS ${url}.sha512)"`;
}

/** A jar whose SHA-512 is not the pinned one. */
export class DigestMismatchError extends UserError {}

export interface ConnectorJarOptions {
  /** An https:, http: or file: URL. @default CONNECTOR_URL */
  readonly url?: string;
  /** The pinned SHA-512 (128 lower-case hex digits); undefined accepts any jar and says its digest. */
  readonly sha512?: string;
  /** @default CONNECTOR_CACHE_DIR */
  readonly cacheDir?: string;
  /** @default MAX_CONNECTOR_BYTES */
  readonly maxBytes?: number;
  /** @default CONNECTOR_DOWNLOAD_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** Where notes go (the download, an unpinned digest). @default console.error */
  readonly log?: (line: string) => void;
}

function sha512Of(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha512");
    fs.createReadStream(file)
      .on("error", reject)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolve(hash.digest("hex")));
  });
}

function mismatch(url: string, expected: string, actual: string): DigestMismatchError {
  return new DigestMismatchError(
    `the Flink connector jar from ${url} has SHA-512 ${actual}, not the pinned ${expected} (config ${PROJECT}:flinkConnectorSha512); it was not used: compare both with ${url}.sha512 and pin the one you trust (${pinCommand(url)})`,
  );
}

/** Downloads `url` into `tmp`, at most `maxBytes`, within `timeoutMs`. */
async function download(url: string, tmp: string, maxBytes: number, timeoutMs: number) {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new UserError(
      `cannot download the Flink connector jar from ${url}: ${(e as Error).message}; check the network, or set ${PROJECT}:flinkConnectorUrl to a mirror or a file:/// URL of the jar`,
    );
  }
  if (!res.ok || res.body === null) {
    throw new UserError(
      `cannot download the Flink connector jar from ${url}: HTTP ${res.status}; check ${PROJECT}:flinkConnectorUrl`,
    );
  }
  const out = fs.createWriteStream(tmp);
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        throw new UserError(
          `the Flink connector jar from ${url} is larger than ${maxBytes} bytes; check ${PROJECT}:flinkConnectorUrl`,
        );
      }
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
    }
    await new Promise<void>((resolve, reject) => {
      out.once("error", reject);
      out.end(() => resolve());
    });
  } catch (e) {
    out.destroy();
    if (e instanceof UserError) throw e;
    throw new UserError(
      `cannot download the Flink connector jar from ${url}: ${(e as Error).message}; run again, or set ${PROJECT}:flinkConnectorUrl to a mirror`,
    );
  }
}

/**
 * The path of the connector jar on this machine, verified against the pinned SHA-512.
 * - A `file:` URL is read where it is (no copy).
 * - Otherwise the jar is kept at `<cacheDir>/<sha512 or "unpinned">/<file name>`: a cached jar
 *   with the pinned digest is used without a download; one with another digest (a corrupt or
 *   stale copy) is downloaded again once. A download whose digest differs is deleted and refused.
 * - Without a pinned digest any jar is accepted and its digest logged with the command to pin it.
 */
export async function verifiedConnectorJar(opts: ConnectorJarOptions = {}): Promise<string> {
  const url = opts.url ?? CONNECTOR_URL;
  const log = opts.log ?? ((l: string) => console.error(l));
  const expected = opts.sha512;
  /** Throws unless `file` has the pinned digest; without one, logs the digest and how to pin it. */
  const accept = async (file: string): Promise<void> => {
    const actual = await sha512Of(file);
    if (expected === undefined) {
      log(
        `note: the Flink connector jar ${file} is not pinned; its SHA-512 is ${actual}. Compare it with ${url}.sha512 and pin it: ${pinCommand(url)}`,
      );
    } else if (actual !== expected) {
      throw mismatch(url, expected, actual);
    }
  };

  if (url.startsWith("file:")) {
    const file = fileURLToPath(url);
    if (!fs.existsSync(file)) {
      throw new UserError(
        `the Flink connector jar ${file} (config ${PROJECT}:flinkConnectorUrl) does not exist; download it there or empty the key for Maven Central`,
      );
    }
    await accept(file);
    return file;
  }

  const name = path.basename(new URL(url).pathname) || CONNECTOR_JAR;
  const cached = path.join(opts.cacheDir ?? CONNECTOR_CACHE_DIR, expected ?? "unpinned", name);
  if (fs.existsSync(cached)) {
    if (expected === undefined) {
      await accept(cached); // logs its digest and how to pin it
      return cached;
    }
    if ((await sha512Of(cached)) === expected) return cached;
    log(`note: ${cached} does not have the pinned SHA-512; downloading it again`);
  }
  log(`downloading the Flink connector jar ${url} into ${path.dirname(cached)}`);
  fs.mkdirSync(path.dirname(cached), { recursive: true });
  await replaceFileAtomic(cached, async (tmp) => {
    await download(
      url,
      tmp,
      opts.maxBytes ?? MAX_CONNECTOR_BYTES,
      opts.timeoutMs ?? CONNECTOR_DOWNLOAD_TIMEOUT_MS,
    );
    await accept(tmp);
  });
  return cached;
}

/** The connector jar's URL and pinned digest (`flinkConnectorUrl`, `flinkConnectorSha512`). */
export function parseFlinkConnector(raw: RawConfig): FlinkConnectorSource {
  const url = optionalStr(raw, "flinkConnectorUrl");
  if (url !== undefined && !/^(https:\/\/[^\s]+|file:\/\/\/[^\s]+)$/.test(url)) {
    fail(
      "flinkConnectorUrl",
      url,
      "set an https:// URL of the jar (a Maven mirror) or a file:/// URL, or leave it empty for Maven Central",
    );
  }
  const given = optionalStr(raw, "flinkConnectorSha512")?.trim();
  // Maven Central's .sha512 file may hold the digest alone or followed by the file name.
  const sha512 = given?.split(/\s+/)[0].toLowerCase();
  if (sha512 !== undefined && !/^[0-9a-f]{128}$/.test(sha512)) {
    fail(
      "flinkConnectorSha512",
      given,
      "set the jar's SHA-512 as 128 hex digits (the .sha512 file Maven Central publishes beside the jar), or leave it empty",
    );
  }
  return { ...(url === undefined ? {} : { url }), ...(sha512 === undefined ? {} : { sha512 }) };
}

/** The Managed Flink connector jar's source (docs/analytics.md). */
export interface FlinkConnectorSource {
  /** An https: or file: URL; undefined for the jar on Maven Central. */
  readonly url?: string;
  /** The jar's SHA-512, 128 lower-case hex digits; undefined when not pinned. */
  readonly sha512?: string;
}
