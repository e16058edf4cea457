// The SNS action (https://docs.aws.amazon.com/iot/latest/developerguide/sns-rule-action.html): "An
// IAM role that AWS IoT can assume to perform the sns:Publish operation"; `targetArn` "The SNS
// topic or individual device to which the push notification is sent"; `messageFormat` "Valid
// values: JSON, RAW. Defaults to RAW"; "The SNS action doesn't support Amazon SNS FIFO topics".
// The topic is named in the stack's account and region, so that the role grants on that one topic.
import { ParamReader, type ActionDefinition } from "./action";

/** The Publish API, whose request the local pipeline records. */
export const SNS_PUBLISH_PAGE = "https://docs.aws.amazon.com/sns/latest/api/API_Publish.html";

export interface SnsParams {
  /** The topic's name in the stack's account and region. */
  readonly topicName: string;
  /** @default "RAW" */
  readonly messageFormat: "RAW" | "JSON";
}

export interface SnsSpec {
  readonly kind: "sns";
  readonly params: SnsParams;
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
 * messageFormat JSON, `MessageStructure: "json"` ("Amazon SNS uses this setting to determine if
 * the payload should be parsed"; Publish's MessageStructure: "Valid value: json").
 */
export function snsPublishRequest(
  topicArn: string,
  message: Buffer,
  format: SnsParams["messageFormat"],
): { TopicArn: string; Message: string; MessageStructure?: "json" } {
  return {
    TopicArn: topicArn,
    Message: message.toString("utf8"),
    ...(format === "JSON" ? { MessageStructure: "json" as const } : {}),
  };
}

export const snsDefinition: ActionDefinition<"sns", SnsParams> = {
  kind: "sns",
  failedAction: "SnsAction",
  page: "https://docs.aws.amazon.com/iot/latest/developerguide/sns-rule-action.html",
  parse(raw, ctx) {
    const p = new ParamReader(raw, ctx, ["topicName", "messageFormat"]);
    // CreateTopic: "Up to 256 alphanumeric characters, hyphens (-), and underscores (_)".
    const topicName = p.string(
      "topicName",
      /^[A-Za-z0-9_-]{1,256}$/,
      "set the topic's name (up to 256 letters, digits, - and _; not a template: the role is granted sns:Publish on that one topic; FIFO topics are not supported by the action)",
    );
    const messageFormat = p.oneOf<"RAW" | "JSON">("messageFormat", ["RAW", "JSON"], "RAW");
    return { topicName, messageFormat };
  },
};
