// Firehose-to-S3 naming and framing rules shared by the Pulumi program and the local delivery
// stream: the rule action's record separator, object keys, and error-output prefixes.
import { bool, int, oneOf, optionalStr, str, type RawConfig } from "./config-values";
import { invalidConfig as fail } from "./errors";
import { isValidBucketName } from "./storage";

/** How Firehose compresses the objects it delivers (the ones this project offers). */
export type Compression = "UNCOMPRESSED" | "GZIP";
export const COMPRESSIONS: readonly Compression[] = ["UNCOMPRESSED", "GZIP"];

/**
 * The separator the topic rule's Firehose action appends to every record (Firehose itself
 * concatenates records without one). The program deploys it; the local rule engine applies it.
 */
export const FIREHOSE_RECORD_SEPARATOR = "\n";

/** One Firehose delivery stream into the pipeline's bucket, as the stack config sets it. */
export interface DeliveryConfig {
  readonly streamName: string;
  /** Explicit bucket name; undefined lets the program derive a unique one. */
  readonly bucketName?: string;
  readonly bufferSizeMiB: number;
  readonly bufferIntervalSeconds: number;
  readonly compression: Compression;
  readonly prefix: string;
  readonly errorOutputPrefix: string;
  readonly errorLogging: boolean;
}

/**
 * Firehose stream names are 1-64 characters
 * (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html).
 */
export const FIREHOSE_STREAM_NAME_MAX = 64;

/**
 * The Firehose stream that delivers the analytics windows: the telemetry stream's name +
 * `-windows`, its length checked here where the suffix is added.
 */
export function windowsStreamName(streamName: string): string {
  const name = `${streamName}-windows`;
  if (name.length > FIREHOSE_STREAM_NAME_MAX) {
    fail(
      "streamName",
      streamName,
      "use 1-56 letters, digits, '_', '.' or '-' (Firehose stream names, less the windows stream's -windows)",
    );
  }
  return name;
}

/**
 * The analytics windows' delivery, in the cloud (a Firehose stream reading the Flink job's output
 * stream) and locally: into the telemetry's bucket under the window spec's prefix, as small
 * uncompressed objects of JSON lines that are visible within a minute of a window closing.
 */
export function windowsDeliveryConfig(telemetry: DeliveryConfig, prefix: string): DeliveryConfig {
  return {
    streamName: windowsStreamName(telemetry.streamName),
    bucketName: telemetry.bucketName,
    bufferSizeMiB: 1,
    bufferIntervalSeconds: 60,
    compression: "UNCOMPRESSED",
    prefix,
    errorOutputPrefix: `errors/${prefix}`,
    errorLogging: telemetry.errorLogging,
  };
}

/**
 * Firehose's error-output-type for a record its processing could not deliver: a record the local
 * stream cannot write, and one whose partition key could not be extracted (the s3-prefixes page
 * lists no value of its own for that; dynamic partitioning's inline parsing is a processor of the
 * stream's processing configuration, and processing failures are `processing-failed`:
 * https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html).
 */
export const PROCESSING_FAILED = "processing-failed";

/** Firehose refuses a record larger than 1,000 KiB (PutRecord). */
export const FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024;

/** A stream's version starts at 1 and grows with every configuration change. */
export const FIREHOSE_STREAM_VERSION = 1;

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** `YYYY/MM/dd/HH/` in UTC: what Firehose appends to a prefix without expressions. */
export function timePrefix(t: Date): string {
  return `${t.getUTCFullYear()}/${pad(t.getUTCMonth() + 1)}/${pad(t.getUTCDate())}/${pad(t.getUTCHours())}/`;
}

/** The Java DateTimeFormatter letters Firehose's `!{timestamp:...}` uses most, in UTC. */
function formatTimestamp(pattern: string, t: Date): string {
  const fields: Record<string, string> = {
    yyyy: String(t.getUTCFullYear()),
    MM: pad(t.getUTCMonth() + 1),
    dd: pad(t.getUTCDate()),
    HH: pad(t.getUTCHours()),
    mm: pad(t.getUTCMinutes()),
    ss: pad(t.getUTCSeconds()),
  };
  return pattern.replace(/yyyy|MM|dd|HH|mm|ss/g, (f) => fields[f]);
}

/**
 * Evaluates a custom prefix. A prefix with no `!{...}` expression gets Firehose's
 * `YYYY/MM/dd/HH/` appended (and, for an error prefix, the error type folder before it).
 * `t` is the arrival time of the oldest record in the object, as Firehose uses.
 */
export function evaluatePrefix(
  prefix: string,
  t: Date,
  random: () => string,
  errorType?: string,
): string {
  if (!/!\{[^}]*\}/.test(prefix)) {
    return `${prefix}${errorType !== undefined ? `${errorType}/` : ""}${timePrefix(t)}`;
  }
  return prefix.replace(/!\{([^}:]+):([^}]*)\}/g, (whole, ns: string, value: string) => {
    if (ns === "timestamp") return formatTimestamp(value, t);
    if (ns === "firehose" && value === "random-string") return random();
    if (ns === "firehose" && value === "error-output-type") return errorType ?? "";
    return whole;
  });
}

/**
 * The object name Firehose appends to the evaluated prefix:
 * `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>` plus `.gz` when it compresses with GZIP.
 */
export function objectName(
  stream: string,
  t: Date,
  uuid: string,
  compression: Compression,
  version = FIREHOSE_STREAM_VERSION,
): string {
  const stamp = formatTimestamp("yyyy-MM-dd-HH-mm-ss", t);
  return `${stream}-${version}-${stamp}-${uuid}${compression === "GZIP" ? ".gz" : ""}`;
}

/** Firehose's rules for custom S3 prefixes (namespaces `timestamp` and `firehose` only). */
export function checkFirehosePrefixes(prefix: string, errorOutputPrefix: string): void {
  const expressions = (p: string) => [...p.matchAll(/!\{([^}]*)\}/g)].map((m) => m[1]);
  const known = /^(timestamp:.+|firehose:(random-string|error-output-type))$/;
  for (const [key, value] of [
    ["s3Prefix", prefix],
    ["errorOutputPrefix", errorOutputPrefix],
  ] as const) {
    if (value.startsWith("/")) fail(key, value, "must not start with '/'");
    for (const e of expressions(value)) {
      if (!known.test(e)) {
        fail(
          key,
          value,
          `!{${e}} is not a Firehose expression; use !{timestamp:...} or !{firehose:random-string}`,
        );
      }
    }
  }
  if (expressions(prefix).includes("firehose:error-output-type")) {
    fail("s3Prefix", prefix, "!{firehose:error-output-type} is allowed only in errorOutputPrefix");
  }
  // Static prefixes get Firehose's own YYYY/MM/dd/HH/ (and error-type) folders; once a prefix
  // uses expressions, the error prefix must say where each kind of failure goes itself.
  const usesExpressions = expressions(prefix).length + expressions(errorOutputPrefix).length > 0;
  if (usesExpressions && !expressions(errorOutputPrefix).includes("firehose:error-output-type")) {
    fail(
      "errorOutputPrefix",
      errorOutputPrefix,
      "must contain !{firehose:error-output-type} when the prefixes use expressions",
    );
  }
}

/** The delivery keys: the telemetry stream's name, bucket, buffering, compression and prefixes. */
export function parseDeliveryConfig(raw: RawConfig): DeliveryConfig {
  const streamName = str(raw, "streamName");
  // The syntax of a Firehose stream name; the windows' stream checks the length where it adds
  // its suffix (core/delivery.ts windowsStreamName).
  if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(streamName)) {
    fail(
      "streamName",
      streamName,
      "use 1-56 letters, digits, '_', '.' or '-' (Firehose stream names, less the windows stream's -windows)",
    );
  }
  const bucketName = optionalStr(raw, "bucketName");
  if (bucketName !== undefined && !isValidBucketName(bucketName)) {
    fail(
      "bucketName",
      bucketName,
      "use 3-63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit, or leave it empty to derive one",
    );
  }
  const prefix = str(raw, "s3Prefix");
  const errorOutputPrefix = str(raw, "errorOutputPrefix");
  checkFirehosePrefixes(prefix, errorOutputPrefix);

  const bufferSizeMiB = int(raw, "bufferSizeMiB", 1, 128, "MiB");
  const bufferIntervalSeconds = int(raw, "bufferIntervalSeconds", 0, 900, "seconds");
  return {
    streamName,
    bucketName,
    bufferSizeMiB,
    bufferIntervalSeconds,
    compression: oneOf(raw, "compression", COMPRESSIONS),
    prefix,
    errorOutputPrefix,
    errorLogging: bool(raw, "errorLogging"),
  };
}
