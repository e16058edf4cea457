// The actions whose service the local pipeline does not run: it records, under the state folder,
// exactly the request AWS IoT would have made (one JSON line each, request-log.ts), so a user
// sees what the cloud would get. SNS: Publish (TopicArn, Message, MessageStructure); SQS:
// SendMessage (QueueUrl, MessageBody); DynamoDBv2: PutItem (TableName, Item), refused as DynamoDB
// would refuse it when the SQL result lacks the table's keys, which the error action reports.
import { RuleActionFailure, arrivedOn } from "../../../core/rule-actions/failure";
import {
  DynamoDbValidationError,
  dynamoPutItemRequest,
  type DynamoDbV2ActionSpec,
} from "../../../core/rule-actions/dynamodb-v2";
import { snsPublishRequest, snsTopicArn, type SnsActionSpec } from "../../../core/rule-actions/sns";
import {
  sqsQueueUrl,
  sqsSendMessageRequest,
  type SqsActionSpec,
} from "../../../core/rule-actions/sqs";
import type { LocalAction, LocalActionInput } from "./context";
import type { RequestLogs } from "./request-log";

/** The stack's partition, region and account, as the local pipeline names its ARNs. */
export interface LocalAccount {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

export class LocalSnsAction implements LocalAction {
  private readonly topicArn: string;

  constructor(
    readonly id: string,
    private readonly spec: SnsActionSpec,
    where: LocalAccount,
    private readonly logs: RequestLogs,
  ) {
    this.topicArn = snsTopicArn(where.partition, where.region, where.account, spec.topicName);
  }

  async execute(input: LocalActionInput): Promise<void> {
    await this.logs
      .of("sns", "Publish")
      .append(snsPublishRequest(this.topicArn, input.record, this.spec.messageFormat));
  }
}

export class LocalSqsAction implements LocalAction {
  private readonly queueUrl: string;

  constructor(
    readonly id: string,
    private readonly spec: SqsActionSpec,
    where: LocalAccount,
    private readonly logs: RequestLogs,
  ) {
    this.queueUrl = sqsQueueUrl(where.region, where.account, spec.queueName);
  }

  async execute(input: LocalActionInput): Promise<void> {
    await this.logs
      .of("sqs", "SendMessage")
      .append(sqsSendMessageRequest(this.queueUrl, input.record, this.spec.useBase64));
  }
}

export class LocalDynamoDbV2Action implements LocalAction {
  constructor(
    readonly id: string,
    private readonly spec: DynamoDbV2ActionSpec,
    private readonly logs: RequestLogs,
  ) {}

  async execute(input: LocalActionInput): Promise<void> {
    let request;
    try {
      request = dynamoPutItemRequest(this.spec, input.output);
    } catch (e) {
      if (!(e instanceof DynamoDbValidationError)) throw e;
      throw new RuleActionFailure(
        "DynamoDBv2Action",
        this.spec.tableName,
        `Failed to put item into DynamoDB table ${this.spec.tableName}. The error received was ${e.message} (Service: DynamoDb; Error Code: ValidationException). ${arrivedOn(input.topic, "dynamoDBv2", `Table: ${this.spec.tableName}`)}`,
      );
    }
    await this.logs.of("dynamodb", "PutItem").append(request);
  }
}
