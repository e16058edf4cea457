// Every call an AWS service makes with one of the pipeline's roles at run time, written from AWS's
// pages rather than from the program: which service calls, the API, the IAM action that authorizes
// it, and the resource as IAM sees it in the request (the Service Authorization Reference's
// resource type and ARN format, and CloudWatch Logs' own API reference where the form differs).
// tests/program/iam-roles.test.ts holds every role of every stack to this table through the IAM
// evaluator (core/iam/policy-eval.ts), both ways: each call allowed, each near miss denied.
// docs/iam-roles.md renders it (renderCallTable).

/** The roles the program creates, by the name the table and the docs use. */
export type RoleId =
  | "rule-firehose"
  | "rule-errors"
  | "rule-kinesis"
  | "delivery"
  | "windows-delivery"
  | "flink"
  | "iot-logging"
  | "provisioning"
  | "provisioning-hook"
  | "rule-s3"
  | "rule-sns"
  | "rule-sqs"
  | "rule-dynamodb"
  | "rule-lambda-function"
  | "rules-republish"
  | "rules-metric"
  | "rules-alarm"
  | "rules-errors";

/** Which stacks make a call: a stack makes it when its config meets every condition of the row. */
export type CallCondition =
  | "always"
  | "analytics"
  | "errorLogging"
  | "parquet"
  | "kmsKey"
  | "iotLogging"
  | "fleetProvisioning"
  | "hook"
  | "noReprovisioning"
  | "s3Action"
  | "snsAction"
  | "sqsAction"
  | "dynamodbAction"
  | "lambdaAction"
  | "rulesRepublish"
  | "rulesMetric"
  | "rulesAlarm"
  | "rulesErrorLogs";

/**
 * The names a request's ARN is built from. `{partition}`, `{region}` and `{account}` are the
 * stack's; the others are the stack's resource names (filled by the test from what the stack
 * registers, never from a role's policy), except those a row lists in `callerChosen`, which the
 * calling service picks at run time (any value must be allowed).
 */
export const PLACEHOLDERS: Readonly<Record<string, string>> = {
  "{partition}": "the partition (`aws`)",
  "{region}": "the stack's region",
  "{account}": "the stack's account",
  "{deliveryStream}": "the telemetry's Firehose stream (`streamName`)",
  "{windowsStream}": "the windows' Firehose stream (`<streamName>-windows`)",
  "{ruleErrorLogGroup}": "the rule's error log group `/iot/rules/<ruleName>/errors`",
  "{telemetryKinesis}": "the Kinesis stream the rule's Kinesis action feeds (Flink's source)",
  "{windowsKinesis}": "the Kinesis stream Flink writes each closed window to",
  "{bucket}": "the pipeline's bucket",
  "{objectKey}": "an object key Firehose writes (its prefix or error prefix, its own name)",
  "{deliveryLogGroup}":
    "the telemetry Firehose's error log group `/aws/kinesisfirehose/<streamName>`",
  "{windowsLogGroup}": "the windows Firehose's error log group",
  "{firehoseLogStream}": "Firehose's error log stream `DestinationDelivery`",
  "{glueDatabase}": "the lake's Glue database",
  "{glueTable}": "the lake's Glue table",
  "{keyId}": "the stack's customer-managed KMS key",
  "{codeKey}": "the Flink application's code object key (`flink-code/stream-analytics-<hash>.zip`)",
  "{flinkLogGroup}": "the Flink application's log group",
  "{flinkLogStream}": "the Flink application's log stream (`application`)",
  "{hookLogGroup}": "the pre-provisioning hook's log group `/aws/lambda/<function>`",
  "{iotLogGroup}": "AWS IoT's log group `AWSIotLogsV2`",
  "{logStream}": "a log stream the service names itself",
  "{thingName}": "the thing a device provisions (named from its serial by the template)",
  "{certificateId}": "the certificate a device's claim session created",
  "{thingGroup}": "the fleet's thing group",
  "{thingType}": "the fleet's thing type",
  "{devicePolicy}": "the devices' IoT policy",
  "{actionBucket}": "the bucket a rule's S3 action writes to (the pipeline's)",
  "{actionObjectKey}":
    "an object key the S3 action's key template produces (under the template's literal folder)",
  "{snsTopic}": "the topic a rule's SNS action publishes to (`topicName`)",
  "{sqsQueue}": "the queue a rule's SQS action sends to (`queueName`)",
  "{dynamodbTable}": "the table the stack creates for a rule's DynamoDBv2 action (`tableName`)",
  "{lambdaLogGroup}": "a rule's Lambda function's log group `/aws/lambda/<function>`",
  "{republishPrefix}":
    "the literal levels of a further rule's republish topic before its first `${...}` (`alerts` in prod)",
  "{templateValue}": "what a substitution template fills in for a message",
  "{metricNamespace}":
    "a further rule's CloudWatch metric namespace (`IotPipeline/Alerts` in prod)",
  "{alarmName}": "the alarm a further rule's CloudWatch alarm action sets",
  "{rulesErrorLogGroup}": "a further rule's error log group `/iot/rules/<rule>/errors`",
};

export interface RunTimeCall {
  readonly role: RoleId;
  /** The service principal that assumes the role and makes the call. */
  readonly caller: string;
  readonly when: readonly CallCondition[];
  /** The API operation the service calls. */
  readonly api: string;
  /** The IAM action that authorizes it. */
  readonly action: string;
  /** The Service Authorization Reference's resource type for the action. */
  readonly resourceType: string;
  /**
   * The resources IAM authorizes the request on, as templates over {@link PLACEHOLDERS}; every one
   * must be allowed.
   */
  readonly resources: readonly string[];
  /** Placeholders the calling service picks at run time. */
  readonly callerChosen?: readonly string[];
  /** Condition keys the request carries (templates), for roles whose grants have conditions. */
  readonly context?: Readonly<Record<string, string>>;
  /** The page that says the service makes this call with this role. */
  readonly calledPer: string;
  /** The page that gives the action's resource type and ARN (and the API reference where it differs). */
  readonly arnPer: string;
  /** Why the resource is the one shown, where it is not plain. */
  readonly note?: string;
}

const SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference";
const SAR_LOGS = `${SAR}/list_amazoncloudwatchlogs.html`;
const SAR_FIREHOSE = `${SAR}/list_amazonkinesisfirehose.html`;
const SAR_KINESIS = `${SAR}/list_amazonkinesis.html`;
const SAR_S3 = `${SAR}/list_amazons3.html`;
const SAR_GLUE = `${SAR}/list_awsglue.html`;
const SAR_KMS = `${SAR}/list_awskeymanagementservice.html`;
const SAR_IOT = `${SAR}/list_awsiot.html`;
const SAR_SNS = `${SAR}/list_amazonsns.html`;
const SAR_SQS = `${SAR}/list_amazonsqs.html`;
const SAR_DYNAMODB = `${SAR}/list_amazondynamodb.html`;
const SAR_CLOUDWATCH = `${SAR}/list_amazoncloudwatch.html`;
const IOT_REPUBLISH =
  "https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html";
const IOT_CW_METRIC =
  "https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-metrics-rule-action.html";
const IOT_CW_ALARM =
  "https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-alarms-rule-action.html";
/**
 * CloudWatch Logs' own ARN forms: "Use the second version, with the trailing :*, to refer to the
 * ARN when specifying permissions in IAM policies for all other API actions" (all but
 * TagResource, UntagResource, ListTagsForResource); LogGroup.arn vs LogGroup.logGroupArn in the
 * API reference says the same. The provider's `aws.cloudwatch.LogGroup.arn` is the form without it.
 */
const LOGS_ARN_FORMS =
  "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html";
const LOGS_GROUP_NOTE =
  "group-level action: the log group's ARN with the trailing `:*`, not the provider's `LogGroup.arn`";

const LOGS = "arn:{partition}:logs:{region}:{account}";
const group = (name: string) => `${LOGS}:log-group:${name}:*`;
const stream = (name: string, s: string) => `${LOGS}:log-group:${name}:log-stream:${s}`;
const S3_BUCKET = "arn:{partition}:s3:::{bucket}";
const S3_OBJECT = (key: string) => `${S3_BUCKET}/${key}`;

const IOT_FIREHOSE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/kinesis-firehose-rule-action.html";
const IOT_KINESIS =
  "https://docs.aws.amazon.com/iot/latest/developerguide/kinesis-rule-action.html";
const IOT_CWL =
  "https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-logs-rule-action.html";
const IOT_S3 = "https://docs.aws.amazon.com/iot/latest/developerguide/s3-rule-action.html";
const IOT_SNS = "https://docs.aws.amazon.com/iot/latest/developerguide/sns-rule-action.html";
const IOT_SQS = "https://docs.aws.amazon.com/iot/latest/developerguide/sqs-rule-action.html";
const IOT_DYNAMODB_V2 =
  "https://docs.aws.amazon.com/iot/latest/developerguide/dynamodb-v2-rule-action.html";
const FIREHOSE_S3 =
  "https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#using-iam-s3";
const FIREHOSE_GLUE =
  "https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#using-iam-glue";
const GLUE_ARNS = "https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html";
const FLINK_POLICY =
  "https://docs.aws.amazon.com/managed-flink/latest/java/examples-gs-scala-create-run-cli.html";
const FLINK_CONNECTOR =
  "https://github.com/apache/flink-connector-aws/blob/v5.0.0/flink-connector-aws/flink-connector-aws-kinesis-streams/src/main/java/org/apache/flink/connector/kinesis/source/proxy/KinesisStreamProxy.java";
const FLINK_SINK =
  "https://github.com/apache/flink-connector-aws/blob/v5.0.0/flink-connector-aws/flink-connector-aws-kinesis-streams/src/main/java/org/apache/flink/connector/kinesis/sink/KinesisStreamsSinkWriter.java";
const S3_SSE_KMS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html";
const IOT_LOGGING =
  "https://docs.aws.amazon.com/iot/latest/developerguide/configure-logging.html#logging-role-policy";
const LAMBDA_LOGS = "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html";
const PROVISION_TEMPLATE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html";
const THINGS_REGISTRATION_PAGE =
  "https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSIoTThingsRegistration.html";

/** The same call made by two roles (the telemetry's and the windows' Firehose streams). */
function firehoseToS3(
  role: "delivery" | "windows-delivery",
  when: readonly CallCondition[],
  logGroup: string,
): RunTimeCall[] {
  const base = { role, caller: "firehose.amazonaws.com", calledPer: FIREHOSE_S3 } as const;
  const onBucket = (api: string, action: string): RunTimeCall => ({
    ...base,
    when,
    api,
    action,
    resourceType: "bucket",
    resources: [S3_BUCKET],
    arnPer: SAR_S3,
  });
  const onObject = (api: string, action: string): RunTimeCall => ({
    ...base,
    when,
    api,
    action,
    resourceType: "object",
    resources: [S3_OBJECT("{objectKey}")],
    callerChosen: ["{objectKey}"],
    arnPer: SAR_S3,
  });
  const kms = (api: string, action: string): RunTimeCall => ({
    ...base,
    when: [...when, "kmsKey"],
    api: `${api} (by S3, for PutObject into the SSE-KMS bucket)`,
    action,
    resourceType: "key",
    resources: ["arn:{partition}:kms:{region}:{account}:key/{keyId}"],
    // The statement in Firehose's page conditions on these; S3 sends them on the role's behalf.
    context: {
      "kms:ViaService": "s3.{region}.amazonaws.com",
      "kms:EncryptionContext:aws:s3:arn": S3_BUCKET,
    },
    arnPer: `${SAR_KMS}; ${S3_SSE_KMS}`,
    note: "the bucket uses an S3 Bucket Key, so the encryption context is the bucket's ARN",
  });
  return [
    onBucket("GetBucketLocation", "s3:GetBucketLocation"),
    onBucket("ListObjects", "s3:ListBucket"),
    onBucket("ListMultipartUploads", "s3:ListBucketMultipartUploads"),
    onObject(
      "PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload",
      "s3:PutObject",
    ),
    onObject("GetObject", "s3:GetObject"),
    onObject("AbortMultipartUpload", "s3:AbortMultipartUpload"),
    kms("GenerateDataKey", "kms:GenerateDataKey"),
    kms("Decrypt", "kms:Decrypt"),
    {
      ...base,
      when: [...when, "errorLogging"],
      api: "PutLogEvents",
      action: "logs:PutLogEvents",
      resourceType: "log-stream",
      resources: [stream(logGroup, "{firehoseLogStream}")],
      arnPer: SAR_LOGS,
      note: "Firehose writes delivery errors to the stream configured on the delivery stream",
    },
  ];
}

/** A group-level CloudWatch Logs call. */
function onLogGroup(
  base: Pick<RunTimeCall, "role" | "caller" | "when" | "calledPer">,
  api: string,
  logGroup: string,
): RunTimeCall {
  return {
    ...base,
    api,
    action: `logs:${api}`,
    resourceType: "log-group",
    resources: [group(logGroup)],
    arnPer: `${SAR_LOGS}; ${LOGS_ARN_FORMS}`,
    note: LOGS_GROUP_NOTE,
  };
}

/** PutLogEvents into a stream of a group; `chosen` when the service names the stream itself. */
function putLogEvents(
  base: Pick<RunTimeCall, "role" | "caller" | "when" | "calledPer">,
  logGroup: string,
  logStream: string,
  chosen: boolean,
): RunTimeCall {
  return {
    ...base,
    api: "PutLogEvents",
    action: "logs:PutLogEvents",
    resourceType: "log-stream",
    resources: [stream(logGroup, logStream)],
    ...(chosen ? { callerChosen: [logStream] } : {}),
    arnPer: SAR_LOGS,
  };
}

const ruleErrors = {
  role: "rule-errors",
  caller: "iot.amazonaws.com",
  when: ["always"],
  calledPer: IOT_CWL,
} as const;
const rulesErrors = {
  role: "rules-errors",
  caller: "iot.amazonaws.com",
  when: ["rulesErrorLogs"],
  calledPer: IOT_CWL,
} as const;
const iotLogging = {
  role: "iot-logging",
  caller: "iot.amazonaws.com",
  when: ["iotLogging"],
  calledPer: IOT_LOGGING,
} as const;
const hook = {
  role: "provisioning-hook",
  caller: "lambda.amazonaws.com",
  when: ["fleetProvisioning", "hook"],
  calledPer: LAMBDA_LOGS,
} as const;
const flink = {
  role: "flink",
  caller: "kinesisanalytics.amazonaws.com",
  when: ["analytics"],
} as const;
const lambdaFunction = {
  role: "rule-lambda-function",
  caller: "lambda.amazonaws.com",
  when: ["lambdaAction"],
  calledPer: LAMBDA_LOGS,
} as const;
const provisioning = {
  role: "provisioning",
  caller: "iot.amazonaws.com",
  when: ["fleetProvisioning"],
  calledPer: `${PROVISION_TEMPLATE}; ${THINGS_REGISTRATION_PAGE}`,
  arnPer: SAR_IOT,
} as const;

/** The table. */
export const RUN_TIME_CALLS: readonly RunTimeCall[] = [
  // The rule's actions (each action's page: "the role ... to perform the X operation").
  {
    role: "rule-firehose",
    caller: "iot.amazonaws.com",
    when: ["always"],
    api: "PutRecord",
    action: "firehose:PutRecord",
    resourceType: "deliverystream",
    resources: ["arn:{partition}:firehose:{region}:{account}:deliverystream/{deliveryStream}"],
    calledPer: IOT_FIREHOSE,
    arnPer: SAR_FIREHOSE,
    note: "PutRecordBatch only with the action's `batchMode`, which the program leaves off",
  },
  {
    role: "rule-kinesis",
    caller: "iot.amazonaws.com",
    when: ["analytics"],
    api: "PutRecord",
    action: "kinesis:PutRecord",
    resourceType: "stream",
    resources: ["arn:{partition}:kinesis:{region}:{account}:stream/{telemetryKinesis}"],
    calledPer: IOT_KINESIS,
    arnPer: SAR_KINESIS,
  },
  onLogGroup(ruleErrors, "CreateLogStream", "{ruleErrorLogGroup}"),
  onLogGroup(ruleErrors, "DescribeLogStreams", "{ruleErrorLogGroup}"),
  putLogEvents(ruleErrors, "{ruleErrorLogGroup}", "{logStream}", true),

  // The further rules' actions (`rules`): each its own role, the action page's grant.
  {
    role: "rules-republish",
    caller: "iot.amazonaws.com",
    when: ["rulesRepublish"],
    api: "Publish",
    action: "iot:Publish",
    resourceType: "topic",
    resources: ["arn:{partition}:iot:{region}:{account}:topic/{republishPrefix}/{templateValue}"],
    callerChosen: ["{templateValue}"],
    calledPer: IOT_REPUBLISH,
    arnPer: SAR_IOT,
    note: "the topic is a substitution template: the grant holds `*` where a `${...}` is, and nothing wider",
  },
  {
    role: "rules-metric",
    caller: "iot.amazonaws.com",
    when: ["rulesMetric"],
    api: "PutMetricData",
    action: "cloudwatch:PutMetricData",
    resourceType: "*",
    resources: ["*"],
    context: { "cloudwatch:namespace": "{metricNamespace}" },
    calledPer: IOT_CW_METRIC,
    arnPer: SAR_CLOUDWATCH,
    note: "PutMetricData has no resource type; the grant is narrowed by the cloudwatch:namespace condition key",
  },
  {
    role: "rules-alarm",
    caller: "iot.amazonaws.com",
    when: ["rulesAlarm"],
    api: "SetAlarmState",
    action: "cloudwatch:SetAlarmState",
    resourceType: "alarm",
    resources: ["arn:{partition}:cloudwatch:{region}:{account}:alarm:{alarmName}"],
    calledPer: IOT_CW_ALARM,
    arnPer: SAR_CLOUDWATCH,
  },
  onLogGroup(rulesErrors, "CreateLogStream", "{rulesErrorLogGroup}"),
  onLogGroup(rulesErrors, "DescribeLogStreams", "{rulesErrorLogGroup}"),
  putLogEvents(rulesErrors, "{rulesErrorLogGroup}", "{logStream}", true),

  // Firehose into the bucket, Glue for Parquet, KMS for the bucket's key, its error logging.
  ...firehoseToS3("delivery", ["always"], "{deliveryLogGroup}"),
  ...["GetTable", "GetTableVersion", "GetTableVersions"].map((api): RunTimeCall => ({
    role: "delivery",
    caller: "firehose.amazonaws.com",
    when: ["parquet"],
    api,
    action: `glue:${api}`,
    resourceType: "catalog, database, table",
    resources: [
      "arn:{partition}:glue:{region}:{account}:catalog",
      "arn:{partition}:glue:{region}:{account}:database/{glueDatabase}",
      "arn:{partition}:glue:{region}:{account}:table/{glueDatabase}/{glueTable}",
    ],
    calledPer: FIREHOSE_GLUE,
    arnPer: `${SAR_GLUE}; ${GLUE_ARNS}`,
    note: "Glue authorizes a table read on the catalog, the database and the table",
  })),
  ...firehoseToS3("windows-delivery", ["analytics"], "{windowsLogGroup}"),
  ...["DescribeStream", "GetShardIterator", "GetRecords", "ListShards"].map((api): RunTimeCall => ({
    role: "windows-delivery",
    caller: "firehose.amazonaws.com",
    when: ["analytics"],
    api,
    action: `kinesis:${api}`,
    resourceType: "stream",
    resources: ["arn:{partition}:kinesis:{region}:{account}:stream/{windowsKinesis}"],
    calledPer: FIREHOSE_S3,
    arnPer: SAR_KINESIS,
    note: "the statement for a Kinesis data stream as the delivery stream's source",
  })),

  // Managed Flink: its code, its logging, the Kinesis connector's source and sink.
  {
    ...flink,
    api: "GetObject",
    action: "s3:GetObject",
    resourceType: "object",
    resources: [S3_OBJECT("{codeKey}")],
    calledPer: FLINK_POLICY,
    arnPer: SAR_S3,
    note: "the application's code location names no object version, so GetObjectVersion is not called",
  },
  {
    ...flink,
    when: ["analytics", "kmsKey"],
    api: "Decrypt (by S3, for GetObject of the SSE-KMS code object)",
    action: "kms:Decrypt",
    resourceType: "key",
    resources: ["arn:{partition}:kms:{region}:{account}:key/{keyId}"],
    context: {
      "kms:ViaService": "s3.{region}.amazonaws.com",
      "kms:EncryptionContext:aws:s3:arn": S3_BUCKET,
    },
    calledPer: S3_SSE_KMS,
    arnPer: SAR_KMS,
  },
  {
    ...flink,
    api: "DescribeLogGroups",
    action: "logs:DescribeLogGroups",
    resourceType: "log-group",
    resources: [`${LOGS}:log-group:*`],
    calledPer: FLINK_POLICY,
    arnPer: `${SAR_LOGS}; ${LOGS_ARN_FORMS}`,
    note: "a list of the account's groups, not of one: the one wildcard AWS requires (core/iam/policy-audit.ts REQUIRED_WILDCARDS)",
  },
  onLogGroup({ ...flink, calledPer: FLINK_POLICY }, "DescribeLogStreams", "{flinkLogGroup}"),
  putLogEvents({ ...flink, calledPer: FLINK_POLICY }, "{flinkLogGroup}", "{flinkLogStream}", false),
  ...["DescribeStreamSummary", "GetShardIterator", "GetRecords", "ListShards"].map(
    (api): RunTimeCall => ({
      ...flink,
      api,
      action: `kinesis:${api}`,
      resourceType: "stream",
      resources: ["arn:{partition}:kinesis:{region}:{account}:stream/{telemetryKinesis}"],
      calledPer: FLINK_CONNECTOR,
      arnPer: SAR_KINESIS,
      note: "the calls the Kinesis connector's polling source makes",
    }),
  ),
  {
    ...flink,
    api: "PutRecords",
    action: "kinesis:PutRecords",
    resourceType: "stream",
    resources: ["arn:{partition}:kinesis:{region}:{account}:stream/{windowsKinesis}"],
    calledPer: FLINK_SINK,
    arnPer: SAR_KINESIS,
    note: "the one call the connector's sink makes",
  },

  // AWS IoT logging into AWSIotLogsV2 (the logging role policy's actions).
  ...["CreateLogGroup", "CreateLogStream", "PutMetricFilter", "PutRetentionPolicy"].map((api) =>
    onLogGroup(iotLogging, api, "{iotLogGroup}"),
  ),
  putLogEvents(iotLogging, "{iotLogGroup}", "{logStream}", true),

  // The new rule actions (each page: "An IAM role that AWS IoT can assume to perform the X operation").
  {
    role: "rule-s3",
    caller: "iot.amazonaws.com",
    when: ["s3Action"],
    api: "PutObject",
    action: "s3:PutObject",
    resourceType: "object",
    resources: ["arn:{partition}:s3:::{actionBucket}/{actionObjectKey}"],
    callerChosen: ["{actionObjectKey}"],
    calledPer: IOT_S3,
    arnPer: SAR_S3,
    note: "the key is the action's template, evaluated per message: the grant is the template's literal folder and `*`",
  },
  {
    role: "rule-s3",
    caller: "iot.amazonaws.com",
    when: ["s3Action", "kmsKey"],
    api: "GenerateDataKey (by S3, for PutObject into the SSE-KMS bucket)",
    action: "kms:GenerateDataKey",
    resourceType: "key",
    resources: ["arn:{partition}:kms:{region}:{account}:key/{keyId}"],
    calledPer: `${IOT_S3}; ${S3_SSE_KMS}`,
    arnPer: SAR_KMS,
    note: "the S3 action makes single PutObject calls, never multipart uploads, so no kms:Decrypt",
  },
  {
    role: "rule-sns",
    caller: "iot.amazonaws.com",
    when: ["snsAction"],
    api: "Publish",
    action: "sns:Publish",
    resourceType: "topic",
    resources: ["arn:{partition}:sns:{region}:{account}:{snsTopic}"],
    calledPer: IOT_SNS,
    arnPer: SAR_SNS,
  },
  {
    role: "rule-sqs",
    caller: "iot.amazonaws.com",
    when: ["sqsAction"],
    api: "SendMessage",
    action: "sqs:SendMessage",
    resourceType: "queue",
    resources: ["arn:{partition}:sqs:{region}:{account}:{sqsQueue}"],
    calledPer: IOT_SQS,
    arnPer: SAR_SQS,
  },
  {
    role: "rule-dynamodb",
    caller: "iot.amazonaws.com",
    when: ["dynamodbAction"],
    api: "PutItem",
    action: "dynamodb:PutItem",
    resourceType: "table",
    resources: ["arn:{partition}:dynamodb:{region}:{account}:table/{dynamodbTable}"],
    calledPer: IOT_DYNAMODB_V2,
    arnPer: SAR_DYNAMODB,
  },
  // A Lambda action's function: IoT invokes it through its resource policy (no role); the
  // function's own role writes its log group, which the stack creates.
  onLogGroup(lambdaFunction, "CreateLogStream", "{lambdaLogGroup}"),
  putLogEvents(lambdaFunction, "{lambdaLogGroup}", "{logStream}", true),

  // The pre-provisioning hook's logs (the stack creates its group, so no CreateLogGroup).
  onLogGroup(hook, "CreateLogStream", "{hookLogGroup}"),
  putLogEvents(hook, "{hookLogGroup}", "{logStream}", true),
  // The hook asks whether the serial's thing exists before it lets a device provision.
  {
    ...hook,
    when: ["fleetProvisioning", "hook", "noReprovisioning"],
    api: "DescribeThing",
    action: "iot:DescribeThing",
    resourceType: "thing",
    resources: ["arn:{partition}:iot:{region}:{account}:thing/{thingName}"],
    callerChosen: ["{thingName}"],
    calledPer: "https://docs.aws.amazon.com/iot/latest/apireference/API_DescribeThing.html",
    arnPer: SAR_IOT,
    note: "the hook's own call (functions/pre-provisioning-hook.ts), made on the thing the template would name from the serial; a thing that exists is refused unless `allowReprovisioning`",
  },

  // The provisioning role: what the fleet template makes IoT do (RegisterThing's resources).
  ...(
    [
      ["CreateThing", "thing", "thing/{thingName}"],
      ["DescribeThing", "thing", "thing/{thingName}"],
      ["UpdateThing", "thing", "thing/{thingName}"],
      ["DescribeThingType", "thingtype", "thingtype/{thingType}"],
      ["AddThingToThingGroup", "thing, thinggroup", "thing/{thingName}", "thinggroup/{thingGroup}"],
      ["DescribeCertificate", "cert", "cert/{certificateId}"],
      ["UpdateCertificate", "cert", "cert/{certificateId}"],
      ["AttachThingPrincipal", "thing", "thing/{thingName}"],
      ["AttachPolicy", "policy", "policy/{devicePolicy}"],
      ["GetPolicy", "policy", "policy/{devicePolicy}"],
    ] as const
  ).map(([api, type, ...res]): RunTimeCall => ({
    ...provisioning,
    api,
    action: `iot:${api}`,
    resourceType: type,
    resources: res.map((r) => `arn:{partition}:iot:{region}:{account}:${r}`),
    callerChosen: ["{thingName}", "{certificateId}"].filter((p) => res.some((r) => r.includes(p))),
    note: "the provisioning pages name the template's resources, not the calls: these are the actions of AWSIoTThingsRegistration that a thing (of a type, in a group, its attributes merged when it exists), an activated certificate and a policy attached by name need",
  })),
];

/** The trust each role's service needs (each service's role page names its principal). */
export const ROLE_SERVICES: Readonly<Record<RoleId, string>> = {
  "rule-firehose": "iot.amazonaws.com",
  "rule-errors": "iot.amazonaws.com",
  "rule-kinesis": "iot.amazonaws.com",
  delivery: "firehose.amazonaws.com",
  "windows-delivery": "firehose.amazonaws.com",
  flink: "kinesisanalytics.amazonaws.com",
  "iot-logging": "iot.amazonaws.com",
  provisioning: "iot.amazonaws.com",
  "provisioning-hook": "lambda.amazonaws.com",
  "rule-s3": "iot.amazonaws.com",
  "rule-sns": "iot.amazonaws.com",
  "rule-sqs": "iot.amazonaws.com",
  "rule-dynamodb": "iot.amazonaws.com",
  "rule-lambda-function": "lambda.amazonaws.com",
  "rules-republish": "iot.amazonaws.com",
  "rules-metric": "iot.amazonaws.com",
  "rules-alarm": "iot.amazonaws.com",
  "rules-errors": "iot.amazonaws.com",
};

/**
 * AWS-managed policies a role gets instead of an inline grant, with their documents as AWS
 * publishes them (the managed policy reference page), so the evaluator can read them too.
 */
export const MANAGED_POLICIES: Readonly<
  Record<string, { readonly role: RoleId; readonly page: string; readonly document: unknown }>
> = {
  "arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration": {
    role: "provisioning",
    page: THINGS_REGISTRATION_PAGE,
    document: {
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: [
            "iot:AddThingToThingGroup",
            "iot:AttachPolicy",
            "iot:AttachPrincipalPolicy",
            "iot:AttachThingPrincipal",
            "iot:CreateCertificateFromCsr",
            "iot:CreatePolicy",
            "iot:CreateThing",
            "iot:DescribeCertificate",
            "iot:DescribeThing",
            "iot:DescribeThingGroup",
            "iot:DescribeThingType",
            "iot:DetachPolicy",
            "iot:DetachThingPrincipal",
            "iot:GetPolicy",
            "iot:ListAttachedPolicies",
            "iot:ListPolicyPrincipals",
            "iot:ListPrincipalPolicies",
            "iot:ListPrincipalThings",
            "iot:ListTargetsForPolicy",
            "iot:ListThingGroupsForThing",
            "iot:ListThingPrincipals",
            "iot:RegisterCertificate",
            "iot:RegisterThing",
            "iot:RemoveThingFromThingGroup",
            "iot:UpdateCertificate",
            "iot:UpdateThing",
            "iot:UpdateThingGroupsForThing",
            "iot:AddThingToBillingGroup",
            "iot:DescribeBillingGroup",
            "iot:RemoveThingFromBillingGroup",
          ],
          Resource: ["*"],
        },
      ],
    },
  },
};

/** A template with every placeholder replaced; throws naming the first one `values` lacks. */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{[A-Za-z]+\}/g, (p) => {
    const v = values[p];
    if (v === undefined) throw new Error(`no value for ${p} in ${template}`);
    return v;
  });
}

/** The placeholders a row's resources and context use. */
export function placeholdersOf(call: RunTimeCall): string[] {
  const text = [...call.resources, ...Object.values(call.context ?? {})].join(" ");
  return [...new Set(text.match(/\{[A-Za-z]+\}/g) ?? [])];
}

const link = (url: string) => {
  const page =
    url
      .split("/")
      .pop()
      ?.replace(/\.html.*$/, "") ?? url;
  return `[${page}](${url})`;
};

/** The table as Markdown, for docs/iam-roles.md (between its generated-table markers). */
export function renderCallTable(): string {
  const lines = [
    "| role | caller | when | API call | IAM action | resource type | resource as IAM sees it | the service makes the call | resource per |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const c of RUN_TIME_CALLS) {
    const res = c.resources.map((r) => `\`${r}\``).join("<br>");
    const chosen = c.callerChosen?.length
      ? ` (${c.callerChosen.join(", ")}: chosen by the service)`
      : "";
    const note = c.note === undefined ? "" : `; ${c.note.replace(/\|/g, "\\|")}`;
    lines.push(
      `| ${c.role} | ${c.caller} | ${c.when.join(", ")} | ${c.api} | ${c.action} | ${c.resourceType} | ${res}${chosen} | ${c.calledPer.split("; ").map(link).join(", ")} | ${c.arnPer.split("; ").map(link).join(", ")}${note} |`,
    );
  }
  return lines.join("\n");
}
