// The Lambda rule action: the stack builds the function from a TypeScript handler under
// functions/ (bundled like the pre-provisioning hook, components/private/function-code.ts) and
// lets AWS IoT invoke it through the function's resource policy, scoped to this rule and account
// (https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html: "--source-arn
// arn:aws:iot:region:account-id:rule/rule_name --source-account account-id"; without them "any AWS
// account that creates a rule with your Lambda action can trigger rules to invoke your Lambda
// function"). IoT assumes no role for it. The function's own role may only write its log group.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { lambdaFunctionName } from "../../../core/topic-rules/actions/lambda";
import { functionLogGroup, functionLogStatements } from "../../private/function-logging";
import { serviceRole } from "../../private/iam";
import { FUNCTION_HANDLER, FUNCTION_RUNTIME, functionBundle } from "../../private/function-code";
import type {
  ProgramActionFactory,
  RuleAction,
  RuleActionBinding,
  RuleActionConfigOf,
  RuleBindContext,
} from "./action";

export interface LambdaActionArgs {
  /** The topic rule's name in AWS IoT: the permission lets only this rule invoke. */
  readonly ruleName: string;
  /** The handler file, `functions/<name>.ts`, exporting `handler`. */
  readonly handler: string;
  /** @default 3 */
  readonly timeoutSeconds?: number;
  /** @default 128 */
  readonly memoryMiB?: number;
  /** @default "<rule name>-<handler's file name>" */
  readonly functionName?: string;
  /** @default "lambda" */
  readonly id?: string;
}

export class LambdaAction implements RuleAction {
  readonly id: string;
  /** The function and its invoke permission, once bound. */
  fn?: aws.lambda.Function;
  permission?: aws.lambda.Permission;

  constructor(private readonly args: LambdaActionArgs) {
    this.id = args.id ?? "lambda";
  }

  bind(rule: RuleBindContext): RuleActionBinding<RuleActionConfigOf<"lambda">> {
    const ruleName = this.args.ruleName;
    const opts = { parent: rule.parent };
    const base = `${rule.name}-${this.id}`;
    const functionName = this.args.functionName ?? lambdaFunctionName(ruleName, this.args.handler);
    const logGroup = functionLogGroup(`${base}-logs`, functionName, opts);
    const execution = serviceRole(
      `${base}-function-role`,
      {
        service: "lambda.amazonaws.com",
        accountId: rule.accountId,
        statements: logGroup.arn.apply(functionLogStatements),
      },
      rule.parent,
    );
    const fn = new aws.lambda.Function(
      `${base}-function`,
      {
        name: functionName,
        runtime: FUNCTION_RUNTIME,
        handler: FUNCTION_HANDLER,
        role: execution.role.arn,
        timeout: this.args.timeoutSeconds ?? 3,
        memorySize: this.args.memoryMiB ?? 128,
        code: new pulumi.asset.AssetArchive({
          "index.js": new pulumi.asset.StringAsset(functionBundle(this.args.handler)),
        }),
      },
      { parent: rule.parent, dependsOn: [logGroup, execution.grant] },
    );
    // The page's `--source-arn arn:aws:iot:region:account-id:rule/rule_name`.
    const ruleArn = rule.arn("iot", `rule/${ruleName}`);
    const permission = new aws.lambda.Permission(
      `${base}-invoke`,
      {
        action: "lambda:InvokeFunction",
        function: fn.name,
        principal: "iot.amazonaws.com",
        sourceArn: ruleArn,
        sourceAccount: rule.accountId,
      },
      opts,
    );
    this.fn = fn;
    this.permission = permission;
    return {
      // IoT invokes the function without a role; the rule waits for the permission so that its
      // first messages can be delivered.
      grant: permission,
      config: { kind: "lambda", value: { functionArn: fn.arn } },
    };
  }
}

export const lambdaFromConfig: ProgramActionFactory<"lambda"> = (spec, ctx) =>
  new LambdaAction({ id: ctx.id, ruleName: ctx.ruleName, ...spec.params });
