// The S3 rule action: each message is written as one object of one bucket, under a key template,
// through a role allowed only s3:PutObject on the keys the template can produce
// (https://docs.aws.amazon.com/iot/latest/developerguide/s3-rule-action.html: "An IAM role that AWS
// IoT can assume to perform the s3:PutObject operation"). No canned ACL: the stack's bucket has
// ACLs disabled (core/rule-actions/s3.ts).
import type * as pulumi from "@pulumi/pulumi";
import { s3KeyGrant } from "../../../core/topic-rules/actions/s3";
import {
  actionRole,
  type ProgramActionFactory,
  type RuleAction,
  type RuleActionRoleBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface S3ActionArgs {
  readonly bucketName: pulumi.Input<string>;
  /** The bucket's ARN (`arn:<partition>:s3:::<bucket>`). */
  readonly bucketArn: pulumi.Input<string>;
  /** The object key, a substitution template such as `raw/${topic()}/${timestamp()}`. */
  readonly key: string;
  /**
   * The bucket's customer-managed KMS key, when it has one: S3 calls kms:GenerateDataKey on it
   * for the role ("the service must have permission to use the AWS KMS key on the caller's
   * behalf"). @default undefined: SSE-S3, no KMS grant
   */
  readonly kmsKeyArn?: pulumi.Input<string>;
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** @default "s3" */
  readonly id?: string;
}

export class S3Action implements RuleAction {
  readonly id: string;

  constructor(private readonly args: S3ActionArgs) {
    this.id = args.id ?? "s3";
    if ("cannedAcl" in (args as object)) {
      throw new Error(
        `S3 action ${this.id}: a canned ACL is refused; the bucket has ACLs disabled`,
      );
    }
  }

  bind(rule: RuleBindContext): RuleActionRoleBinding<RuleActionConfigOf<"s3">> {
    const keys = s3KeyGrant(this.args.key);
    const { role, grant } = actionRole(
      rule,
      this.id,
      this.args.roleName,
      { bucketArn: this.args.bucketArn, kmsKeyArn: this.args.kmsKeyArn },
      ({ bucketArn, kmsKeyArn }) => {
        return [
          {
            // PutObject authorizes on the object (resource type `object`,
            // arn:${Partition}:s3:::${BucketName}/${ObjectName}: the Service Authorization
            // Reference, list_amazons3.html).
            Sid: "PutObject",
            Effect: "Allow" as const,
            Action: ["s3:PutObject"],
            Resource: [`${bucketArn}/${keys}`],
          },
          ...(kmsKeyArn === undefined
            ? []
            : [
                {
                  // A single PutObject into an SSE-KMS bucket needs a data key; Decrypt is for
                  // multipart uploads, which the action does not make
                  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
                  Sid: "EncryptObjects",
                  Effect: "Allow" as const,
                  Action: ["kms:GenerateDataKey"],
                  Resource: [kmsKeyArn],
                },
              ]),
        ];
      },
    );
    return {
      role,
      grant,
      config: {
        kind: "s3",
        value: { bucketName: this.args.bucketName, key: this.args.key, roleArn: role.arn },
      },
    };
  }
}

export const s3FromConfig: ProgramActionFactory<"s3"> = (spec, ctx) => {
  if (ctx.bucket === undefined) {
    throw new Error(`rule ${ctx.ruleName}: the S3 action ${ctx.id} needs the stack's bucket`);
  }
  return new S3Action({
    id: ctx.id,
    bucketName: ctx.bucket.name,
    bucketArn: ctx.bucket.arn,
    kmsKeyArn: ctx.bucket.kmsKeyArn,
    key: spec.params.key,
  });
};
