// The stack's one IoT policy, attached to every device certificate.
//
// One policy serves the whole fleet: the least-privilege document names the connecting thing
// through ${iot:Connection.Thing.ThingName}, so a per-thing copy would add N identical policies
// (AWS caps an account's policies) and N version histories to keep in step, for no extra safety.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { policyDocumentFor } from "../../core/iot-policy/policy";
import type { PolicyMode } from "../../core/stack-config";

export interface DevicePolicyArgs {
  /** The IoT policy's name (the seed's `sensor-policy`). */
  readonly policyName: string;
  /** `least-privilege` (AWS's pattern), `tutorial` (the seed's `iot:*` on `*`) or `custom`. */
  readonly mode: PolicyMode;
  /** The devices' telemetry topic; `{thing}` stands for the thing name. */
  readonly telemetryTopic: string;
  /**
   * The stack's own document for mode `custom` (ARN placeholders `{partition}`, `{region}`,
   * `{account}`), already checked by core/stack-config.ts.
   * @default undefined (modes other than custom)
   */
  readonly document?: unknown;
  /**
   * Grants each device its own Device Shadow topics (least-privilege mode).
   * @default false
   */
  readonly deviceShadows?: boolean;
  /**
   * The rule devices publish to by Basic Ingest (least-privilege grants its topic instead).
   * @default undefined (the telemetry topic through the message broker)
   */
  readonly basicIngestRule?: string;
}

export class DevicePolicy extends pulumi.ComponentResource {
  /** The IoT policy. */
  readonly policy: aws.iot.Policy;
  /** The policy document as deployed (JSON). */
  readonly document: pulumi.Output<string>;

  constructor(name: string, args: DevicePolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:identity:DevicePolicy", name, {}, opts);
    const parent = { parent: this };

    // The ARNs point at the account and region the provider deploys to, as AWS evaluates them.
    const partition = aws.getPartitionOutput({}, parent).partition;
    const region = aws.getRegionOutput({}, parent).region;
    const accountId = aws.getCallerIdentityOutput({}, parent).accountId;
    this.document = pulumi
      .all([partition, region, accountId])
      .apply(([p, r, a]) =>
        JSON.stringify(
          policyDocumentFor(
            args.mode,
            { partition: p, region: r, accountId: a },
            args.telemetryTopic,
            args.document,
            { deviceShadows: args.deviceShadows ?? false, basicIngestRule: args.basicIngestRule },
          ),
        ),
      );

    this.policy = new aws.iot.Policy(
      `${name}-policy`,
      { name: args.policyName, policy: this.document },
      parent,
    );

    this.registerOutputs({ policyName: this.policy.name, document: this.document });
  }
}
