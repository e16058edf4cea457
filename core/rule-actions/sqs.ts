// The SQS rule action (https://docs.aws.amazon.com/iot/latest/developerguide/sqs-rule-action.html):
// "An IAM role that AWS IoT can assume to perform the sqs:SendMessage operation"; `queueUrl` "The
// URL of the Amazon SQS queue to which to write the data"; `useBase64` "Set this parameter to true
// to configure the rule action to base64-encode the message data before it writes the data to the
// Amazon SQS queue. Defaults to false". FIFO queues are not supported by the action.

export const SQS_ACTION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/sqs-rule-action.html";
export const SQS_SEND_MESSAGE_PAGE =
  "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html";

/** An SQS action as the stack config gives it: a queue of the stack's account and region. */
export interface SqsActionSpec {
  readonly kind: "sqs";
  readonly queueName: string;
  /** @default false */
  readonly useBase64: boolean;
}

/** Queue names: "up to 80 characters ... alphanumeric characters, hyphens (-), and underscores (_)" (CreateQueue). */
const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;

export function sqsActionProblem(raw: Record<string, unknown>): string | undefined {
  const name = raw.queueName;
  if (typeof name !== "string" || !QUEUE_NAME.test(name)) {
    return `queueName ${JSON.stringify(name ?? null)} is not an SQS queue name: up to 80 letters, digits, hyphens and underscores (the role is granted sqs:SendMessage on that one queue, so it cannot be a template); FIFO queues are not supported by the action`;
  }
  if (raw.useBase64 !== undefined && typeof raw.useBase64 !== "boolean") {
    return `useBase64 ${JSON.stringify(raw.useBase64)} is not true or false`;
  }
  return undefined;
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

/** The SendMessage request AWS IoT makes: the queue and the body, base64 when `useBase64`. */
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
