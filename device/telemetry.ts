// The telemetry message: its TypeScript type, the one compiled validator of
// core/telemetry.schema.json, readable error lines, and the AWS IoT payload size limit.
import Ajv2020, { type ErrorObject } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { IOT_MAX_PAYLOAD_BYTES } from "../core/iot-limits";
import schema from "../core/telemetry.schema.json";

/** One sensor reading, as core/telemetry.schema.json defines it. Temperatures in °C. */
export interface Telemetry {
  thing: string;
  /** Epoch milliseconds (UTC). */
  timestamp: number;
  temperature: number;
  max_temperature: number;
  min_temperature: number;
  /** Relative humidity, percent. */
  humidity?: number;
  /** Millimetres (replayed history). */
  precipitation?: number;
  /** Metres per second (replayed history). */
  wind?: number;
  weather?: Weather;
}

export type Weather = "drizzle" | "rain" | "sun" | "snow" | "fog";

/**
 * Every field of Telemetry and whether it is required. The `satisfies` clause makes the compiler
 * reject a field added to the type but not here (or marked wrongly); the module-load check below
 * then rejects any drift between this list and the schema, so the type and the schema cannot part.
 */
export const TELEMETRY_FIELDS = {
  thing: "required",
  timestamp: "required",
  temperature: "required",
  max_temperature: "required",
  min_temperature: "required",
  humidity: "optional",
  precipitation: "optional",
  wind: "optional",
  weather: "optional",
} as const satisfies {
  [K in keyof Required<Telemetry>]: undefined extends Telemetry[K] ? "optional" : "required";
};

function checkSchemaMatchesType(): void {
  const declared = Object.keys(TELEMETRY_FIELDS).sort();
  const inSchema = Object.keys(schema.properties).sort();
  const required = Object.entries(TELEMETRY_FIELDS)
    .filter(([, r]) => r === "required")
    .map(([k]) => k)
    .sort();
  if (
    declared.join() !== inSchema.join() ||
    required.join() !== [...schema.required].sort().join()
  ) {
    throw new Error(
      `core/telemetry.schema.json and the Telemetry type disagree: type fields [${declared.join(", ")}] (required [${required.join(", ")}]), schema fields [${inSchema.join(", ")}] (required [${[...schema.required].sort().join(", ")}])`,
    );
  }
}
checkSchemaMatchesType();

// Compiled once: compiling costs milliseconds, validating microseconds.
const ajv = new Ajv2020({ allErrors: false, strict: true });
addFormats(ajv);
const validate = ajv.compile<Telemetry>(schema);

/** One validation failure: `kind` groups failures of the same field and rule; `message` is one line. */
export interface TelemetryError {
  readonly kind: string;
  readonly message: string;
}

/** What a valid message leaves in lastErrors: one shared empty list, not one per message. */
const NO_ERRORS: readonly ErrorObject[] = Object.freeze([]);

let lastErrors: readonly ErrorObject[] = NO_ERRORS;

/** A rule JSON Schema cannot state: the day's minimum is not above its maximum. */
const RANGE_ERROR: ErrorObject = {
  keyword: "range",
  instancePath: "/min_temperature",
  schemaPath: "#",
  params: {},
  message: "must not exceed max_temperature",
};

/** True when `msg` is a valid telemetry message; otherwise describeErrors() says why. */
export function validateTelemetry(msg: unknown): msg is Telemetry {
  if (!validate(msg)) {
    lastErrors = validate.errors ?? [];
    return false;
  }
  lastErrors = msg.min_temperature > msg.max_temperature ? [RANGE_ERROR] : NO_ERRORS;
  return lastErrors.length === 0;
}

function fieldOf(e: ErrorObject): string {
  // instancePath is a JSON pointer ("/temperature"); the root is "".
  const p = e.instancePath.replace(/^\//, "").replace(/\//g, ".");
  return p === "" ? "message" : p;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function valueAt(msg: unknown, pointer: string): unknown {
  let v: unknown = msg;
  for (const part of pointer.split("/").slice(1)) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return v;
}

/** Turns one ajv error into a line naming the field, the rule and the offending value. */
export function describeError(e: ErrorObject, msg?: unknown): TelemetryError {
  const field = fieldOf(e);
  const params = e.params as Record<string, unknown>;
  const got = msg === undefined ? "" : ` (got ${show(valueAt(msg, e.instancePath))})`;
  switch (e.keyword) {
    case "required":
      return {
        kind: `${String(params.missingProperty)}:required`,
        message: `missing required field ${String(params.missingProperty)}`,
      };
    case "additionalProperties":
      return {
        kind: `${String(params.additionalProperty)}:unknown`,
        message: `unknown field ${String(params.additionalProperty)} (the schema allows only ${Object.keys(TELEMETRY_FIELDS).join(", ")})`,
      };
    case "type":
      return {
        kind: `${field}:type`,
        message: `${field} must be ${String(params.type)}${got}`,
      };
    case "minimum":
    case "maximum":
      return {
        kind: `${field}:${e.keyword}`,
        message: `${field} must be ${String(params.comparison)} ${String(params.limit)}${got}`,
      };
    case "enum":
      return {
        kind: `${field}:enum`,
        message: `${field} must be one of ${(params.allowedValues as unknown[]).map(show).join(", ")}${got}`,
      };
    case "pattern":
      return {
        kind: `${field}:pattern`,
        message: `${field} must match ${String(params.pattern)}${got}`,
      };
    default:
      return {
        kind: `${field}:${e.keyword}`,
        message: `${field} ${e.message ?? "is invalid"}${got}`,
      };
  }
}

/**
 * The last validateTelemetry() failure as one readable line naming the field, or undefined if
 * the last message was valid. Pass the message to include the offending value.
 */
export function describeErrors(msg?: unknown): string | undefined {
  return lastErrors.length === 0 ? undefined : describeError(lastErrors[0], msg).message;
}

/** Validation and encoding in one step: the payload bytes, or the one-line reason it cannot be sent. */
export type EncodeResult = { ok: true; payload: Buffer } | { ok: false; error: TelemetryError };

/** Validates against the schema, serialises, and enforces the 128 KB payload limit. */
export function encodeTelemetry(msg: unknown): EncodeResult {
  if (!validateTelemetry(msg)) {
    return { ok: false, error: describeError(lastErrors[0], msg) };
  }
  const payload = Buffer.from(JSON.stringify(msg));
  if (payload.length > IOT_MAX_PAYLOAD_BYTES) {
    return {
      ok: false,
      error: {
        kind: "payload:size",
        message: `message is ${payload.length} bytes; AWS IoT accepts at most ${IOT_MAX_PAYLOAD_BYTES} (128 KB)`,
      },
    };
  }
  return { ok: true, payload };
}
