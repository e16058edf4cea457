// The Device Shadow service's document rules, pure (no I/O, no clock of its own): reading a request,
// merging an update into a shadow, the delta, the metadata, versions and the response documents.
// Every rule cites its page of the AWS IoT developer guide; docs/shadows.md holds the conformance
// table. The service (service.ts) adds the topics, the store and the connection's limits.

const GUIDE = "https://docs.aws.amazon.com/iot/latest/developerguide";
/** The pages the rules come from, for comments, errors and the conformance table. */
export const SHADOW_PAGES = {
  mqtt: `${GUIDE}/device-shadow-mqtt.html`,
  document: `${GUIDE}/device-shadow-document.html`,
  dataFlow: `${GUIDE}/device-shadow-data-flow.html`,
  errors: `${GUIDE}/device-shadow-error-messages.html`,
  diagnosing: `${GUIDE}/diagnosing-shadows.html`,
  api: "https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_GetThingShadow.html",
} as const;

/**
 * "The device's shadow supports 8 KB of data only ... Only the data for desired and reported state
 * inside the state document sent to the device's shadow counts toward the limit" (diagnosing-shadows.html);
 * metadata "do not contribute to the document size" (device-shadow-document.html).
 */
export const MAX_STATE_BYTES = 8 * 1024;
/** "JSON contains too many levels of nesting; maximum is 6" (device-shadow-error-messages.html). */
export const MAX_DEPTH = 6;
/** "The client token can be no longer than 64 bytes" (device-shadow-document.html, Client tokens). */
export const MAX_CLIENT_TOKEN_BYTES = 64;
/** A shadow name: "Minimum length of 1. Maximum length of 64. Pattern: [$a-zA-Z0-9:_-]+" (GetThingShadow API). */
export const SHADOW_NAME = /^[$a-zA-Z0-9:_-]{1,64}$/;
/**
 * "If you create a device shadow document that has the same name as one that was deleted within
 * the past 48 hours, the version number of the new device shadow document will follow that of the
 * deleted one" (device-shadow-data-flow.html, DELETE).
 */
export const DELETED_VERSION_KEPT_MS = 48 * 3600_000;

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** The two sections a shadow stores ("Only JSON fields in the desired and reported sections are stored"). */
export interface ShadowSections {
  readonly desired?: JsonObject;
  readonly reported?: JsonObject;
}

/** A shadow as the service keeps it: state, per-field metadata, version; or deleted, version kept. */
export interface StoredShadow {
  readonly state: ShadowSections;
  readonly metadata: ShadowSections;
  readonly version: number;
  /** Epoch ms of the DELETE when this is what a deleted shadow leaves: its version, for 48 hours. */
  readonly deletedAt?: number;
}

/** An error response document's code and message, as device-shadow-error-messages.html lists them. */
export class ShadowError extends Error {
  constructor(
    readonly code: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500,
    message: string,
    /** What the device's own log line adds (the page's message stays the response's). */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** The page's error messages, word for word (device-shadow-error-messages.html). */
export const ERRORS = {
  invalidJson: () => new ShadowError(400, "Invalid JSON"),
  missingState: () => new ShadowError(400, "Missing required node: state"),
  stateNotObject: () => new ShadowError(400, "State node must be an object"),
  desiredNotObject: () => new ShadowError(400, "Desired node must be an object"),
  reportedNotObject: () => new ShadowError(400, "Reported node must be an object"),
  invalidVersion: () => new ShadowError(400, "Invalid version"),
  invalidClientToken: () => new ShadowError(400, "Invalid clientToken"),
  tooDeep: () =>
    new ShadowError(400, `JSON contains too many levels of nesting; maximum is ${MAX_DEPTH}`),
  invalidNode: (detail: string) => new ShadowError(400, "State contains an invalid node", detail),
  unauthorized: () => new ShadowError(401, "Unauthorized"),
  forbidden: () => new ShadowError(403, "Forbidden"),
  thingNotFound: () => new ShadowError(404, "Thing not found"),
  noShadow: (name: string) => new ShadowError(404, `No shadow exists with name: ${name}`),
  versionConflict: () => new ShadowError(409, "Version conflict"),
  tooLarge: (detail: string) =>
    new ShadowError(413, "The payload exceeds the maximum size allowed", detail),
  encoding: () =>
    new ShadowError(415, "Unsupported documented encoding; supported encoding is UTF-8"),
  tooManyRequests: () => new ShadowError(429, "Too Many Requests"),
  internal: (detail: string) => new ShadowError(500, "Internal service failure", detail),
} as const;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---- Reading a request -----------------------------------------------------------------------

/** An /update request, read and checked. `state` null clears both sections. */
export interface UpdateRequest {
  /** Per section: absent (not touched), null (removed), or the fields to merge. */
  readonly desired?: JsonObject | null;
  readonly reported?: JsonObject | null;
  /** `"state": null` (device-shadow-data-flow.html: "Setting the device's shadow state to null"). */
  readonly clearState: boolean;
  readonly clientToken?: string;
  readonly version?: number;
}

/**
 * The payload as JSON, or the page's 415 (not UTF-8) or 400 (not JSON). An empty payload is `{}`:
 * /get and /delete take "an empty message" (device-shadow-mqtt.html).
 */
export function readPayload(payload: Uint8Array, emptyIsObject: boolean): unknown {
  if (payload.length === 0 && emptyIsObject) return {};
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch {
    throw ERRORS.encoding();
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw ERRORS.invalidJson();
  }
}

/**
 * The clientToken of any request ("Present only if a client token was used in the published
 * message"), checked: a string of at most 64 bytes, else "Invalid clientToken".
 */
export function clientTokenOf(request: unknown): string | undefined {
  if (!isObject(request) || !("clientToken" in request)) return undefined;
  const t = request.clientToken;
  if (typeof t !== "string" || Buffer.byteLength(t) > MAX_CLIENT_TOKEN_BYTES) {
    throw ERRORS.invalidClientToken();
  }
  return t;
}

/** A clientToken to echo in an error response, when the request had a readable one. */
export function clientTokenForError(request: unknown): string | undefined {
  try {
    return clientTokenOf(request);
  } catch {
    return undefined;
  }
}

/** Levels of nesting below a section: its own fields are level 1. */
function depthOf(v: Json): number {
  if (Array.isArray(v)) return v.reduce<number>((d, x) => Math.max(d, depthOf(x)), 0);
  if (!isObject(v)) return 0;
  let d = 0;
  for (const x of Object.values(v)) d = Math.max(d, depthOf(x));
  return d + 1;
}

/** "Arrays can't have null values ... will be rejected" (device-shadow-document.html, Arrays). */
function arrayWithNull(v: Json, path: string): string | undefined {
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) {
      if (x === null) return `${path}[${i}] is null: arrays can't have null values`;
      const inner = arrayWithNull(x, `${path}[${i}]`);
      if (inner !== undefined) return inner;
    }
  } else if (isObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      const inner = arrayWithNull(x, `${path}.${k}`);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

/** Reads an /update request document (device-shadow-document.html, Request state document). */
export function parseUpdate(request: unknown): UpdateRequest {
  if (!isObject(request)) throw ERRORS.invalidJson();
  const clientToken = clientTokenOf(request);
  let version: number | undefined;
  if ("version" in request) {
    const v = request.version;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw ERRORS.invalidVersion();
    version = v;
  }
  if (!("state" in request)) throw ERRORS.missingState();
  const state = request.state;
  if (state === null) return { clearState: true, clientToken, version };
  if (!isObject(state)) throw ERRORS.stateNotObject();
  for (const key of Object.keys(state)) {
    if (key !== "desired" && key !== "reported") {
      throw ERRORS.invalidNode(`state.${key}: only desired and reported can be written`);
    }
  }
  const section = (name: "desired" | "reported"): JsonObject | null | undefined => {
    if (!(name in state)) return undefined;
    const v = state[name];
    if (v === null) return null;
    if (!isObject(v))
      throw name === "desired" ? ERRORS.desiredNotObject() : ERRORS.reportedNotObject();
    if (depthOf(v) > MAX_DEPTH) throw ERRORS.tooDeep();
    const bad = arrayWithNull(v, `state.${name}`);
    if (bad !== undefined) throw ERRORS.invalidNode(bad);
    return v;
  };
  return {
    desired: section("desired"),
    reported: section("reported"),
    clearState: false,
    clientToken,
    version,
  };
}

// ---- Merging ---------------------------------------------------------------------------------

/** `{timestamp}` for every leaf of `update` (arrays are values), nulls kept as deletions. */
function metadataFor(update: JsonObject, timestamp: number): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(update)) {
    out[k] = isObject(v) ? metadataFor(v, timestamp) : { timestamp };
  }
  return out;
}

/**
 * Merges `update` into `base`: "Updates affect only the fields specified"; "Fields with a value of
 * null are removed" (device-shadow-data-flow.html); objects merge field by field; arrays and other
 * values replace ("an update to an array replaces the whole array", device-shadow-document.html).
 */
function merge(base: JsonObject | undefined, update: JsonObject): JsonObject {
  const out: JsonObject = { ...(base ?? {}) };
  for (const [k, v] of Object.entries(update)) {
    if (v === null) delete out[k];
    else if (isObject(v) && isObject(out[k])) out[k] = merge(out[k], v);
    else out[k] = v;
  }
  return out;
}

/** The metadata merged the same way as the state: a replaced value's metadata is replaced. */
function mergeMetadata(
  base: JsonObject | undefined,
  update: JsonObject,
  state: JsonObject,
  timestamp: number,
): JsonObject {
  const out: JsonObject = { ...(base ?? {}) };
  for (const [k, v] of Object.entries(update)) {
    if (v === null) delete out[k];
    else if (isObject(v) && isObject(state[k]) && isObject(out[k]) && !("timestamp" in out[k])) {
      out[k] = mergeMetadata(out[k], v, state[k], timestamp);
    } else out[k] = isObject(v) ? metadataFor(v, timestamp) : { timestamp };
  }
  return out;
}

function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((x, i) => jsonEqual(x, b[i]))
    );
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The delta: "Fields in the desired section that are not in the reported section are included ...
 * Fields that are in the reported section and not in the desired section are not included"; "When
 * nested objects differ, the delta contains the path all the way to the root"; "If an array in the
 * desired section doesn't match the array in the reported section, then the entire desired array
 * is copied into the delta" (device-shadow-document.html, Delta state). Undefined when empty.
 */
export function deltaOf(state: ShadowSections): JsonObject | undefined {
  const walk = (desired: JsonObject, reported: JsonObject | undefined): JsonObject | undefined => {
    const out: JsonObject = {};
    for (const [k, d] of Object.entries(desired)) {
      const r = reported?.[k];
      if (reported === undefined || !(k in reported)) out[k] = d;
      else if (isObject(d) && isObject(r)) {
        const inner = walk(d, r);
        if (inner !== undefined) out[k] = inner;
      } else if (!jsonEqual(d, r as Json)) out[k] = d;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  };
  return state.desired === undefined ? undefined : walk(state.desired, state.reported);
}

/** "The delta contains metadata, and its values are equal to the metadata in the desired field." */
function deltaMetadata(delta: JsonObject, desiredMeta: JsonObject | undefined): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(delta)) {
    const m = desiredMeta?.[k];
    out[k] = isObject(v) && isObject(m) && !("timestamp" in m) ? deltaMetadata(v, m) : (m ?? null);
  }
  return out;
}

/** The bytes of desired and reported that count toward the 8 KB (metadata does not). */
export function stateBytes(state: ShadowSections): number {
  return Buffer.byteLength(JSON.stringify(sections(state)));
}

function sections(s: ShadowSections): JsonObject {
  const out: JsonObject = {};
  if (s.desired !== undefined) out.desired = s.desired;
  if (s.reported !== undefined) out.reported = s.reported;
  return out;
}

/** The version a new shadow's first update follows: a deleted one's within 48 hours, else 0. */
export function baseVersion(current: StoredShadow | undefined, now: number): number {
  if (current === undefined) return 0;
  if (current.deletedAt === undefined) return current.version;
  return now - current.deletedAt < DELETED_VERSION_KEPT_MS ? current.version : 0;
}

/** Whether a stored entry is a live shadow (not what a DELETE left). */
export function exists(s: StoredShadow | undefined): s is StoredShadow {
  return s !== undefined && s.deletedAt === undefined;
}

/** What an accepted update publishes, and the shadow it leaves. */
export interface UpdateOutcome {
  readonly next: StoredShadow;
  /** `/update/accepted` (device-shadow-document.html, /accepted response state document). */
  readonly accepted: JsonObject;
  /** `/update/delta`, when desired and reported differ after the update. */
  readonly delta?: JsonObject;
  /** `/update/documents`: previous and current (/documents response state document). */
  readonly documents: JsonObject;
}

/**
 * Applies an update to a shadow (or to none yet). `now` is epoch milliseconds; the documents carry
 * epoch seconds, as the page's examples do (`"timestamp": 1591057529`).
 */
export function applyUpdate(
  current: StoredShadow | undefined,
  req: UpdateRequest,
  now: number,
): UpdateOutcome {
  const ts = Math.floor(now / 1000);
  const live = exists(current) ? current : undefined;
  const from = baseVersion(current, now);
  // "the service rejects the request with an HTTP 409 conflict response code if the current
  // version of the state document does not match the version supplied" (Optimistic locking).
  if (req.version !== undefined && req.version !== from) throw ERRORS.versionConflict();
  let state: ShadowSections = req.clearState ? {} : { ...(live?.state ?? {}) };
  let metadata: ShadowSections = req.clearState ? {} : { ...(live?.metadata ?? {}) };
  for (const name of ["desired", "reported"] as const) {
    const u = req[name];
    if (u === undefined) continue;
    // "If an update causes the desired or reported properties to become null, it is removed."
    if (u === null) {
      state = { ...state, [name]: undefined };
      metadata = { ...metadata, [name]: undefined };
      continue;
    }
    const merged = merge(state[name], u);
    const meta = mergeMetadata(metadata[name], u, merged, ts);
    const empty = Object.keys(merged).length === 0;
    state = { ...state, [name]: empty ? undefined : merged };
    metadata = { ...metadata, [name]: empty ? undefined : meta };
  }
  state = pruned(state);
  metadata = pruned(metadata);
  const size = stateBytes(state);
  if (size > MAX_STATE_BYTES) {
    throw ERRORS.tooLarge(
      `the shadow's desired and reported state would be ${size} bytes; AWS IoT keeps at most ${MAX_STATE_BYTES}`,
    );
  }
  const version = from + 1;
  const next: StoredShadow = { state, metadata, version };
  const token: JsonObject = req.clientToken === undefined ? {} : { clientToken: req.clientToken };
  // "contains only fields that were in the request state document" (Response state document properties).
  const requestState: JsonObject = {};
  const requestMeta: JsonObject = {};
  for (const name of ["desired", "reported"] as const) {
    const u = req[name];
    if (u === undefined) continue;
    requestState[name] = u;
    requestMeta[name] = u === null ? null : metadataFor(u, ts);
  }
  const accepted: JsonObject = {
    state: req.clearState ? null : requestState,
    metadata: requestMeta,
    version,
    timestamp: ts,
    ...token,
  };
  const delta = deltaOf(state);
  const documents: JsonObject = {
    previous:
      live === undefined
        ? null
        : { state: sections(live.state), metadata: sections(live.metadata), version: live.version },
    current: { state: sections(state), metadata: sections(metadata), version },
    timestamp: ts,
    ...token,
  };
  return {
    next,
    accepted,
    delta:
      delta === undefined
        ? undefined
        : {
            state: delta,
            metadata: deltaMetadata(delta, metadata.desired),
            version,
            timestamp: ts,
            ...token,
          },
    documents,
  };
}

function pruned(s: ShadowSections): ShadowSections {
  const out: { desired?: JsonObject; reported?: JsonObject } = {};
  if (s.desired !== undefined) out.desired = s.desired;
  if (s.reported !== undefined) out.reported = s.reported;
  return out;
}

/**
 * `/get/accepted`: "a complete shadow document that contains the complete state of the shadow,
 * including metadata" and "any delta between the desired and reported states"
 * (device-shadow-data-flow.html, Retrieving a shadow document).
 */
export function getDocument(
  shadow: StoredShadow,
  now: number,
  clientToken: string | undefined,
): JsonObject {
  const delta = deltaOf(shadow.state);
  const state = sections(shadow.state);
  const metadata = sections(shadow.metadata);
  if (delta !== undefined) {
    state.delta = delta;
    metadata.delta = deltaMetadata(delta, shadow.metadata.desired);
  }
  return {
    state,
    metadata,
    version: shadow.version,
    timestamp: Math.floor(now / 1000),
    ...(clientToken === undefined ? {} : { clientToken }),
  };
}

/**
 * `/delete/accepted`: "an abbreviated /accepted response state document", `{version, timestamp}`;
 * "deleting a shadow does not reset its version number to 0" (device-shadow-data-flow.html).
 */
export function applyDelete(
  shadow: StoredShadow,
  now: number,
  clientToken: string | undefined,
): { next: StoredShadow; accepted: JsonObject } {
  return {
    next: { state: {}, metadata: {}, version: shadow.version, deletedAt: now },
    accepted: {
      version: shadow.version,
      timestamp: Math.floor(now / 1000),
      ...(clientToken === undefined ? {} : { clientToken }),
    },
  };
}

/** An error response document: `{code, message, timestamp, clientToken?}` (device-shadow-document.html). */
export function errorDocument(
  e: ShadowError,
  now: number,
  clientToken: string | undefined,
): JsonObject {
  return {
    code: e.code,
    message: e.message,
    timestamp: Math.floor(now / 1000),
    ...(clientToken === undefined ? {} : { clientToken }),
  };
}

// ---- Topics ----------------------------------------------------------------------------------

export type ShadowOperation = "get" | "update" | "delete";

/** A shadow topic read: whose shadow, and which of the page's topics. */
export interface ShadowTopic {
  readonly thingName: string;
  /** Undefined for the classic (unnamed) shadow. */
  readonly shadowName?: string;
  readonly operation: ShadowOperation;
  /** Undefined for a request; else the response topic's suffix. */
  readonly response?: "accepted" | "rejected" | "delta" | "documents";
}

const THING = /^[a-zA-Z0-9:_-]{1,128}$/;
const RESPONSES: Record<ShadowOperation, readonly string[]> = {
  get: ["accepted", "rejected"],
  update: ["accepted", "rejected", "delta", "documents"],
  delete: ["accepted", "rejected"],
};

/**
 * Reads `$aws/things/thingName/shadow[/name/shadowName]/<op>[/<response>]` (device-shadow-mqtt.html:
 * "ShadowTopicPrefix" and its topics); undefined for any other topic.
 */
export function parseShadowTopic(topic: string): ShadowTopic | undefined {
  // Every publish is asked this: telemetry answers without splitting its topic.
  if (!topic.startsWith("$aws/things/")) return undefined;
  const p = topic.split("/");
  if (p[0] !== "$aws" || p[1] !== "things" || p[3] !== "shadow" || !THING.test(p[2] ?? "")) {
    return undefined;
  }
  let i = 4;
  let shadowName: string | undefined;
  if (p[4] === "name") {
    shadowName = p[5];
    if (shadowName === undefined || !SHADOW_NAME.test(shadowName)) return undefined;
    i = 6;
  }
  const op = p[i] as ShadowOperation;
  if (!(op in RESPONSES)) return undefined;
  const rest = p.slice(i + 1);
  if (rest.length === 0) return { thingName: p[2], shadowName, operation: op };
  if (rest.length === 1 && RESPONSES[op].includes(rest[0])) {
    return {
      thingName: p[2],
      shadowName,
      operation: op,
      response: rest[0] as ShadowTopic["response"],
    };
  }
  return undefined;
}

/** The ShadowTopicPrefix of a shadow (device-shadow-mqtt.html). */
export function shadowTopicPrefix(thingName: string, shadowName?: string): string {
  return shadowName === undefined
    ? `$aws/things/${thingName}/shadow`
    : `$aws/things/${thingName}/shadow/name/${shadowName}`;
}
