// The IoT policy at the local broker: every Connect, Publish, Subscribe and Receive of a device is
// decided by the same policy document the stack attaches to its certificates, evaluated as AWS does.
import { createEvaluator, describeEvaluation, type PolicyContext } from "../core/iot-policy-eval";
import { iotArn, policyDocumentFor, type IotArnContext } from "../core/iot-policy";
import type { StackConfig } from "../core/stack-config";
import type { BrokerHooks, DeviceIdentity } from "./broker";

/**
 * The account id of the local "AWS": the policy's ARNs are built for it, so the documents are
 * byte-for-byte what the program deploys apart from the account.
 */
export const LOCAL_ACCOUNT_ID = "000000000000";

/** Where the local policy's ARNs point: partition aws, the stack's region, the local account. */
export function localArnContext(config: Pick<StackConfig, "region">): IotArnContext {
  return { partition: "aws", region: config.region, accountId: LOCAL_ACCOUNT_ID };
}

export type IotAction = "iot:Connect" | "iot:Publish" | "iot:Subscribe" | "iot:Receive";

/** Denials per action since the broker started. */
export type DenialCounts = Record<IotAction, number>;

export class LocalAuthorizer {
  readonly denials: DenialCounts = {
    "iot:Connect": 0,
    "iot:Publish": 0,
    "iot:Subscribe": 0,
    "iot:Receive": 0,
  };
  private readonly ctx: IotArnContext;
  private readonly evaluate;
  private readonly contexts = new Map<string, PolicyContext>();

  constructor(
    private readonly config: StackConfig,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.ctx = localArnContext(config);
    // The same builder, mode and topic template as the Pulumi program's aws.iot.Policy.
    this.evaluate = createEvaluator([
      policyDocumentFor(config.policy.mode, this.ctx, config.telemetryTopic),
    ]);
    for (const t of config.things) {
      // A fleet thing's certificate is attached to it (ThingPrincipalAttachment); it has the
      // stack's thing type and inherits its group's attributes.
      this.contexts.set(t.name, {
        clientId: t.name,
        thingName: t.name,
        isAttached: true,
        thingTypeName: config.thingType.name,
        attributes: t.attributes,
      });
    }
  }

  /**
   * Registers a thing that was provisioned at run time (fleet provisioning): its certificate is
   * attached to it, so the thing variables resolve for connections with its name as client id.
   */
  addThing(thing: { name: string; typeName?: string; attributes: Record<string, string> }): void {
    this.contexts.set(thing.name, {
      clientId: thing.name,
      thingName: thing.name,
      isAttached: true,
      thingTypeName: thing.typeName,
      attributes: thing.attributes,
    });
  }

  get totalDenials(): number {
    return Object.values(this.denials).reduce((a, b) => a + b, 0);
  }

  private contextOf(id: DeviceIdentity): PolicyContext {
    return (
      this.contexts.get(id.clientId) ?? {
        // A certificate from the local CA that no fleet thing is attached to.
        clientId: id.clientId,
        isAttached: false,
        attributes: {},
      }
    );
  }

  /**
   * Undefined when allowed; otherwise the reason, naming the action, resource and client. The
   * console identity is not subject to IoT policies: the AWS console's MQTT test client is
   * authorised by IAM, so it is allowed here as it is there.
   */
  decide(id: DeviceIdentity, action: IotAction, resource: string): string | undefined {
    if (id.kind === "console") return undefined;
    const arn = iotArn(this.ctx, resource);
    const result = this.evaluate({ action, resource: arn, context: this.contextOf(id) });
    if (result.decision === "allow") return undefined;
    this.denials[action]++;
    return `${action} on ${arn} for client ${id.clientId} (policy ${this.config.policy.name}: ${describeEvaluation(result)})`;
  }

  /** The broker hooks; the broker logs denied connects, publishes and subscribes itself. */
  hooks(): Required<
    Pick<
      BrokerHooks,
      "authorizeConnect" | "authorizePublish" | "authorizeSubscribe" | "authorizeReceive"
    >
  > {
    return {
      authorizeConnect: (id) => this.decide(id, "iot:Connect", `client/${id.clientId}`),
      // AWS checks Connect once per connection; Publish is checked per message.
      authorizePublish: (id, topic) => this.decide(id, "iot:Publish", `topic/${topic}`),
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
