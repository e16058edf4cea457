// AWS IoT logging for the account: the role IoT assumes to write its `AWSIotLogsV2` log group, and
// the account's default log level (aws.iot.LoggingOptions, SetV2LoggingOptions). One stack per
// account and region should manage it: the setting is the account's, not the stack's.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { logGroupPolicyArn, serviceRole } from "../private/iam";

/** The log group AWS IoT writes to (https://docs.aws.amazon.com/iot/latest/developerguide/cloud-watch-logs.html). */
export const IOT_LOG_GROUP = "AWSIotLogsV2";

/**
 * What IoT's logging role policy grants on its log group
 * (https://docs.aws.amazon.com/iot/latest/developerguide/configure-logging.html#logging-role-policy):
 * the group-level actions, on that one group's ARN with the trailing `:*` IAM sees for them.
 */
export const IOT_LOG_GROUP_ACTIONS = [
  "logs:CreateLogGroup",
  "logs:CreateLogStream",
  "logs:PutMetricFilter",
  "logs:PutRetentionPolicy",
];
/** ... and the one that authorizes on the group's streams. */
export const IOT_LOG_STREAM_ACTIONS = ["logs:PutLogEvents"];

export interface IotLoggingArgs {
  /** IoT's default log level for the account. */
  readonly level: "ERROR" | "WARN" | "INFO" | "DEBUG" | "DISABLED";
  /** The role's name; auto-named when undefined. */
  readonly roleName?: string;
}

export class IotLogging extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly options: aws.iot.LoggingOptions;

  constructor(name: string, args: IotLoggingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:monitoring:IotLogging", name, {}, opts);
    const parent = { parent: this };
    const accountId = aws.getCallerIdentityOutput({}, parent).accountId;
    const region = aws.getRegionOutput({}, parent).region;
    const partition = aws.getPartitionOutput({}, parent).partition;
    const group = pulumi.interpolate`arn:${partition}:logs:${region}:${accountId}:log-group:${IOT_LOG_GROUP}`;
    const { role, grant } = serviceRole(
      `${name}-role`,
      {
        service: "iot.amazonaws.com",
        roleName: args.roleName,
        accountId,
        statements: group.apply((arn) => [
          {
            Sid: "ManageIotLogGroup",
            Effect: "Allow" as const,
            Action: [...IOT_LOG_GROUP_ACTIONS],
            Resource: [logGroupPolicyArn(arn)],
          },
          {
            Sid: "WriteIotLogs",
            Effect: "Allow" as const,
            Action: [...IOT_LOG_STREAM_ACTIONS],
            Resource: [`${arn}:log-stream:*`],
          },
        ]),
      },
      this,
    );
    this.role = role;
    this.options = new aws.iot.LoggingOptions(
      `${name}-options`,
      {
        defaultLogLevel: args.level,
        disableAllLogs: args.level === "DISABLED",
        roleArn: role.arn,
      },
      // IoT checks that it may pass the role when the options are set.
      { parent: this, dependsOn: [grant] },
    );
    this.registerOutputs({ roleArn: role.arn });
  }
}
