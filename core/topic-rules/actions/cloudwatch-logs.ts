// The CloudWatch Logs action's parameters: the log group, which the stack creates for the rule
// (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-logs-rule-action.html).
import { ParamReader, type ActionDefinition } from "./action";

export interface CloudWatchLogsParams {
  /**
   * The log group the stack creates and the action writes to.
   * @default `/iot/rules/<rule>/errors` for an error action, `/iot/rules/<rule>/messages` otherwise
   */
  readonly logGroupName: string;
}

export interface CloudWatchLogsSpec {
  readonly kind: "cloudwatchLogs";
  readonly params: CloudWatchLogsParams;
}

/** The error log group a rule gets when none is named. */
export function ruleErrorLogGroupName(ruleName: string): string {
  return `/iot/rules/${ruleName}/errors`;
}

/** CloudWatch Logs group names (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html). */
const LOG_GROUP = /^[\w\-/.#]{1,512}$/;

export const cloudwatchLogsDefinition: ActionDefinition<"cloudwatchLogs", CloudWatchLogsParams> = {
  kind: "cloudwatchLogs",
  failedAction: "CloudwatchLogsAction",
  page: "https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-logs-rule-action.html",
  parse(raw, ctx) {
    const p: ParamReader = new ParamReader(raw, ctx, ["logGroupName"]);
    const name =
      p.optionalString("logGroupName", LOG_GROUP, "use 1-512 letters, digits or _ - / . #") ??
      (ctx.isErrorAction
        ? ruleErrorLogGroupName(ctx.ruleName)
        : `/iot/rules/${ctx.ruleName}/messages`);
    return { logGroupName: name };
  },
};
