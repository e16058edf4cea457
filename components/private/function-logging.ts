// A Lambda function's logging, the same for every function the stack deploys (the provisioning
// hook, the rules' Lambda actions): a log group the stack owns under the name Lambda writes to,
// and the two statements its execution role needs for it. Because the stack creates the group,
// the role needs no logs:CreateLogGroup.
import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import { logGroupPolicyArn, type IamStatement } from "./iam";

/** How long a function's logs are kept. */
const FUNCTION_LOG_RETENTION_DAYS = 14;

/** The log group Lambda writes `functionName`'s logs to (`/aws/lambda/<name>`). */
export function functionLogGroup(
  resourceName: string,
  functionName: string,
  opts: pulumi.CustomResourceOptions,
): aws.cloudwatch.LogGroup {
  return new aws.cloudwatch.LogGroup(
    resourceName,
    {
      name: `/aws/lambda/${functionName}`,
      retentionInDays: FUNCTION_LOG_RETENTION_DAYS,
    },
    opts,
  );
}

/** CreateLogStream on the function's group and PutLogEvents on its streams; nothing more. */
export function functionLogStatements(logGroupArn: string): IamStatement[] {
  return [
    {
      Sid: "CreateLogStreams",
      Effect: "Allow",
      Action: ["logs:CreateLogStream"],
      Resource: [logGroupPolicyArn(logGroupArn)],
    },
    {
      Sid: "WriteLogEvents",
      Effect: "Allow",
      Action: ["logs:PutLogEvents"],
      Resource: [`${logGroupArn}:log-stream:*`],
    },
  ];
}
