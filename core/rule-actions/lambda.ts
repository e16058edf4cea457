// The Lambda rule action (https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html):
// "invokes an AWS Lambda function, passing in an MQTT message. AWS IoT invokes Lambda functions
// asynchronously". No role: "you must configure a policy that grants the lambda:InvokeFunction
// permission to AWS IoT ... --source-arn arn:aws:iot:region:account-id:rule/rule_name
// --source-account account-id"; "If you add a permission for an AWS IoT principal without
// providing the source-arn or source-account, any AWS account that creates a rule with your
// Lambda action can trigger rules to invoke your Lambda function from AWS IoT".
import * as path from "node:path";

export const LAMBDA_ACTION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html";

/** A Lambda action as the stack config gives it: the function the stack builds from a handler file. */
export interface LambdaActionSpec {
  readonly kind: "lambda";
  /** The handler's TypeScript file, relative to the project: `functions/<name>.ts`, exporting `handler`. */
  readonly handler: string;
  /** The function's timeout. @default 3 (Lambda's default) */
  readonly timeoutSeconds: number;
  /** @default 128 */
  readonly memoryMiB: number;
}

/** Lambda's bounds: timeout 1 to 900 seconds, memory 128 to 10,240 MB. */
export const LAMBDA_MAX_TIMEOUT_SECONDS = 900;
export const LAMBDA_MEMORY_MIB = { min: 128, max: 10_240 } as const;

export function lambdaActionProblem(raw: Record<string, unknown>): string | undefined {
  const h = raw.handler;
  if (typeof h !== "string" || !/^functions\/[A-Za-z0-9_-]+\.ts$/.test(h)) {
    return `handler ${JSON.stringify(h ?? null)} is not a handler file: give functions/<name>.ts (a TypeScript file under functions/ that exports handler)`;
  }
  const t = raw.timeoutSeconds;
  if (
    t !== undefined &&
    (typeof t !== "number" || !Number.isInteger(t) || t < 1 || t > LAMBDA_MAX_TIMEOUT_SECONDS)
  ) {
    return `timeoutSeconds ${JSON.stringify(t)} is not a whole number of seconds from 1 to ${LAMBDA_MAX_TIMEOUT_SECONDS}`;
  }
  const m = raw.memoryMiB;
  if (
    m !== undefined &&
    (typeof m !== "number" ||
      !Number.isInteger(m) ||
      m < LAMBDA_MEMORY_MIB.min ||
      m > LAMBDA_MEMORY_MIB.max)
  ) {
    return `memoryMiB ${JSON.stringify(m)} is not a whole number from ${LAMBDA_MEMORY_MIB.min} to ${LAMBDA_MEMORY_MIB.max}`;
  }
  return undefined;
}

/** The function's name: `<rule>-<handler file's name>` (letters, digits, - and _; at most 64). */
export function lambdaFunctionName(ruleName: string, handler: string): string {
  return `${ruleName}-${path.basename(handler, ".ts")}`.slice(0, 64);
}

/** The rule's ARN, the permission's `sourceArn` (the page's `arn:aws:iot:region:account-id:rule/rule_name`). */
export function topicRuleArn(
  partition: string,
  region: string,
  account: string,
  ruleName: string,
): string {
  return `arn:${partition}:iot:${region}:${account}:rule/${ruleName}`;
}
