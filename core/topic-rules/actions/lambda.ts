// The Lambda rule action (https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html):
// "invokes an AWS Lambda function, passing in an MQTT message. AWS IoT invokes Lambda functions
// asynchronously". No role: "you must configure a policy that grants the lambda:InvokeFunction
// permission to AWS IoT ... --source-arn arn:aws:iot:region:account-id:rule/rule_name
// --source-account account-id"; "If you add a permission for an AWS IoT principal without
// providing the source-arn or source-account, any AWS account that creates a rule with your
// Lambda action can trigger rules to invoke your Lambda function from AWS IoT".
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../project";
import { ParamReader, type ActionDefinition } from "./action";

export const LAMBDA_ACTION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html";

export interface LambdaParams {
  /** The handler's TypeScript file: `functions/<name>.ts`, exporting `handler`. */
  readonly handler: string;
  /** The function's timeout. @default 3 (Lambda's default) */
  readonly timeoutSeconds: number;
  /** @default 128 */
  readonly memoryMiB: number;
}

export interface LambdaSpec {
  readonly kind: "lambda";
  readonly params: LambdaParams;
}

/** Lambda's bounds: timeout 1 to 900 seconds, memory 128 to 10,240 MB. */
export const LAMBDA_MAX_TIMEOUT_SECONDS = 900;
export const LAMBDA_MEMORY_MIB = { min: 128, max: 10_240 } as const;

function wholeNumber(
  p: ParamReader,
  key: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const v = p.raw[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    p.fail(key, v, `set a whole number from ${min} to ${max}`);
  }
  return v;
}

export const lambdaDefinition: ActionDefinition<"lambda", LambdaParams> = {
  kind: "lambda",
  failedAction: "LambdaAction",
  page: LAMBDA_ACTION_PAGE,
  parse(raw, ctx) {
    const p = new ParamReader(raw, ctx, ["handler", "timeoutSeconds", "memoryMiB"]);
    const handler = p.string(
      "handler",
      /^functions\/[A-Za-z0-9_-]+\.ts$/,
      "give the handler's file, functions/<name>.ts (a TypeScript file under functions/ that exports handler, bundled into the function and called in-process locally)",
    );
    if (!fs.existsSync(path.join(PROJECT_DIR, handler))) {
      p.fail(
        "handler",
        handler,
        `there is no ${handler} in the project; write it (functions/log-event.ts is an example)`,
      );
    }
    return {
      handler,
      timeoutSeconds: wholeNumber(p, "timeoutSeconds", 1, LAMBDA_MAX_TIMEOUT_SECONDS, 3),
      memoryMiB: wholeNumber(p, "memoryMiB", LAMBDA_MEMORY_MIB.min, LAMBDA_MEMORY_MIB.max, 128),
    };
  },
};

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
