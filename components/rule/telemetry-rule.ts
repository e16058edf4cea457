// The telemetry topic rule: IoT SQL over the devices' topic, a Firehose action (records
// separated by "\n") through a role that may only put records on that one stream, an error action
// into a CloudWatch log group of its own, and optionally a Kinesis action for the analytics.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { FIREHOSE_RECORD_SEPARATOR } from "../../core/delivery";
import { serviceRole } from "../private/iam";

/** An extra Kinesis Data Streams action (the analytics' source). */
export interface TelemetryRuleKinesisArgs {
  /** The stream the rule puts each message on. */
  readonly streamName: pulumi.Input<string>;
  /** Its ARN, the only resource the action's role may write to. */
  readonly streamArn: pulumi.Input<string>;
  /** Partition key, an IoT SQL substitution template such as `${topic()}`. */
  readonly partitionKey: string;
}

export interface TelemetryRuleArgs {
  /** The rule's name: letters, digits and underscores (the seed's `sensor_rule`). */
  readonly ruleName: string;
  /** IoT SQL (version 2016-03-23). */
  readonly sql: string;
  /** Name of the role the Firehose action assumes (the seed's `iot-weather-data-role`). */
  readonly roleName: string;
  /** The delivery stream the Firehose action writes to. */
  readonly deliveryStreamName: pulumi.Input<string>;
  /** Its ARN, the only resource the Firehose role may write to. */
  readonly deliveryStreamArn: pulumi.Input<string>;
  /**
   * Error log group name.
   * @default `/iot/rules/<ruleName>/errors`
   */
  readonly errorLogGroupName?: string;
  /**
   * A Kinesis action beside the Firehose one, through a role of its own.
   * @default undefined: no Kinesis action
   */
  readonly kinesis?: TelemetryRuleKinesisArgs;
}

/** The error log group a rule gets when none is named. */
export function ruleErrorLogGroupName(ruleName: string): string {
  return `/iot/rules/${ruleName}/errors`;
}

export class TelemetryRule extends pulumi.ComponentResource {
  /** The topic rule. */
  readonly rule: aws.iot.TopicRule;
  /** The role the Firehose action assumes. */
  readonly firehoseRole: aws.iam.Role;
  /** The role the error action assumes. */
  readonly errorRole: aws.iam.Role;
  /** The role the Kinesis action assumes, when there is one. */
  readonly kinesisRole?: aws.iam.Role;
  /** Where failed actions are logged. */
  readonly errorLogGroup: aws.cloudwatch.LogGroup;
  /** The rule's name. */
  readonly ruleName: pulumi.Output<string>;

  constructor(name: string, args: TelemetryRuleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:rule:TelemetryRule", name, {}, opts);
    const parent = { parent: this };
    const accountId = aws.getCallerIdentityOutput({}, parent).accountId;

    // One role per action, so each can do its one job and nothing the other may. Each grant is
    // what the action's page in the AWS IoT developer guide requires (docs/iam-roles.md).
    const firehose = serviceRole(
      `${name}-firehose-role`,
      {
        service: "iot.amazonaws.com",
        roleName: args.roleName,
        accountId,
        statements: pulumi.output(args.deliveryStreamArn).apply((arn) => [
          {
            Sid: "PutTelemetryRecords",
            Effect: "Allow" as const,
            // The Firehose action calls PutRecord; PutRecordBatch only with batchMode, which is off.
            Action: ["firehose:PutRecord"],
            Resource: [arn],
          },
        ]),
      },
      this,
    );
    this.firehoseRole = firehose.role;

    // CloudWatch Logs rather than S3 for errors: they are for an operator to read now, and the
    // delivery bucket stays Firehose's alone.
    this.errorLogGroup = new aws.cloudwatch.LogGroup(
      `${name}-errors`,
      { name: args.errorLogGroupName ?? ruleErrorLogGroupName(args.ruleName), retentionInDays: 30 },
      parent,
    );
    const errors = serviceRole(
      `${name}-errors-role`,
      {
        service: "iot.amazonaws.com",
        roleName: `${args.roleName}-errors`,
        accountId,
        statements: this.errorLogGroup.arn.apply((arn) => [
          {
            // CreateLogStream and DescribeLogStreams authorize on the log group.
            Sid: "FindAndCreateErrorStreams",
            Effect: "Allow" as const,
            Action: ["logs:CreateLogStream", "logs:DescribeLogStreams"],
            Resource: [arn],
          },
          {
            // PutLogEvents authorizes on the stream; IoT names the streams itself.
            Sid: "WriteErrorEvents",
            Effect: "Allow" as const,
            Action: ["logs:PutLogEvents"],
            Resource: [`${arn}:log-stream:*`],
          },
        ]),
      },
      this,
    );
    this.errorRole = errors.role;

    const grants: pulumi.Resource[] = [firehose.grant, errors.grant];
    let kineses: aws.types.input.iot.TopicRuleKinesis[] | undefined;
    if (args.kinesis !== undefined) {
      const kinesis = args.kinesis;
      const role = serviceRole(
        `${name}-kinesis-role`,
        {
          service: "iot.amazonaws.com",
          roleName: `${args.roleName}-kinesis`,
          accountId,
          statements: pulumi.output(kinesis.streamArn).apply((arn) => [
            {
              Sid: "PutAnalyticsRecords",
              Effect: "Allow" as const,
              Action: ["kinesis:PutRecord"],
              Resource: [arn],
            },
          ]),
        },
        this,
      );
      grants.push(role.grant);
      this.kinesisRole = role.role;
      kineses = [
        {
          streamName: kinesis.streamName,
          roleArn: role.role.arn,
          partitionKey: kinesis.partitionKey,
        },
      ];
    }

    this.rule = new aws.iot.TopicRule(
      `${name}-rule`,
      {
        name: args.ruleName,
        enabled: true,
        sql: args.sql,
        sqlVersion: "2016-03-23",
        firehoses: [
          {
            deliveryStreamName: args.deliveryStreamName,
            roleArn: this.firehoseRole.arn,
            separator: FIREHOSE_RECORD_SEPARATOR,
          },
        ],
        ...(kineses === undefined ? {} : { kineses }),
        errorAction: {
          cloudwatchLogs: { logGroupName: this.errorLogGroup.name, roleArn: this.errorRole.arn },
        },
      },
      // IoT checks that it can pass each role when the rule is created.
      { parent: this, dependsOn: grants },
    );

    this.ruleName = this.rule.name;
    this.registerOutputs({ ruleName: this.ruleName, roleArn: this.firehoseRole.arn });
  }
}
