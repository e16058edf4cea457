// The SQS action (https://docs.aws.amazon.com/iot/latest/developerguide/sqs-rule-action.html): "An
// IAM role that AWS IoT can assume to perform the sqs:SendMessage operation"; `queueUrl` "The URL
// of the Amazon SQS queue to which to write the data"; `useBase64` "Set this parameter to true to
// configure the rule action to base64-encode the message data before it writes the data to the
// Amazon SQS queue. Defaults to false"; "The SQS action doesn't support Amazon SQS FIFO queues".
// The queue is named in the stack's account and region, so that the role grants on that one queue.
import { ParamReader, type ActionDefinition } from "./action";

export const SQS_SEND_MESSAGE_PAGE =
  "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html";

export interface SqsParams {
  readonly queueName: string;
  /** @default false */
  readonly useBase64: boolean;
}

export interface SqsSpec {
  readonly kind: "sqs";
  readonly params: SqsParams;
}

export function sqsQueueArn(
  partition: string,
  region: string,
  account: string,
  name: string,
): string {
  return `arn:${partition}:sqs:${region}:${account}:${name}`;
}

/** The queue's URL, `https://sqs.<region>.amazonaws.com/<account>/<name>` (the page's example). */
export function sqsQueueUrl(region: string, account: string, name: string): string {
  return `https://sqs.${region}.amazonaws.com/${account}/${name}`;
}

/** The SendMessage request AWS IoT makes: the queue and the body, base64 with `useBase64`. */
export function sqsSendMessageRequest(
  queueUrl: string,
  message: Buffer,
  useBase64: boolean,
): { QueueUrl: string; MessageBody: string } {
  return {
    QueueUrl: queueUrl,
    MessageBody: useBase64 ? message.toString("base64") : message.toString("utf8"),
  };
}

export const sqsDefinition: ActionDefinition<"sqs", SqsParams> = {
  kind: "sqs",
  failedAction: "SqsAction",
  page: "https://docs.aws.amazon.com/iot/latest/developerguide/sqs-rule-action.html",
  parse(raw, ctx) {
    const p = new ParamReader(raw, ctx, ["queueName", "useBase64"]);
    // CreateQueue: up to 80 alphanumeric characters, hyphens and underscores (".fifo" is FIFO).
    const queueName = p.string(
      "queueName",
      /^[A-Za-z0-9_-]{1,80}$/,
      "set the queue's name (up to 80 letters, digits, - and _; not a template: the role is granted sqs:SendMessage on that one queue; FIFO queues are not supported by the action)",
    );
    const useBase64: unknown = p.raw.useBase64 ?? false;
    if (typeof useBase64 !== "boolean") return p.fail("useBase64", useBase64, "set true or false");
    return { queueName, useBase64 };
  },
};
