// Runs the Pulumi program of one stack under pulumi.runtime.setMocks, with the stack's own config
// files, and returns every resource it registers: what the tests, `npm run check` (the policy
// pack, offline) and `npm run bench` inspect instead of a real `pulumi preview`.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { planPipeline } from "../core/plan";
import { buildPipeline, readPulumiConfig } from "../program";
import { csrPublicKeyInfo } from "../core/csr";
import { PROJECT, PROJECT_DIR } from "../core/project";
import {
  parseStackConfig,
  readRawStackConfig,
  type RawConfig,
  type StackConfig,
} from "../core/stack-config";
import { throwawayCsrDir } from "./make-csr";
import { toPem } from "../core/pem";

/** The account every mocked call answers with. */
export const MOCK_ACCOUNT_ID = "123456789012";
/** The identifier of the mocked account's IoT endpoint (`<id>-ats.iot.<region>.amazonaws.com`). */
export const MOCK_ENDPOINT_ID = "a1b2c3d4e5f6g7";

export interface RegisteredResourceOptions {
  /** URNs of the resources this one depends on explicitly (dependsOn) or through its inputs. */
  readonly dependencies: readonly string[];
  readonly protect: boolean;
  readonly ignoreChanges: readonly string[];
  readonly additionalSecretOutputs: readonly string[];
  /** URN of the resource whose deletion deletes this one, if any. */
  readonly deletedWith?: string;
}

export interface RegisteredResource {
  /** Type token, such as `aws:iot/thing:Thing` or `iot-pipeline:rule:TelemetryRule`. */
  readonly type: string;
  /** Logical name. */
  readonly name: string;
  readonly urn: string;
  /** Whether a provider manages it (false for component resources). */
  readonly custom: boolean;
  /** The inputs the program gave it. */
  readonly inputs: Record<string, unknown>;
  /** The inputs merged with what the provider would compute (arn, id, certificatePem, ...). */
  readonly props: Record<string, unknown>;
  /** The parent's URN (the stack's root resources have none). */
  readonly parent?: string;
  readonly options: RegisteredResourceOptions;
}

export interface ProgramRun {
  /** Every resource, in registration order. */
  readonly resources: RegisteredResource[];
  /** The stack outputs, resolved (secrets in the clear; see `secretOutputs`). */
  readonly outputs: Record<string, unknown>;
  /** Names of the outputs that are secrets. */
  readonly secretOutputs: string[];
  readonly config: StackConfig;
  /** What the run built from stand-ins that `pulumi up` would not have (throwaway CSRs), one note each. */
  readonly standIns: readonly string[];
}

export interface RunProgramOptions {
  /** Raw config values (without the `iot-pipeline:` namespace, or `aws:region`) over the stack's files. */
  readonly overrides?: RawConfig;
  /** The folder holding Pulumi.yaml and Pulumi.<stack>.yaml. @default the repository root */
  readonly dir?: string;
  /** Passed to buildPipeline, for the analytics' own tests. */
  readonly build?: Parameters<typeof buildPipeline>[1];
  /**
   * Load index.ts, the real entry point, instead of calling buildPipeline. Node caches modules,
   * so this registers resources once per process: for the one test of the entry point itself.
   */
  readonly viaIndex?: boolean;
  /**
   * Build this instead of the pipeline (a single component, for its own tests); its return value
   * is the run's outputs.
   */
  readonly program?: (config: StackConfig) => Record<string, unknown>;
}

// ---- Realistic certificates ------------------------------------------------------------------
//
// Real X.509 certificates, DER-encoded by hand: a general-purpose ASN.1 library costs ~3 ms a
// certificate, which a 1,000-device fleet would feel; this costs a key generation and a signature.

/** One DER TLV. */
function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const len =
    n < 0x80
      ? Buffer.from([n])
      : n < 0x100
        ? Buffer.from([0x81, n])
        : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...c: Buffer[]) => der(0x30, ...c);
/** A Name with one CN (2.5.4.3). */
const commonName = (cn: string) =>
  seq(der(0x31, seq(Buffer.from("0603550403", "hex"), der(0x0c, Buffer.from(cn, "utf8")))));
const utcTime = (d: Date) =>
  der(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z", "ascii"));
/** AlgorithmIdentifier ecdsa-with-SHA256. */
const ECDSA_SHA256 = Buffer.from("300a06082a8648ce3d040302", "hex");

function certificateDer(opts: {
  subject: Buffer;
  issuer: Buffer;
  spki: Buffer;
  notAfter: Date;
  ca: boolean;
  signingKey: KeyObject;
}): Buffer {
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // a positive INTEGER
  serial[0] |= 0x01; // of full length
  // basicConstraints (2.5.29.19), critical: cA TRUE for the issuer, absent (FALSE) for devices.
  const basicConstraints = seq(
    Buffer.from("0603551d13", "hex"),
    Buffer.from("0101ff", "hex"),
    der(0x04, seq(...(opts.ca ? [Buffer.from("0101ff", "hex")] : []))),
  );
  const tbs = seq(
    Buffer.from("a003020102", "hex"), // v3
    der(0x02, serial),
    ECDSA_SHA256,
    opts.issuer,
    seq(utcTime(new Date(Date.now() - 60_000)), utcTime(opts.notAfter)),
    opts.subject,
    opts.spki,
    der(0xa3, seq(basicConstraints)),
  );
  const signature = sign("sha256", tbs, opts.signingKey);
  return seq(tbs, ECDSA_SHA256, der(0x03, Buffer.from([0]), signature));
}

let mockCa: { name: Buffer; key: KeyObject; pem: string } | undefined;

/** A stand-in for AWS's issuing CA, made once per process. */
function issuer() {
  if (mockCa === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const name = commonName("Mock AWS IoT Issuing CA");
    const cert = certificateDer({
      subject: name,
      issuer: name,
      spki: publicKey.export({ type: "spki", format: "der" }),
      notAfter: new Date("2049-12-31T23:59:59Z"),
      ca: true,
      signingKey: privateKey,
    });
    mockCa = { name, key: privateKey, pem: toPem(cert, "CERTIFICATE") };
  }
  return mockCa;
}

/** The PEM of the mock issuing CA, to verify the mocked device certificates against. */
export function mockIssuerPem(): string {
  return issuer().pem;
}

/**
 * What AWS returns for a certificate: a PEM valid until 2049-12-31 (as AWS-issued device
 * certificates are), its id (the SHA-256 of the DER) and, when AWS made the key pair, the private
 * key. AWS generates RSA-2048 keys; the mock uses P-256, which is as acceptable to the key-quality
 * audit and keeps a 1,000-device fleet quick.
 */
function issueCertificate(csrPem: string | undefined) {
  const ca = issuer();
  let spki: Buffer;
  let privateKeyPem: string | undefined;
  if (csrPem !== undefined) {
    spki = csrPublicKeyInfo(csrPem);
  } else {
    const keys = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    spki = keys.publicKey.export({ type: "spki", format: "der" });
    privateKeyPem = keys.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  }
  const cert = certificateDer({
    subject: commonName("AWS IoT Certificate"),
    issuer: ca.name,
    spki,
    notAfter: new Date("2049-12-31T23:59:59Z"),
    ca: false,
    signingKey: ca.key,
  });
  const id = createHash("sha256").update(cert).digest("hex");
  return { id, certificatePem: toPem(cert, "CERTIFICATE"), privateKeyPem };
}

// ---- What the provider would compute -------------------------------------------------------

/** Types whose physical name the provider derives from the logical one when none is given. */
const AUTONAMED = new Set([
  "aws:iam/role:Role",
  "aws:iam/rolePolicy:RolePolicy",
  "aws:iam/policy:Policy",
  "aws:cloudwatch/logGroup:LogGroup",
  "aws:cloudwatch/logStream:LogStream",
  "aws:iot/policy:Policy",
  "aws:iot/thing:Thing",
  "aws:iot/thingType:ThingType",
  "aws:iot/thingGroup:ThingGroup",
  "aws:iot/topicRule:TopicRule",
  "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
  "aws:kinesis/stream:Stream",
  "aws:kinesisanalyticsv2/application:Application",
]);

function autoName(name: string, type: string): string {
  return `${name}-${createHash("sha256").update(`${type}/${name}`).digest("hex").slice(0, 7)}`;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** What the AWS provider would return for a new resource: its id and computed outputs. */
export async function mockResource(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  region: string,
): Promise<{ id: string; state: Record<string, unknown> }> {
  const acct = MOCK_ACCOUNT_ID;
  const physical = str(inputs.name) ?? autoName(name, type);
  const named = AUTONAMED.has(type) ? { name: physical } : {};
  const arn = (service: string, resource: string) =>
    `arn:aws:${service}:${region}:${acct}:${resource}`;
  switch (type) {
    case "aws:iot/certificate:Certificate": {
      const c = issueCertificate(str(inputs.csr));
      return {
        id: c.id,
        state: {
          arn: arn("iot", `cert/${c.id}`),
          certificatePem: c.certificatePem,
          ...(c.privateKeyPem === undefined
            ? {}
            : { privateKey: c.privateKeyPem, publicKey: "(mock public key)" }),
        },
      };
    }
    case "aws:iot/thing:Thing":
      return {
        id: physical,
        state: {
          ...named,
          arn: arn("iot", `thing/${physical}`),
          defaultClientId: physical,
          version: 1,
        },
      };
    case "aws:iot/thingType:ThingType":
      return { id: physical, state: { ...named, arn: arn("iot", `thingtype/${physical}`) } };
    case "aws:iot/thingGroup:ThingGroup":
      return {
        id: physical,
        state: { ...named, arn: arn("iot", `thinggroup/${physical}`), version: 1 },
      };
    case "aws:iot/policy:Policy":
      return {
        id: physical,
        state: { ...named, arn: arn("iot", `policy/${physical}`), defaultVersionId: "1" },
      };
    case "aws:iot/topicRule:TopicRule":
      return { id: physical, state: { ...named, arn: arn("iot", `rule/${physical}`) } };
    case "aws:iam/role:Role":
      return {
        id: physical,
        state: {
          ...named,
          arn: `arn:aws:iam::${acct}:role/${physical}`,
          uniqueId: `AROA${createHash("sha256").update(physical).digest("hex").slice(0, 17).toUpperCase()}`,
        },
      };
    case "aws:iam/rolePolicy:RolePolicy":
      return { id: `${str(inputs.role) ?? "role"}:${physical}`, state: named };
    case "aws:s3/bucket:Bucket": {
      const bucket = str(inputs.bucket) ?? autoName(name, type).toLowerCase();
      return {
        id: bucket,
        state: {
          bucket,
          arn: `arn:aws:s3:::${bucket}`,
          bucketDomainName: `${bucket}.s3.amazonaws.com`,
          bucketRegionalDomainName: `${bucket}.s3.${region}.amazonaws.com`,
          region,
        },
      };
    }
    case "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": {
      const a = arn("firehose", `deliverystream/${physical}`);
      return {
        id: a,
        state: { ...named, arn: a, versionId: "1", destinationId: "destinationId-000000000001" },
      };
    }
    case "aws:kinesis/stream:Stream": {
      const a = arn("kinesis", `stream/${physical}`);
      return { id: a, state: { ...named, arn: a } };
    }
    case "aws:kinesisanalyticsv2/application:Application": {
      const a = arn("kinesisanalytics", `application/${physical}`);
      return { id: physical, state: { ...named, arn: a, status: "READY", versionId: 1 } };
    }
    case "aws:glue/catalogDatabase:CatalogDatabase":
      return {
        id: `${acct}:${physical}`,
        state: { ...named, arn: arn("glue", `database/${physical}`) },
      };
    case "aws:glue/catalogTable:CatalogTable": {
      const db = str(inputs.databaseName) ?? "database";
      return {
        id: `${acct}:${db}:${physical}`,
        state: { ...named, arn: arn("glue", `table/${db}/${physical}`) },
      };
    }
    case "aws:kms/key:Key": {
      const keyId = createHash("sha256").update(name).digest("hex").slice(0, 32);
      return { id: keyId, state: { keyId, arn: arn("kms", `key/${keyId}`) } };
    }
    case "aws:lambda/function:Function": {
      // Lambda's ARNs separate the type and the name with a colon (function:<name>).
      const a = arn("lambda", `function:${physical}`);
      return { id: physical, state: { ...named, arn: a, invokeArn: a } };
    }
    case "aws:dynamodb/table:Table":
      return { id: physical, state: { ...named, arn: arn("dynamodb", `table/${physical}`) } };
    case "aws:sns/topic:Topic":
      return { id: arn("sns", physical), state: { ...named, arn: arn("sns", physical) } };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { id: physical, state: { ...named, arn: arn("logs", `log-group:${physical}`) } };
    case "aws:cloudwatch/logStream:LogStream": {
      const group = str(inputs.logGroupName) ?? "log-group";
      return {
        id: physical,
        state: { ...named, arn: arn("logs", `log-group:${group}:log-stream:${physical}`) },
      };
    }
    default: {
      // S3 sub-resources are identified by their bucket; anything else gets a plausible ARN.
      if (type.startsWith("aws:s3/") && str(inputs.bucket) !== undefined) {
        return { id: str(inputs.bucket) as string, state: {} };
      }
      const [, mod = "x", kind = "resource"] = /^aws:([^/]+)\/([^:]+):/.exec(type) ?? [];
      return {
        id: `${name}-id`,
        state: { ...named, arn: arn(mod, `${kind.toLowerCase()}/${physical}`) },
      };
    }
  }
}

/** What AWS would answer a data source (invoke) of the program with. */
export function mockCall(token: string, inputs: Record<string, unknown>, region: string) {
  switch (token) {
    case "aws:iot/getEndpoint:getEndpoint": {
      const type = str(inputs.endpointType) ?? "iot:Data-ATS";
      const host =
        type === "iot:Data-ATS"
          ? `${MOCK_ENDPOINT_ID}-ats.iot.${region}.amazonaws.com`
          : `${MOCK_ENDPOINT_ID}.${type.replace(/^iot:/, "").toLowerCase()}.iot.${region}.amazonaws.com`;
      return { id: region, endpointAddress: host, endpointType: type, region };
    }
    case "aws:index/getCallerIdentity:getCallerIdentity":
      return {
        id: MOCK_ACCOUNT_ID,
        accountId: MOCK_ACCOUNT_ID,
        arn: `arn:aws:iam::${MOCK_ACCOUNT_ID}:user/mock`,
        userId: "AIDAMOCKUSER",
      };
    case "aws:index/getRegion:getRegion":
      return {
        id: region,
        name: region,
        region,
        endpoint: `ec2.${region}.amazonaws.com`,
        description: region,
      };
    case "aws:index/getPartition:getPartition":
      return {
        id: "aws",
        partition: "aws",
        dnsSuffix: "amazonaws.com",
        reverseDnsPrefix: "com.amazonaws",
      };
    default:
      return inputs;
  }
}

// ---- Running the program -------------------------------------------------------------------

/** The subset of a RegisterResourceRequest this module reads. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getDependenciesList(): string[];
  getProtect(): boolean | undefined;
  getIgnorechangesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getDeletedwith(): string;
}
interface RegisterResponse {
  getUrn(): string;
}
type Callback = (err: unknown, resp: RegisterResponse | undefined) => void;
interface PatchableMonitor {
  registerResource(req: RegisterRequest, callback: Callback): unknown;
}

let lastRun: RegisteredResource[] = [];

/** The resources the latest run registered, also when it failed (for "nothing was registered"). */
export function registeredSoFar(): readonly RegisteredResource[] {
  return lastRun;
}

/** Config values as the Pulumi CLI hands them to a program: text, objects as JSON. */
function asCliText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * Raw stack config as the Pulumi CLI hands it to a program (`PULUMI_CONFIG`): namespaced keys,
 * every value as text, objects as JSON.
 */
export function cliConfig(raw: RawConfig): Record<string, string> {
  return Object.fromEntries(
    Object.entries(raw)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => [k.includes(":") ? k : `${PROJECT}:${k}`, asCliText(v)]),
  );
}

/**
 * Builds one stack's program under mocks and returns its resources and outputs. Safe to call
 * several times in one process: each call installs fresh mocks, config and bookkeeping.
 */
export async function runProgram(stack: string, opts: RunProgramOptions = {}): Promise<ProgramRun> {
  // The SDK records a stack trace for every promise it makes (for its leak report); with tsx's
  // source maps that is most of a large fleet's run time, and nothing here reads them. So traces
  // are off while the program runs, unless MOCK_STACK_TRACES=1 asks for them to debug a failure.
  const sourceMaps = process.sourceMapsEnabled;
  const traceLimit = Error.stackTraceLimit;
  const prepare = Error.prepareStackTrace;
  let restoreSdk = (): void => undefined;
  if (process.env.MOCK_STACK_TRACES !== "1") {
    process.setSourceMapsEnabled(false);
    Error.stackTraceLimit = 0;
    // The SDK also asks for a full stack trace per resource, for the source position it sends
    // the engine (Resource.callsites), which the mocks drop: formatting it, a URL per frame, was
    // a tenth of a large build. Without frames it finds no position and sends none.
    Error.prepareStackTrace = (error: Error) => String(error);
    restoreSdk = leanSdk();
  }
  try {
    return await run(stack, opts);
  } finally {
    process.setSourceMapsEnabled(sourceMaps);
    Error.stackTraceLimit = traceLimit;
    Error.prepareStackTrace = prepare;
    restoreSdk();
  }
}

/** The SDK's promise wrapper (runtime/debuggable.js), not in its typings. */
interface DebuggableModule {
  debuggablePromise<T>(p: Promise<T>, ctx: unknown): Promise<T>;
}
interface SdkStateModule {
  getStore(): { leakCandidates: Set<Promise<unknown>> };
}
/** Resource.callsites, a static of the SDK (not in its typings) that Resource.stackTrace calls. */
interface CallsitesOwner {
  callsites(): unknown[];
}

/** Runs under way with the lean SDK functions in place: the last to end puts the SDK's back. */
let leanRuns = 0;
let putBack = (): void => undefined;

/**
 * Two functions of the SDK that cost a large mocked build much and give it nothing, replaced for
 * the run (issue 28; a profile of the 10,000-thing build in `npm run bench -- --only program`):
 *
 * - `debuggablePromise` wraps most promises the SDK makes (four per output property of every
 *   resource) and gives each three properties for its leak report: an id, the context and a stack
 *   trace, empty here since traces are off. Adding them was a tenth of the build's CPU, and only
 *   PULUMI_DEBUG_PROMISE_LEAKS reads them (which keeps the SDK's own). The replacement keeps the
 *   rest: the same leak candidates, the same `.then().catch()` chain and `err.promise` on a
 *   rejection; its first call is the SDK's own, which schedules the SDK's leak report at exit.
 * - `Resource.callsites` raises the stack limit to Infinity and captures every frame, which the
 *   mocked run's stack formatting (above) turns into no frame at all, so it always returned []:
 *   2.4 % of the profile for that. The replacement returns [] at once.
 *
 * Reference-counted, so that runs that overlap put the SDK's own back only when the last ends.
 */
function leanSdk(): () => void {
  if (leanRuns++ === 0) {
    const sdk = createRequire(createRequire(__filename).resolve("@pulumi/pulumi"));
    const debuggable = sdk("./runtime/debuggable") as DebuggableModule;
    const state = sdk("./runtime/state") as SdkStateModule;
    const resource = pulumi.Resource as unknown as CallsitesOwner;
    const ownDebuggable = debuggable.debuggablePromise;
    const ownCallsites = resource.callsites;
    let first = true;
    const lean = <T>(p: Promise<T>, ctx: unknown): Promise<T> => {
      if (first) {
        first = false;
        return ownDebuggable(p, ctx);
      }
      const store = state.getStore();
      store.leakCandidates.add(p);
      return p
        .then((val) => {
          store.leakCandidates.delete(p);
          return val;
        })
        .catch((err: unknown) => {
          store.leakCandidates.delete(p);
          (err as { promise?: unknown }).promise = p;
          throw err;
        });
    };
    if (!process.env.PULUMI_DEBUG_PROMISE_LEAKS) debuggable.debuggablePromise = lean;
    resource.callsites = () => [];
    putBack = () => {
      debuggable.debuggablePromise = ownDebuggable;
      resource.callsites = ownCallsites;
    };
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--leanRuns === 0) putBack();
  };
}

/** Throwaway CSR folders by fleet, made once per process. */
const throwawayCsrs = new Map<string, string>();

let fakeJar: { url: string; sha512: string } | undefined;

/** A small stand-in for the Flink connector jar, made once per process. */
function fakeConnectorJar(): { url: string; sha512: string } {
  if (fakeJar === undefined) {
    const content = "a stand-in for the Flink connector jar: a mocked run downloads nothing\n";
    const file = path.join(os.tmpdir(), `iot-pipeline-mock-connector-${process.pid}.jar`);
    fs.writeFileSync(file, content);
    fakeJar = {
      url: pathToFileURL(file).href,
      sha512: createHash("sha512").update(content).digest("hex"),
    };
  }
  return fakeJar;
}

/**
 * What a mocked run puts in place of what only a real deployment has: the connector jar (a small
 * local stand-in, unless the config names a URL) and, for a csr-mode stack whose CSRs are not
 * made yet, CSRs of throwaway keys in a temporary folder. `pulumi up` has neither: it refuses such
 * a stack (core/deploy-readiness.ts). Returns the config values and a note per stand-in.
 */
async function standIns(
  stack: string,
  raw: RawConfig,
  dir: string,
): Promise<{ values: RawConfig; notes: string[] }> {
  const values: RawConfig = {};
  const notes: string[] = [];
  if (raw.flinkConnectorUrl === undefined || raw.flinkConnectorUrl === "") {
    const jar = fakeConnectorJar();
    values.flinkConnectorUrl = jar.url;
    if (raw.flinkConnectorSha512 === undefined || raw.flinkConnectorSha512 === "") {
      values.flinkConnectorSha512 = jar.sha512;
    }
  }
  if (raw.certificateMode === "csr") {
    const config = parseStackConfig(raw, stack, dir);
    if (config.certificates.missingCsrs.length > 0) {
      const things = config.things.map((t) => t.name);
      const key = things.join("\n");
      let csrDir = throwawayCsrs.get(key);
      if (csrDir === undefined) {
        csrDir = await throwawayCsrDir(things);
        throwawayCsrs.set(key, csrDir);
      }
      values.csrDir = csrDir;
      notes.push(
        `stack ${stack} has no CSRs in ${config.certificates.csrDir}: checked with CSRs of throwaway keys (npm run csr -- --stack ${stack} makes the real ones)`,
      );
    }
  }
  return { values, notes };
}

async function run(stack: string, opts: RunProgramOptions): Promise<ProgramRun> {
  const dir = opts.dir ?? PROJECT_DIR;
  lastRun = [];
  const given: RawConfig = { ...readRawStackConfig(stack, dir), ...(opts.overrides ?? {}) };
  const standIn = await standIns(stack, given, dir);
  const raw: RawConfig = { ...given, ...standIn.values };
  const region = str(raw["aws:region"]) ?? "us-east-1";

  const resources: RegisteredResource[] = [];
  lastRun = resources;
  // newResource sees inputs and results but not the parent; registerResource sees the parent but
  // not the plain values. Join them by type and name, which are unique within this program.
  const seen = new Map<
    string,
    { inputs: Record<string, unknown>; props: Record<string, unknown> }
  >();

  await pulumi.runtime.setMocks(
    {
      newResource: async (args) => {
        const inputs = (args.inputs ?? {}) as Record<string, unknown>;
        const result = args.custom
          ? await mockResource(args.type, args.name, inputs, region)
          : { id: "", state: {} };
        const props = { ...inputs, ...result.state };
        seen.set(`${args.type}\u0000${args.name}`, { inputs, props });
        return { id: result.id === "" ? undefined : result.id, state: props };
      },
      call: (args) => mockCall(args.token, (args.inputs ?? {}) as Record<string, unknown>, region),
    },
    PROJECT,
    stack,
    false,
  );

  const monitor = pulumi.runtime.getMonitor() as unknown as PatchableMonitor;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) =>
    register(req, (err, resp) => {
      if (!err && resp !== undefined) {
        const values = seen.get(`${req.getType()}\u0000${req.getName()}`) ?? {
          inputs: {},
          props: {},
        };
        resources.push({
          type: req.getType(),
          name: req.getName(),
          urn: resp.getUrn(),
          custom: req.getCustom(),
          inputs: values.inputs,
          props: values.props,
          parent: req.getParent() === "" ? undefined : req.getParent(),
          options: {
            dependencies: req.getDependenciesList(),
            protect: req.getProtect() ?? false,
            ignoreChanges: req.getIgnorechangesList(),
            additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
            deletedWith: req.getDeletedwith() === "" ? undefined : req.getDeletedwith(),
          },
        });
      }
      callback(err, resp);
    });

  pulumi.runtime.setAllConfig(cliConfig(raw));

  // The same reading and validation as index.ts: a bad value throws before any resource exists.
  const config = readPulumiConfig(stack, dir);
  const built: Record<string, unknown> = opts.viaIndex
    ? { ...(await import("../index")) }
    : opts.program !== undefined
      ? opts.program(config)
      : { ...buildPipeline(planPipeline(config), opts.build) };

  const entries = Object.entries(built).filter(([, v]) => pulumi.Output.isInstance(v)) as [
    string,
    pulumi.Output<unknown>,
  ][];
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  await Promise.all(
    entries.map(async ([key, output]) => {
      // Both at once: Promise.all handles a rejection of either, so a failing apply surfaces once.
      const [value, secret] = await Promise.all([resolve(output), pulumi.isSecret(output)]);
      outputs[key] = value;
      if (secret) secretOutputs.push(key);
    }),
  );
  // Registrations whose outputs nothing exported still finish before the run counts as done.
  await waitForRegistrations();
  secretOutputs.sort();
  return { resources, outputs, secretOutputs, config, standIns: standIn.notes };
}

/**
 * An output's value. The SDK's own `promise()` (untyped, but on every Output since 1.x) rejects
 * when an apply throws, so a broken program fails the run instead of leaving it waiting.
 */
function resolve<T>(output: pulumi.Output<T>): Promise<T> {
  const internal = output as unknown as { promise?: () => Promise<T> };
  if (typeof internal.promise === "function") return internal.promise();
  return new Promise((done) => {
    output.apply((v) => {
      done(v);
      return v;
    });
  });
}

/** The SDK's own wait for outstanding resource RPCs (not in its typings). */
async function waitForRegistrations(): Promise<void> {
  const runtime = pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> };
  if (runtime.waitForRPCs === undefined) {
    throw new Error(
      "@pulumi/pulumi no longer exports runtime.waitForRPCs; update tools/mock-program.ts",
    );
  }
  await runtime.waitForRPCs();
}
