// The SNS rule action (https://docs.aws.amazon.com/iot/latest/developerguide/sns-rule-action.html):
// "An IAM role that AWS IoT can assume to perform the sns:Publish operation"; `targetArn` "The SNS
// topic or individual device to which the push notification is sent"; `messageFormat` "Valid
// values: JSON, RAW. Defaults to RAW". FIFO topics are not supported by the action.

export const SNS_ACTION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/sns-rule-action.html";
/** The Publish API, whose request the local pipeline records. */
export const SNS_PUBLISH_PAGE = "https://docs.aws.amazon.com/sns/latest/api/API_Publish.html";

export type SnsMessageFormat = "RAW" | "JSON";

/** An SNS action as the stack config gives it: a topic of the stack's account and region. */
export interface SnsActionSpec {
  readonly kind: "sns";
  /** The topic's name; its ARN is the stack's partition, region and account and this name. */
  readonly topicName: string;
  /** @default "RAW" */
  readonly messageFormat: SnsMessageFormat;
}

/** Topic names: "Up to 256 alphanumeric characters, hyphens (-), and underscores (_)" (CreateTopic). */
const TOPIC_NAME = /^[A-Za-z0-9_-]{1,256}$/;

export function snsActionProblem(raw: Record<string, unknown>): string | undefined {
  const name = raw.topicName;
  if (typeof name !== "string" || !TOPIC_NAME.test(name)) {
    return `topicName ${JSON.stringify(name ?? null)} is not an SNS topic name: up to 256 letters, digits, hyphens and underscores (the role is granted sns:Publish on that one topic, so it cannot be a template)`;
  }
  if (name.endsWith(".fifo")) return "the SNS action doesn't support FIFO topics";
  const f = raw.messageFormat;
  if (f !== undefined && f !== "RAW" && f !== "JSON") {
    return `messageFormat ${JSON.stringify(f)} is not RAW or JSON`;
  }
  return undefined;
}

export function snsTopicArn(
  partition: string,
  region: string,
  account: string,
  name: string,
): string {
  return `arn:${partition}:sns:${region}:${account}:${name}`;
}

/**
 * The Publish request AWS IoT makes: the topic, the message (the rule's SQL result) and, with
 * messageFormat JSON, `MessageStructure: "json"`, which makes SNS parse the message for
 * per-protocol parts ("Amazon SNS uses this setting to determine if the payload should be
 * parsed"; Publish: "MessageStructure ... Valid value: json").
 */
export function snsPublishRequest(
  topicArn: string,
  message: Buffer,
  format: SnsMessageFormat,
): { TopicArn: string; Message: string; MessageStructure?: "json" } {
  return {
    TopicArn: topicArn,
    Message: message.toString("utf8"),
    ...(format === "JSON" ? { MessageStructure: "json" as const } : {}),
  };
}
