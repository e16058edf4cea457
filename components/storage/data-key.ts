// The stack's customer-managed KMS key: one symmetric key, rotated yearly, for the bucket's
// objects, the telemetry stream's server-side encryption, the alarms' topic and Athena's results.
// IAM in the account decides who uses it (the key policy's root statement); the roles that need it
// are granted on this one key ARN (docs/iam-roles.md). CloudWatch alarms publish to an encrypted
// topic only when the key policy lets CloudWatch use the key.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface DataKeyArgs {
  /** The alias, without `alias/`. */
  readonly alias: string;
  /**
   * Days KMS waits before deleting the key after `pulumi destroy` (7-30).
   * @default 30
   */
  readonly deletionWindowInDays?: number;
}

/**
 * The key policy: the account administers the key through IAM, as KMS's default key policy does
 * (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html), and CloudWatch
 * may use it to publish alarms to the encrypted topic, from this account only
 * (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
 */
export function keyPolicy(partition: string, accountId: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "EnableIamPolicies",
        Effect: "Allow",
        Principal: { AWS: `arn:${partition}:iam::${accountId}:root` },
        Action: "kms:*",
        Resource: "*",
      },
      {
        Sid: "CloudWatchAlarmsToEncryptedTopic",
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
        Resource: "*",
        Condition: { StringEquals: { "aws:SourceAccount": accountId } },
      },
    ],
  });
}

export class DataKey extends pulumi.ComponentResource {
  readonly key: aws.kms.Key;
  readonly alias: aws.kms.Alias;
  /** The key's ARN, which the roles' grants and the encryption settings name. */
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: DataKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:storage:DataKey", name, {}, opts);
    const parent = { parent: this };
    const accountId = aws.getCallerIdentityOutput({}, parent).accountId;
    const partition = aws.getPartitionOutput({}, parent).partition;
    this.key = new aws.kms.Key(
      `${name}-key`,
      {
        description: `iot-pipeline data key (${args.alias})`,
        enableKeyRotation: true,
        deletionWindowInDays: args.deletionWindowInDays ?? 30,
        policy: pulumi.all([partition, accountId]).apply(([p, a]) => keyPolicy(p, a)),
      },
      parent,
    );
    this.alias = new aws.kms.Alias(
      `${name}-alias`,
      { name: `alias/${args.alias}`, targetKeyId: this.key.keyId },
      parent,
    );
    this.arn = this.key.arn;
    this.registerOutputs({ arn: this.arn });
  }
}
