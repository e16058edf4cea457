// The actions whose service the local pipeline does not run: it records, under the state folder,
// exactly the request AWS IoT would have made (one JSON line each, ./request-log.ts), so a user
// sees what the cloud would get. SNS: Publish (TopicArn, Message, MessageStructure:
// https://docs.aws.amazon.com/iot/latest/developerguide/sns-rule-action.html); SQS: SendMessage
// (QueueUrl, MessageBody: sqs-rule-action.html); DynamoDBv2: PutItem (TableName, Item:
// dynamodb-v2-rule-action.html), refused as DynamoDB would refuse it when the SQL result lacks the
// table's keys, which the error action reports.
import {
  DynamoDbValidationError,
  dynamoPutItemRequest,
} from "../../../core/topic-rules/actions/dynamodb-v2";
import { snsPublishRequest, snsTopicArn } from "../../../core/topic-rules/actions/sns";
import { sqsQueueUrl, sqsSendMessageRequest } from "../../../core/topic-rules/actions/sqs";
import { LOCAL_ACCOUNT_ID } from "../../broker/authorizer";
import { ActionFailure, required, type LocalActionFactory } from "./action";

export const localSns: LocalActionFactory<"sns"> = (spec, services, ctx) => {
  const logs = required(services.requests, "the state folder's request files", ctx);
  const p = spec.params;
  const topicArn = snsTopicArn("aws", services.plan.region, LOCAL_ACCOUNT_ID, p.topicName);
  return {
    kind: "sns",
    failedAction: "SnsAction",
    resource: topicArn,
    async run(m) {
      await logs
        .of("sns", "Publish")
        .append(snsPublishRequest(topicArn, m.record, p.messageFormat));
    },
  };
};

export const localSqs: LocalActionFactory<"sqs"> = (spec, services, ctx) => {
  const logs = required(services.requests, "the state folder's request files", ctx);
  const p = spec.params;
  const queueUrl = sqsQueueUrl(services.plan.region, LOCAL_ACCOUNT_ID, p.queueName);
  return {
    kind: "sqs",
    failedAction: "SqsAction",
    resource: queueUrl,
    async run(m) {
      await logs
        .of("sqs", "SendMessage")
        .append(sqsSendMessageRequest(queueUrl, m.record, p.useBase64));
    },
  };
};

export const localDynamoDbV2: LocalActionFactory<"dynamoDBv2"> = (spec, services, ctx) => {
  const logs = required(services.requests, "the state folder's request files", ctx);
  const p = spec.params;
  return {
    kind: "dynamoDBv2",
    failedAction: "DynamoDBv2Action",
    resource: p.tableName,
    async run(m) {
      let request;
      try {
        request = dynamoPutItemRequest(p, m.output);
      } catch (e) {
        if (!(e instanceof DynamoDbValidationError)) throw e;
        throw new ActionFailure(
          `Failed to put item into DynamoDB table ${p.tableName}. The error received was ${e.message} (Service: DynamoDb; Error Code: ValidationException)`,
          p.tableName,
        );
      }
      await logs.of("dynamodb", "PutItem").append(request);
    },
  };
};
