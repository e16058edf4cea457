// Fleet provisioning by claim at the embedded broker: answers the device provisioning MQTT API
// (CreateCertificateFromCsr, CreateKeysAndCertificate, RegisterThing) with the documented
// payloads, the local CA issuing and the local registry registering, under the claim policy that
// the program deploys, evaluated by the same evaluator, and the pre-provisioning hook's rule from
// the same config. docs/provisioning.md holds the conformance table, each row with its AWS page.
import "reflect-metadata";
import { createHash, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import * as path from "node:path";
import * as x509 from "@peculiar/x509";
import type { Client } from "aedes";
import { CborError, decodeCbor, encodeCbor, type CborValue } from "../../core/cbor";
import { CsrFormatError, csrKeyProblem, csrPublicKeyInfo } from "../../core/csr";
import { createEvaluator, describeEvaluation } from "../../core/iot-policy/policy-eval";
import type { SummaryRow } from "../../core/display";
import { IOT_THING_NAME } from "../../core/iot-limits";
import { topicMatches } from "../../core/topics";
import { iotArn } from "../../core/iot-policy/policy";
import { claimPolicy } from "../../core/provisioning/claim-policy";
import {
  evaluateTemplate,
  provisioningTemplateBody,
  TemplateError,
  type TemplateBody,
} from "../../core/provisioning/template";
import {
  hookRequired,
  hookSerial,
  hookThingName,
  preProvisioningDecision,
} from "../../core/provisioning/hook";
import {
  parseProvisioningTopic,
  type ProvisioningErrorPayload,
  type ProvisioningTopic,
} from "../../core/provisioning/topics";
import type { StackConfig } from "../../core/stack-config";
import { localArnContext, type IotAction, type LocalAuthorizer } from "../broker/authorizer";
import type {
  BrokerHooks,
  ClientIdentity,
  LocalBroker,
  PresentedCertificate,
} from "../broker/broker";
import {
  issueCertificate,
  issueCertificateForKey,
  openCertificateAuthority,
  type CertificateAuthority,
} from "../identity/ca";
import {
  DEFAULT_PROVISIONING_LIMITS,
  RequestThrottle,
  type ProvisioningLimits,
} from "./provisioning-limits";
import { LocalRegistry } from "../registry/registry";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The CN of the local claim certificate (the PKI issues it beside the console's). */
export const CLAIM_IDENTITY = "provisioning-claim";
/** The subject of certificates the API issues, as AWS's are (`CN=AWS IoT Certificate`). */
export const PROVISIONED_CN = "AWS IoT Certificate";

/**
 * The ownership token's lifetime: "the certificateOwnershipToken ... expires after one hour"
 * (https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html).
 */
export const OWNERSHIP_TOKEN_TTL_MS = 3600_000;
/** A request's JSON (the broker already caps payloads at AWS's 128 KB); a CSR's PEM. */
const MAX_CSR_CHARS = 16 * 1024;
const MAX_PARAMETERS = 50;

interface PendingCertificate {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly token: string;
  readonly expiresAt: number;
  /** The certificate id of the claim that asked for it (the hook's claimCertificateId). */
  readonly claimCertificateId: string;
  /** The connection that asked for it. */
  readonly clientId: string;
}

/** A request the API refuses: the payload the device gets on `.../rejected`. */
class Rejection extends Error {
  constructor(
    readonly statusCode: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ProvisioningStats {
  certificatesFromCsr: number;
  keysAndCertificates: number;
  thingsRegistered: number;
  refusedByHook: number;
  /** Rejections by errorCode (hook refusals included under their code). */
  rejected: Map<string, number>;
  /** Responses the requester did not get: no subscription to the response topic, or Receive denied. */
  responsesNotDelivered: number;
  claimDenials: number;
  /** Requests refused by a connection's or the claim's rate (also under rejected, `Throttling`). */
  throttled: number;
  /** Pending certificates dropped for a newer one (a connection's, or the total, bound). */
  pendingReplaced: number;
}

export interface LocalProvisioningOptions {
  readonly config: StackConfig;
  /** The PKI folder (the CA that issues device certificates). */
  readonly pkiDir: string;
  /** Where the registry journal lives (`<stateDir>/registry/<stack>.jsonl`). */
  readonly stateDir: string;
  readonly authorizer: LocalAuthorizer;
  readonly log?: (line: string) => void;
  /** The clock, for the token's expiry (tests). */
  readonly now?: () => number;
  /** Rates and pending bounds (provisioning-limits.ts); tests make them small. */
  readonly limits?: ProvisioningLimits;
  /** Sees every answer as it is sent (or would be, without a subscription): tests, tracing. */
  readonly onResponse?: (clientId: string, topic: string, body: unknown) => void;
}

/** The signature hashes AWS IoT lists for certificates (x509-client-certs.html): SHA-2 only. */
const SIGNATURE_HASHES = new Set(["SHA-256", "SHA-384", "SHA-512"]);

/**
 * A CSR's public key once the request is read, its key is one AWS IoT takes and its signature
 * verifies with that key; anything else, whatever throws on the way (a curve WebCrypto does not
 * know throws inside verify), is an `InvalidCsr` rejection, so that every request gets an answer.
 */
async function readCsr(pem: string): Promise<x509.PublicKey> {
  const invalid = (why: string) => new Rejection(400, "InvalidCsr", why);
  let spki: Buffer;
  try {
    spki = csrPublicKeyInfo(pem);
  } catch (e) {
    throw invalid(
      e instanceof CsrFormatError
        ? `certificateSigningRequest is ${e.message}`
        : "certificateSigningRequest is not a PEM PKCS#10 request",
    );
  }
  // Checked before the signature: verifying needs the curve, which is the unsupported part.
  const problem = csrKeyProblem(spki);
  if (problem !== undefined) throw invalid(`the CSR is not supported: ${problem}`);
  try {
    const csr = new x509.Pkcs10CertificateRequest(pem);
    const hash = (csr.signatureAlgorithm as { hash?: { name?: string } }).hash?.name ?? "none";
    if (!SIGNATURE_HASHES.has(hash)) {
      throw invalid(`the CSR is signed with ${hash}; AWS IoT takes SHA-256, SHA-384 or SHA-512`);
    }
    if (!(await csr.verify()))
      throw invalid("the CSR's signature does not verify with its own key");
    return csr.publicKey;
  } catch (e) {
    if (e instanceof Rejection) throw e;
    throw invalid(`the CSR could not be verified (${(e as Error).message})`);
  }
}

/** The error code of a throttled request. */
const THROTTLING = "Throttling";

function counted(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export class LocalProvisioning {
  readonly stats: ProvisioningStats = {
    certificatesFromCsr: 0,
    keysAndCertificates: 0,
    thingsRegistered: 0,
    refusedByHook: 0,
    rejected: new Map(),
    responsesNotDelivered: 0,
    claimDenials: 0,
    throttled: 0,
    pendingReplaced: 0,
  };
  /** Pending certificates by token, oldest first. */
  private readonly pending = new Map<string, PendingCertificate>();
  private readonly pendingById = new Map<string, PendingCertificate>();
  /** Each connection's pending certificates by token, oldest first. */
  private readonly pendingByClient = new Map<string, Set<string>>();
  private readonly throttle: RequestThrottle;
  private readonly limits: ProvisioningLimits;
  private readonly templates = new Map<string, TemplateBody>();
  private readonly evaluateClaim;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private broker?: LocalBroker;

  private constructor(
    private readonly opts: LocalProvisioningOptions,
    private readonly ca: CertificateAuthority,
    readonly registry: LocalRegistry,
  ) {
    const config = opts.config;
    const p = config.provisioning;
    if (p === undefined) throw new Error(`stack ${config.stack} is not in fleet-provisioning mode`);
    this.log = opts.log ?? (() => undefined);
    this.now = opts.now ?? (() => Date.now());
    this.limits = opts.limits ?? DEFAULT_PROVISIONING_LIMITS;
    this.throttle = new RequestThrottle(this.limits);
    // The same template body and claim policy the program deploys (core/provisioning/template.ts, claim-policy.ts).
    this.templates.set(
      p.templateName,
      provisioningTemplateBody({
        thingPrefix: p.thingPrefix,
        thingTypeName: config.thingType.name,
        group: p.group,
        attributes: config.fleet[0].attributes,
        policyName: config.policy.name,
        telemetryTopic: config.telemetryTopic,
      }),
    );
    this.evaluateClaim = createEvaluator([
      claimPolicy(localArnContext(config), p.templateName, p.createKeys),
    ]);
    for (const thing of registry.allThings()) {
      opts.authorizer.addThing({ ...thing, attributes: { ...thing.attributes } });
    }
  }

  /** Opens the CA and the registry (replaying what earlier runs provisioned). */
  static async open(opts: LocalProvisioningOptions): Promise<LocalProvisioning> {
    const ca = await openCertificateAuthority(opts.pkiDir);
    const registry = LocalRegistry.open(
      path.join(opts.stateDir, "registry"),
      opts.config.stack,
      opts.log,
    );
    return new LocalProvisioning(opts, ca, registry);
  }

  /** The broker whose clients get the responses; set once it has started. */
  attach(broker: LocalBroker): void {
    this.broker = broker;
  }

  private get p() {
    return this.opts.config.provisioning as NonNullable<StackConfig["provisioning"]>;
  }

  // ---- Who is connecting -----------------------------------------------------------------

  private bind(c: PresentedCertificate): ClientIdentity | string | undefined {
    const base = {
      clientId: c.clientId,
      certificate: c.certificate,
      certificateId: c.certificateId,
      remoteAddress: c.remoteAddress,
    };
    if (c.commonName === CLAIM_IDENTITY)
      return { ...base, thingName: CLAIM_IDENTITY, kind: "claim" };
    const id = c.certificateId;
    if (id === undefined) return undefined;
    if (this.pendingById.has(id)) {
      return `certificate ${id} is PENDING_ACTIVATION: it becomes ACTIVE only when RegisterThing succeeds with its ownership token`;
    }
    const registered = this.registry.certificate(id);
    if (registered === undefined) {
      return c.commonName === PROVISIONED_CN
        ? `certificate ${id} is not registered: RegisterThing never activated it (refused, or its ownership token expired); provision the device again`
        : undefined;
    }
    if (registered.status !== "ACTIVE") return `certificate ${id} is ${registered.status}`;
    if (c.clientId !== registered.thingName) {
      return `client id ${JSON.stringify(c.clientId)} is not the thing ${JSON.stringify(registered.thingName)} its certificate is attached to`;
    }
    return { ...base, thingName: registered.thingName, kind: "thing" };
  }

  // ---- The claim policy --------------------------------------------------------------------

  private decideClaim(id: ClientIdentity, action: IotAction, resource: string): string | undefined {
    const arn = iotArn(localArnContext(this.opts.config), resource);
    const result = this.evaluateClaim({
      action,
      resource: arn,
      context: { clientId: id.clientId, isAttached: false, attributes: {} },
    });
    if (result.decision === "allow") return undefined;
    this.stats.claimDenials++;
    return `${action} on ${arn} for claim client ${id.clientId} (claim policy ${this.p.claimPolicyName}: ${describeEvaluation(result)})`;
  }

  /**
   * The broker's hooks: `base` (the stack's device policy) for things and the console, the claim
   * policy for claim connections, and the API's own rules: requests are consumed by the service,
   * never routed to subscribers; only the service publishes on the response topics.
   */
  hooks(base: BrokerHooks): BrokerHooks {
    return {
      ...base,
      bindIdentity: (c) => this.bind(c),
      authorizeConnect: (id) =>
        id.kind === "claim"
          ? this.decideClaim(id, "iot:Connect", `client/${id.clientId}`)
          : base.authorizeConnect?.(id),
      authorizePublish: (id, topic) => {
        const api = parseProvisioningTopic(topic);
        if (api !== undefined && api.kind !== "request") {
          return `${topic} is a response topic of the provisioning API: only AWS IoT publishes there`;
        }
        return id.kind === "claim"
          ? this.decideClaim(id, "iot:Publish", `topic/${topic}`)
          : base.authorizePublish?.(id, topic);
      },
      authorizeSubscribe: (id, filter) =>
        id.kind === "claim"
          ? this.decideClaim(id, "iot:Subscribe", `topicfilter/${filter}`)
          : base.authorizeSubscribe?.(id, filter),
      authorizeReceive: (id, topic) => {
        if (parseProvisioningTopic(topic)?.kind === "request") return false;
        if (id.kind !== "claim") return base.authorizeReceive?.(id, topic) ?? true;
        const reason = this.decideClaim(id, "iot:Receive", `topic/${topic}`);
        if (reason !== undefined) this.log(`policy: denied ${reason}; message not delivered`);
        return reason === undefined;
      },
    };
  }

  /** Whether a publish is an API request this module answers (instead of the rule engine). */
  handles(topic: string): boolean {
    return parseProvisioningTopic(topic)?.kind === "request";
  }

  // ---- The API ---------------------------------------------------------------------------

  /** Answers one request; resolves once the response is on its way (before the PUBACK). */
  async onPublish(id: ClientIdentity, topic: string, payload: Buffer): Promise<void> {
    const t = parseProvisioningTopic(topic);
    if (t === undefined || t.kind !== "request") return;
    let response: unknown;
    let accepted = true;
    try {
      this.admit(id);
      response = await this.handle(id, t, payload);
    } catch (e) {
      if (!(e instanceof Rejection)) throw e; // a local fault: no PUBACK, the device retries
      accepted = false;
      counted(this.stats.rejected, e.errorCode);
      const error: ProvisioningErrorPayload = {
        statusCode: e.statusCode,
        errorCode: e.errorCode,
        errorMessage: e.message,
      };
      response = error;
      // A flood is one line when it starts (and a count), not one line per request.
      if (e.errorCode !== THROTTLING || this.throttle.firstRefusal(id.clientId)) {
        this.log(
          `provisioning: rejected ${t.api} of ${id.clientId}: ${e.statusCode} ${e.errorCode}: ${e.message}${e.errorCode === THROTTLING ? " (further throttled requests of this connection are counted, not logged)" : ""}`,
        );
      }
    }
    this.respond(id, `${topic}/${accepted ? "accepted" : "rejected"}`, response, t.format);
  }

  /**
   * Throttles a request before anything is parsed or signed: the connection's rate first (a flood
   * spends its own tokens), then the claim's (shared by every device that holds it).
   */
  private admit(id: ClientIdentity): void {
    const claimId = id.certificateId ?? id.clientId;
    const refused = this.throttle.admit(id.clientId, claimId, this.now());
    if (refused === undefined) return;
    this.stats.throttled++;
    const rate = refused === "connection" ? this.limits.perConnection : this.limits.perClaim;
    throw new Rejection(
      429,
      THROTTLING,
      `${refused === "connection" ? `connection ${id.clientId}` : "the claim certificate"} exceeds ${rate.burst} requests at once or ${rate.perSecond} per second; retry later with backoff`,
    );
  }

  private async handle(
    id: ClientIdentity,
    t: ProvisioningTopic,
    payload: Buffer,
  ): Promise<unknown> {
    // The request's payload format is the topic's, JSON or CBOR; the answer comes in the same.
    const request = (emptyIsObject = false) => this.parse(payload, t.format, emptyIsObject);
    switch (t.api) {
      case "CreateCertificateFromCsr":
        return this.createFromCsr(id, request());
      case "CreateKeysAndCertificate":
        // "with an empty message payload"
        if (payload.length > 0) request(true);
        return this.createKeys(id);
      case "RegisterThing":
        return this.registerThing(id, t.templateName ?? "", request());
    }
  }

  private parse(
    payload: Buffer,
    format: "json" | "cbor",
    emptyIsObject: boolean,
  ): Record<string, unknown> {
    if (payload.length === 0 && emptyIsObject) return {};
    let v: unknown;
    try {
      v = format === "cbor" ? decodeCbor(payload) : JSON.parse(payload.toString("utf8"));
    } catch (e) {
      const why = e instanceof CborError ? `: ${e.message}` : "";
      throw new Rejection(
        400,
        "InvalidPayload",
        `the payload is not ${format.toUpperCase()}${why}`,
      );
    }
    if (!isObject(v)) {
      throw new Rejection(
        400,
        "InvalidPayload",
        `the payload is not a ${format.toUpperCase()} map`,
      );
    }
    return v;
  }

  private newPending(id: ClientIdentity, certificatePem: string): PendingCertificate {
    this.expire();
    // Bounded memory without refusing anyone: a connection's newest certificate replaces its
    // oldest (a device that lost an answer and asked again), and past the total the oldest goes.
    const mine = this.pendingByClient.get(id.clientId);
    if (mine !== undefined && mine.size >= this.limits.pendingPerConnection) {
      this.dropPending(this.pending.get(mine.values().next().value as string));
      this.stats.pendingReplaced++;
    }
    if (this.pending.size >= this.limits.pendingTotal) {
      this.dropPending(this.pending.values().next().value);
      this.stats.pendingReplaced++;
    }
    // The broker's certificate id: SHA-256 of the DER (local/broker/broker.ts), 64 hex like AWS's.
    const certificateId = createHash("sha256")
      .update(new X509Certificate(certificatePem).raw)
      .digest("hex");
    const entry: PendingCertificate = {
      certificateId,
      certificatePem,
      token: randomBytes(48).toString("base64"),
      expiresAt: this.now() + OWNERSHIP_TOKEN_TTL_MS,
      claimCertificateId: id.certificateId ?? "",
      clientId: id.clientId,
    };
    this.addPending(entry);
    return entry;
  }

  private addPending(entry: PendingCertificate): void {
    this.pending.set(entry.token, entry);
    this.pendingById.set(entry.certificateId, entry);
    let mine = this.pendingByClient.get(entry.clientId);
    if (mine === undefined) this.pendingByClient.set(entry.clientId, (mine = new Set()));
    mine.add(entry.token);
  }

  /** Forgets a pending certificate (registered, expired or replaced): its token no longer works. */
  private dropPending(entry: PendingCertificate | undefined, keepId = false): void {
    if (entry === undefined) return;
    this.pending.delete(entry.token);
    if (!keepId) this.pendingById.delete(entry.certificateId);
    const mine = this.pendingByClient.get(entry.clientId);
    mine?.delete(entry.token);
    if (mine?.size === 0) this.pendingByClient.delete(entry.clientId);
  }

  /** Certificates waiting for RegisterThing (tests, the summary). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Drops what expired: "the certificate is deleted" when its token expires unregistered. */
  private expire(): void {
    const now = this.now();
    // (Deleting the entry a Map iteration stands on is safe in JavaScript.)
    for (const e of this.pending.values()) {
      if (e.expiresAt <= now) this.dropPending(e);
    }
  }

  private async createFromCsr(id: ClientIdentity, req: Record<string, unknown>) {
    const csrPem = req.certificateSigningRequest;
    if (typeof csrPem !== "string" || csrPem === "" || csrPem.length > MAX_CSR_CHARS) {
      throw new Rejection(
        400,
        "InvalidPayload",
        "certificateSigningRequest must be a PEM certificate signing request",
      );
    }
    const publicKey = await readCsr(csrPem);
    const certificatePem = await issueCertificateForKey(this.ca, PROVISIONED_CN, publicKey);
    const entry = this.newPending(id, certificatePem);
    this.stats.certificatesFromCsr++;
    return {
      certificateOwnershipToken: entry.token,
      certificateId: entry.certificateId,
      certificatePem,
    };
  }

  private async createKeys(id: ClientIdentity) {
    const issued = await issueCertificate(this.ca, PROVISIONED_CN);
    const entry = this.newPending(id, issued.cert);
    this.stats.keysAndCertificates++;
    return {
      certificateId: entry.certificateId,
      certificatePem: issued.cert,
      privateKey: issued.key,
      certificateOwnershipToken: entry.token,
    };
  }

  private async registerThing(
    id: ClientIdentity,
    templateName: string,
    req: Record<string, unknown>,
  ) {
    const body = this.templates.get(templateName);
    if (body === undefined) {
      throw new Rejection(
        404,
        "ResourceNotFound",
        `no provisioning template named ${templateName}`,
      );
    }
    const token = req.certificateOwnershipToken;
    if (typeof token !== "string" || token === "") {
      throw new Rejection(
        400,
        "InvalidCertificateOwnershipToken",
        "Certificate ownership token cannot be empty.",
      );
    }
    this.expire();
    const entry = this.pending.get(token);
    if (entry === undefined) {
      throw new Rejection(
        400,
        "InvalidCertificateOwnershipToken",
        "the certificate ownership token is unknown, expired, or its certificate is already registered",
      );
    }
    const parameters: Record<string, string> = {};
    if (req.parameters !== undefined) {
      if (!isObject(req.parameters) || Object.keys(req.parameters).length > MAX_PARAMETERS) {
        throw new Rejection(
          400,
          "InvalidPayload",
          `parameters must be a map of at most ${MAX_PARAMETERS} strings`,
        );
      }
      for (const [k, v] of Object.entries(req.parameters)) {
        if (typeof v !== "string") {
          throw new Rejection(400, "InvalidPayload", `parameters.${k} must be a string`);
        }
        parameters[k] = v;
      }
    }
    // The pre-provisioning hook runs before anything is created, with the page's input object,
    // and the registry answers what DescribeThing answers the cloud hook.
    if (hookRequired(this.p)) {
      const serial = hookSerial({ parameters });
      const decision = preProvisioningDecision(
        {
          claimCertificateId: entry.claimCertificateId,
          certificateId: entry.certificateId,
          certificatePem: entry.certificatePem,
          templateArn: iotArn(
            localArnContext(this.opts.config),
            `provisioningtemplate/${templateName}`,
          ),
          clientId: id.clientId,
          parameters,
        },
        this.p,
        serial !== undefined && this.registry.thing(hookThingName(this.p, serial)) !== undefined,
      );
      if (!decision.allowProvisioning) {
        this.stats.refusedByHook++;
        throw new Rejection(
          403,
          "ACCESS_DENIED",
          `the pre-provisioning hook refused: ${decision.reason}`,
        );
      }
    }
    let evaluated;
    try {
      evaluated = evaluateTemplate(body, parameters, entry.certificateId);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      throw new Rejection(400, e.errorCode, e.message);
    }
    const thing = evaluated.thing;
    if (thing === undefined || !IOT_THING_NAME.test(thing.name)) {
      throw new Rejection(
        400,
        "InvalidParameters",
        `the template gives the thing name ${JSON.stringify(thing?.name)}, which is not 1-128 letters, digits, ':', '_' or '-'`,
      );
    }
    const config = this.opts.config;
    if (thing.typeName !== undefined && thing.typeName !== config.thingType.name) {
      throw new Rejection(400, "ResourceNotFound", `thing type ${thing.typeName} does not exist`);
    }
    for (const g of thing.groups) {
      if (!config.fleet.some((f) => f.group === g)) {
        throw new Rejection(400, "ResourceNotFound", `thing group ${g} does not exist`);
      }
    }
    for (const name of evaluated.policyNames) {
      if (name !== config.policy.name) {
        throw new Rejection(400, "ResourceNotFound", `IoT policy ${name} does not exist`);
      }
    }
    // OverrideSettings for a thing that exists: MERGE attributes and groups, REPLACE the type.
    const existing = this.registry.thing(thing.name);
    const merged = {
      name: thing.name,
      typeName: thing.typeName ?? existing?.typeName,
      groups: [
        ...new Set([
          ...(existing?.groups ?? []),
          ...(existing === undefined || thing.overrides.ThingGroups !== "DO_NOTHING"
            ? thing.groups
            : []),
        ]),
      ],
      attributes: {
        ...(thing.overrides.AttributePayload === "MERGE" ? existing?.attributes : {}),
        ...thing.attributes,
      },
    };
    const status = evaluated.certificate?.status ?? "ACTIVE";
    // The token is taken while the registration is written, so that a second RegisterThing with
    // it cannot register the certificate twice; a failed write gives it back, still pending.
    // (pendingById keeps it meanwhile: the certificate is still PENDING_ACTIVATION.)
    this.dropPending(entry, true);
    try {
      // Durable before it is acknowledged.
      await this.registry.register(merged, {
        certificateId: entry.certificateId,
        status,
        thingName: thing.name,
        policyNames: evaluated.policyNames,
      });
    } catch (e) {
      this.addPending(entry);
      throw e;
    }
    this.pendingById.delete(entry.certificateId);
    this.opts.authorizer.addThing({ ...merged, attributes: { ...merged.attributes } });
    this.stats.thingsRegistered++;
    this.log(
      `provisioning: registered thing ${thing.name} with certificate ${entry.certificateId.slice(0, 12)}… (${status})`,
    );
    return { deviceConfiguration: evaluated.deviceConfiguration, thingName: thing.name };
  }

  /**
   * Sends a response to the requesting connection only ("through the same MQTT connection used to
   * publish the API request"), and only if it subscribed to the response topic.
   */
  private respond(
    id: ClientIdentity,
    topic: string,
    body: unknown,
    format: "json" | "cbor" = "json",
  ): void {
    this.opts.onResponse?.(id.clientId, topic, body);
    const clients = (this.broker?.aedes as unknown as { clients?: Record<string, Client> })
      ?.clients;
    const client = clients?.[id.clientId];
    const sub = client
      ? Object.entries(
          (client as unknown as { subscriptions: Record<string, { qos?: number }> }).subscriptions,
        ).find(([filter]) => topicMatches(filter, topic))
      : undefined;
    if (client === undefined || sub === undefined) {
      this.stats.responsesNotDelivered++;
      this.log(
        `provisioning: ${id.clientId} is not subscribed to ${topic}; the response is lost, as AWS warns`,
      );
      return;
    }
    client.publish(
      {
        cmd: "publish",
        topic,
        payload:
          format === "cbor" ? encodeCbor(body as CborValue) : Buffer.from(JSON.stringify(body)),
        qos: Math.min(sub[1].qos ?? 0, 1) as 0 | 1,
        retain: false,
        dup: false,
      },
      (err) => {
        if (err)
          this.log(`provisioning: could not send ${topic} to ${id.clientId}: ${err.message}`);
      },
    );
  }

  /** Counts for the end of a run. */
  summary(): SummaryRow[] {
    const rejected = [...this.stats.rejected].map(([k, n]) => `${k} ${n}`).join(", ");
    return [
      {
        label: "provisioning: certificates (CSR / keys)",
        value: `${this.stats.certificatesFromCsr} / ${this.stats.keysAndCertificates}`,
      },
      { label: "provisioning: things registered", value: this.stats.thingsRegistered },
      {
        label: "provisioning: refused by the pre-provisioning hook",
        value: this.stats.refusedByHook,
      },
      { label: "provisioning: rejected", value: rejected === "" ? 0 : rejected },
      { label: "provisioning: denied by the claim policy", value: this.stats.claimDenials },
      {
        label: "provisioning: throttled requests / pending certificates replaced",
        value: `${this.stats.throttled} / ${this.stats.pendingReplaced}`,
      },
      { label: "registry: things", value: this.registry.thingCount },
    ];
  }
}
