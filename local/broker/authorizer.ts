// The IoT policy at the local broker: every Connect (with its will), Publish (with RetainPublish),
// Subscribe and Receive of a device is decided by the same policy document the stack attaches to
// its certificates, evaluated as AWS does with the connection's certificate, thing and address.
import {
  createEvaluator,
  describeEvaluation,
  type CertificateAttributes,
  type PolicyContext,
} from "../../core/iot-policy/policy-eval";
import { iotArn, policyDocumentFor, type IotArnContext } from "../../core/iot-policy/policy";
import { basicIngestRule, type StackConfig } from "../../core/stack-config";
import type { BrokerHooks, ConnectRequest, ClientIdentity } from "./broker";
import { certificateAttributes } from "../identity/certificate-attributes";

/**
 * The account id of the local "AWS": the policy's ARNs are built for it, so the documents are
 * byte-for-byte what the program deploys apart from the account.
 */
export const LOCAL_ACCOUNT_ID = "000000000000";

/** Where the local policy's ARNs point: partition aws, the stack's region, the local account. */
export function localArnContext(config: Pick<StackConfig, "region">): IotArnContext {
  return { partition: "aws", region: config.region, accountId: LOCAL_ACCOUNT_ID };
}

export type IotAction =
  "iot:Connect" | "iot:Publish" | "iot:RetainPublish" | "iot:Subscribe" | "iot:Receive";

/** Denials per action since the broker started. */
export type DenialCounts = Record<IotAction, number>;

export interface AuthorizerOptions {
  /**
   * How the fleet's certificates are attached to their things (AttachThingPrincipal's
   * thingPrincipalType). The program attaches with AWS's default, non-exclusive: thing variables
   * then resolve only when the client id is the thing's name. Exclusive resolves them whatever
   * the client id (exclusive-thing.html); try it with the broker's `requireThingClientId` off.
   * @default "non-exclusive"
   */
  readonly association?: "exclusive" | "non-exclusive";
}

export class LocalAuthorizer {
  readonly denials: DenialCounts = {
    "iot:Connect": 0,
    "iot:Publish": 0,
    "iot:RetainPublish": 0,
    "iot:Subscribe": 0,
    "iot:Receive": 0,
  };
  private readonly ctx: IotArnContext;
  private readonly evaluate;
  /** The things certificates are attached to: the fleet's, and those provisioned at run time. */
  private readonly things: Map<
    string,
    {
      readonly name: string;
      readonly typeName?: string;
      readonly attributes: Readonly<Record<string, string>>;
    }
  >;
  /** One context per connection: its certificate, address and connect flags do not change. */
  private readonly contexts = new WeakMap<ClientIdentity, PolicyContext>();
  /** Certificate attributes by certificate id: a fleet reconnects with the same few. */
  private readonly certificates = new Map<string, CertificateAttributes>();

  constructor(
    private readonly config: StackConfig,
    private readonly log: (line: string) => void = () => undefined,
    private readonly opts: AuthorizerOptions = {},
  ) {
    this.ctx = localArnContext(config);
    // The same builder, mode, topic template and document as the Pulumi program's aws.iot.Policy.
    this.evaluate = createEvaluator([
      policyDocumentFor(
        config.policy.mode,
        this.ctx,
        config.telemetryTopic,
        config.policy.document,
        { deviceShadows: config.policy.deviceShadows, basicIngestRule: basicIngestRule(config) },
      ),
    ]);
    this.things = new Map(config.things.map((t) => [t.name, t]));
  }

  /**
   * Registers a thing that was provisioned at run time (fleet provisioning): its certificate is
   * attached to it, so the thing variables resolve for connections with its name as client id.
   */
  addThing(thing: { name: string; typeName?: string; attributes: Record<string, string> }): void {
    this.things.set(thing.name, thing);
  }

  get totalDenials(): number {
    return Object.values(this.denials).reduce((a, b) => a + b, 0);
  }

  private attributesOf(id: ClientIdentity): CertificateAttributes | undefined {
    if (id.certificate === undefined) return undefined;
    const key = id.certificateId ?? id.certificate.fingerprint256;
    let attrs = this.certificates.get(key);
    if (attrs === undefined) {
      attrs = certificateAttributes(id.certificate);
      // Bounded: past it the oldest goes, which costs a re-read, never a wrong answer.
      if (this.certificates.size >= 10_000) {
        this.certificates.delete(this.certificates.keys().next().value as string);
      }
      this.certificates.set(key, attrs);
    }
    return attrs;
  }

  /**
   * What AWS knows about this connection. A fleet thing's certificate (CN = thing name) is
   * attached to that thing (ThingPrincipalAttachment); the thing has the stack's thing type and
   * its group's attributes. A certificate from the local CA that names no fleet thing is attached
   * to nothing.
   */
  private contextOf(id: ClientIdentity, connect?: ConnectRequest): PolicyContext {
    const known = this.contexts.get(id);
    if (known !== undefined && connect === undefined) return known;
    const thing = this.things.get(id.thingName);
    const attributes: string[] = [];
    if (connect?.clean === false) attributes.push("PersistentConnect");
    if (connect?.will !== undefined) attributes.push("LastWill");
    const attributesOf = (x: ClientIdentity) => this.attributesOf(x);
    const context: PolicyContext = {
      clientId: id.clientId,
      thingName: thing?.name,
      isAttached: thing !== undefined,
      association: this.opts.association ?? "non-exclusive",
      thingTypeName:
        thing === undefined ? undefined : (thing.typeName ?? this.config.thingType.name),
      attributes: thing?.attributes ?? {},
      certificateId: id.certificateId,
      // Read only when a policy asks for a certificate variable: parsing every connecting
      // device's certificate would slow a fleet's connects for policies that never look.
      get certificate() {
        return attributesOf(id);
      },
      sourceIp: id.remoteAddress,
      secureTransport: true,
      connectAttributes: attributes,
      lastWillTopic:
        connect?.will === undefined ? undefined : iotArn(this.ctx, `topic/${connect.will.topic}`),
    };
    this.contexts.set(id, context);
    return context;
  }

  /**
   * Undefined when allowed; otherwise the reason, naming the action, resource and client. The
   * console identity is not subject to IoT policies: the AWS console's MQTT test client is
   * authorised by IAM, so it is allowed here as it is there.
   */
  decide(id: ClientIdentity, action: IotAction, resource: string): string | undefined {
    if (id.kind === "console") return undefined;
    const arn = iotArn(this.ctx, resource);
    const result = this.evaluate({ action, resource: arn, context: this.contextOf(id) });
    if (result.decision === "allow") return undefined;
    this.denials[action]++;
    return `${action} on ${arn} for client ${id.clientId} (policy ${this.config.policy.name}: ${describeEvaluation(result)})`;
  }

  /**
   * iot:Connect on the client id; with a will, iot:Publish on its topic (and iot:RetainPublish
   * for a retained will), decided at CONNECT as AWS does (retained-message-policy-examples.html).
   */
  authorizeConnect(id: ClientIdentity, connect: ConnectRequest): string | undefined {
    this.contextOf(id, connect);
    const reason = this.decide(id, "iot:Connect", `client/${id.clientId}`);
    if (reason !== undefined || connect.will === undefined) return reason;
    const willTopic = `topic/${connect.will.topic}`;
    const will =
      this.decide(id, "iot:Publish", willTopic) ??
      (connect.will.retain ? this.decide(id, "iot:RetainPublish", willTopic) : undefined);
    return will === undefined ? undefined : `the will message is not allowed: ${will}`;
  }

  /** iot:Publish, and iot:RetainPublish as well for a message with the RETAIN flag. */
  authorizePublish(id: ClientIdentity, topic: string, retain = false): string | undefined {
    return (
      this.decide(id, "iot:Publish", `topic/${topic}`) ??
      (retain ? this.decide(id, "iot:RetainPublish", `topic/${topic}`) : undefined)
    );
  }

  /** The broker hooks; the broker logs denied connects, publishes and subscribes itself. */
  hooks(): Required<
    Pick<
      BrokerHooks,
      "authorizeConnect" | "authorizePublish" | "authorizeSubscribe" | "authorizeReceive"
    >
  > {
    return {
      authorizeConnect: (id, connect) => this.authorizeConnect(id, connect ?? { clean: true }),
      // AWS checks Connect once per connection; Publish is checked per message.
      authorizePublish: (id, topic, retain) => this.authorizePublish(id, topic, retain),
      authorizeSubscribe: (id, filter) => this.decide(id, "iot:Subscribe", `topicfilter/${filter}`),
      authorizeReceive: (id, topic) => {
        const reason = this.decide(id, "iot:Receive", `topic/${topic}`);
        // A denied Receive only drops that delivery; the broker has no event for it, so log here.
        if (reason !== undefined) this.log(`policy: denied ${reason}; message not delivered`);
        return reason === undefined;
      },
    };
  }
}
